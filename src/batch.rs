//! The compact form in which a received batch travels to JS: one buffer holding the metadata,
//! laid out as parallel arrays, followed by the payloads back to back. One allocation and one
//! JS object per batch.
//!
//! Two shapes. The **full** layout, for a batch of `n` datagrams (byte offsets; every section
//! starts aligned for its element type because the sections are ordered by element size):
//!
//! | section          | type      | offset | bytes |
//! |------------------|-----------|--------|-------|
//! | timestamps (ns)  | u64[n]    | 0      | 8n    |
//! | lengths          | u32[n]    | 8n     | 4n    |
//! | offsets          | u32[n]    | 12n    | 4n    |
//! | scope ids        | u32[n]    | 16n    | 4n    |
//! | interface index  | u32[n]    | 20n    | 4n    |
//! | ports            | u16[n]    | 24n    | 2n    |
//! | families         | u8[n]     | 26n    | n     |
//! | flags            | u8[n]     | 27n    | n     |
//! | TOS / traffic class | u8[n]  | 28n    | n     |
//! | local families   | u8[n]     | 29n    | n     |
//! | (reserved)       | u8[2n]    | 30n    | 2n    |
//! | source addresses | u8[16n]   | 32n    | 16n   |
//! | local addresses  | u8[16n]   | 48n    | 16n   |
//!
//! The **compact** layout, used when every source is IPv4 and no datagram carries a local
//! address, timestamp or TOS (the defaults): 16 bytes per datagram instead of 64. With small
//! datagrams the metadata was as large as the payloads, and every byte of a batch is fresh
//! memory (page faults, cache misses) on the hottest path; the compact shape cuts a batch of
//! 256 64-byte datagrams from 32 KiB to 20 KiB.
//!
//! | section                | type    | offset | bytes |
//! |------------------------|---------|--------|-------|
//! | lengths                | u32[n]  | 0      | 4n    |
//! | offsets                | u32[n]  | 4n     | 4n    |
//! | source IPv4 addresses  | u8[4n]  | 8n     | 4n    |
//! | ports                  | u16[n]  | 12n    | 2n    |
//! | families               | u8[n]   | 14n    | n     |
//! | flags                  | u8[n]   | 15n    | n     |
//!
//! `lib/batch.ts` reads these offsets (as multiples of `n`) and the flags from the exported
//! `batchLayout()` (`native::dispatch`), so this file is the one place the layout is written;
//! which shape a batch has travels with it (`RawBatch::compact`, the dispatch event kind).
//!
//! Over ~400 lines only with its unit tests: the two layouts, the builder that writes them and
//! the checks that they do not overlap are one argument.

use crate::addr::CompactAddr;

/// Bytes of metadata per datagram (full layout).
pub const META_BYTES_PER_DATAGRAM: usize = 64;
/// Bytes of metadata per datagram (compact layout).
pub const COMPACT_META_BYTES_PER_DATAGRAM: usize = 16;
/// Flag bit: the datagram was longer than the receive slot and was cut (`MSG_TRUNC`).
pub const FLAG_TRUNCATED: u8 = 1;
/// Flag bit: the local (destination) address and interface index are known (`IP_PKTINFO`).
pub const FLAG_LOCAL: u8 = 2;
/// Flag bit: the kernel receive timestamp is known (`SO_TIMESTAMPNS`).
pub const FLAG_TIMESTAMP: u8 = 4;
/// Flag bit: the TOS / traffic class byte is known (`IP_RECVTOS` / `IPV6_RECVTCLASS`).
pub const FLAG_TOS: u8 = 8;
/// The flags that need sections only the full layout has.
pub const FLAGS_NEEDING_FULL: u8 = FLAG_LOCAL | FLAG_TIMESTAMP | FLAG_TOS;

/// Where each section of the metadata starts, for `n` datagrams of one shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetaLayout {
  /// Datagrams in the batch.
  pub count: usize,
  /// The compact shape (see the module documentation).
  pub compact: bool,
}

/// Where the sections only the full layout has start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtraSections {
  /// Receive timestamps, u64 nanoseconds.
  pub timestamps: usize,
  /// IPv6 scope ids, u32.
  pub scopes: usize,
  /// Interface indexes, u32.
  pub ifindexes: usize,
  /// TOS / traffic class bytes, u8.
  pub tos: usize,
  /// Local address families, u8.
  pub local_families: usize,
  /// Local addresses, 16 bytes each.
  pub local_addresses: usize,
}

impl ExtraSections {
  /// Where they start in the full layout of `n` datagrams.
  pub fn of_full(n: usize) -> Self {
    ExtraSections {
      timestamps: 0,
      scopes: 16 * n,
      ifindexes: 20 * n,
      tos: 28 * n,
      local_families: 29 * n,
      local_addresses: 48 * n,
    }
  }
}

impl MetaLayout {
  /// The full layout for `count` datagrams.
  pub fn full(count: usize) -> Self {
    MetaLayout { count, compact: false }
  }
  /// The compact layout for `count` datagrams.
  pub fn compact(count: usize) -> Self {
    MetaLayout { count, compact: true }
  }
  fn at(&self, full: usize, compact: usize) -> usize {
    (if self.compact { compact } else { full }) * self.count
  }
  /// Payload lengths, u32.
  pub fn lengths(&self) -> usize {
    self.at(8, 0)
  }
  /// Payload offsets, u32.
  pub fn offsets(&self) -> usize {
    self.at(12, 4)
  }
  /// Source ports, u16.
  pub fn ports(&self) -> usize {
    self.at(24, 12)
  }
  /// Source families, u8.
  pub fn families(&self) -> usize {
    self.at(26, 14)
  }
  /// Flag bits (`FLAG_*`), u8.
  pub fn flags(&self) -> usize {
    self.at(27, 15)
  }
  /// Source addresses, [`address_width`](Self::address_width) bytes each.
  pub fn addresses(&self) -> usize {
    self.at(32, 8)
  }
  /// Bytes per source address: 16, or 4 (IPv4 only) in the compact layout.
  pub fn address_width(&self) -> usize {
    if self.compact {
      4
    } else {
      16
    }
  }
  /// The sections of the full layout only (None for the compact one).
  pub fn extras(&self) -> Option<ExtraSections> {
    (!self.compact).then(|| ExtraSections::of_full(self.count))
  }
  /// Metadata bytes in all (where the payloads start).
  pub fn total(&self) -> usize {
    self.at(META_BYTES_PER_DATAGRAM, COMPACT_META_BYTES_PER_DATAGRAM)
  }
  /// Every section as (offset, bytes per datagram), in layout order.
  fn sections(&self) -> Vec<(usize, usize)> {
    let mut v = vec![
      (self.lengths(), 4),
      (self.offsets(), 4),
      (self.ports(), 2),
      (self.families(), 1),
      (self.flags(), 1),
      (self.addresses(), self.address_width()),
    ];
    if let Some(x) = self.extras() {
      v.extend([
        (x.timestamps, 8),
        (x.scopes, 4),
        (x.ifindexes, 4),
        (x.tos, 1),
        (x.local_families, 1),
        (x.local_addresses, 16),
      ]);
    }
    v
  }
}

/// What the control messages told about one datagram (all optional).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Extra {
  /// Flag bits (`FLAG_*`).
  pub flags: u8,
  /// Kernel receive time, nanoseconds since the Unix epoch.
  pub timestamp_ns: u64,
  /// TOS (IPv4) or traffic class (IPv6) byte; ECN is its low two bits.
  pub tos: u8,
  /// The address the datagram was sent to.
  pub local: CompactAddr,
  /// The interface it arrived on.
  pub ifindex: u32,
}

/// A received batch ready to hand to JS: metadata (`meta_len` bytes) then payloads.
#[derive(Debug, Default)]
pub struct RawBatch {
  /// Metadata then payloads.
  pub bytes: Vec<u8>,
  /// Bytes of metadata at the start of `bytes`.
  pub meta_len: usize,
  /// Datagrams in the batch.
  pub count: u32,
  /// Kernel's cumulative drop counter (`SO_RXQ_OVFL`) as of this batch, if enabled.
  pub kernel_drops: Option<u64>,
  /// Receives in this batch that the kernel had coalesced (GRO) and that were split again.
  pub gro_slots: u32,
  /// Datagrams in this batch whose control data the kernel cut (`MSG_CTRUNC`).
  pub control_truncated: u32,
  /// The metadata has the compact layout.
  pub compact: bool,
}

impl RawBatch {
  /// The layout of this batch's metadata.
  pub fn layout(&self) -> MetaLayout {
    MetaLayout { count: self.count as usize, compact: self.compact }
  }
  /// The metadata section.
  pub fn meta(&self) -> &[u8] {
    &self.bytes[..self.meta_len]
  }
  /// The payloads, back to back.
  pub fn data(&self) -> &[u8] {
    &self.bytes[self.meta_len..]
  }
}

/// Builds a [`RawBatch`] datagram by datagram. Capacity is reserved up front, so pushing never
/// reallocates when the caller passes the right totals.
pub struct BatchBuilder {
  layout: MetaLayout,
  /// Metadata (`layout.total()` bytes, zeroed) followed by the payloads pushed so far.
  buf: Vec<u8>,
  next: usize,
}

impl BatchBuilder {
  /// Reserves room for `count` datagrams carrying `payload_bytes` bytes in all, with the
  /// compact layout when `compact` (then every source must be IPv4 and no datagram may carry
  /// [`FLAGS_NEEDING_FULL`]; `push` refuses one that does).
  pub fn new(count: usize, payload_bytes: usize, compact: bool) -> Self {
    let layout = MetaLayout { count, compact };
    let mut buf = Vec::with_capacity(layout.total() + payload_bytes);
    buf.resize(layout.total(), 0);
    BatchBuilder { layout, buf, next: 0 }
  }

  /// Appends one datagram. Returns false (and appends nothing) once `count` datagrams are in,
  /// or when the batch is compact and the datagram needs the full layout (a caller's bug).
  pub fn push(&mut self, payload: &[u8], from: &CompactAddr, extra: &Extra) -> bool {
    self.push_parts(payload, &[], from, extra)
  }

  /// [`push`](Self::push) for a datagram whose bytes are `head` followed by `tail` (a receive
  /// slot made of two buffers).
  pub fn push_parts(&mut self, head: &[u8], tail: &[u8], from: &CompactAddr, extra: &Extra) -> bool {
    let l = self.layout;
    if self.next >= l.count || (l.compact && !fits_compact(from, extra)) {
      return false;
    }
    let w = l.address_width();
    let i = self.append(head, tail, from.port, from.family, extra.flags, &from.bytes[..w]);
    if let Some(x) = l.extras() {
      let meta = &mut self.buf[..l.total()];
      put_u32(meta, x.scopes + 4 * i, from.scope_id);
      if extra.flags & FLAG_TIMESTAMP != 0 {
        let t = x.timestamps + 8 * i;
        meta[t..t + 8].copy_from_slice(&extra.timestamp_ns.to_ne_bytes());
      }
      if extra.flags & FLAG_TOS != 0 {
        meta[x.tos + i] = extra.tos;
      }
      if extra.flags & FLAG_LOCAL != 0 {
        put_u32(meta, x.ifindexes + 4 * i, extra.ifindex);
        meta[x.local_families + i] = extra.local.family;
        let d = x.local_addresses + 16 * i;
        meta[d..d + 16].copy_from_slice(&extra.local.bytes);
      }
    }
    true
  }

  /// [`push_parts`](Self::push_parts) for the common case of a compact batch: a datagram from
  /// IPv4 address `ip` (network order, as the kernel writes it) with no extras. Returns false
  /// (and appends nothing) when the batch is full or not compact.
  pub fn push_v4(&mut self, head: &[u8], tail: &[u8], ip: [u8; 4], port: u16) -> bool {
    if self.next >= self.layout.count || !self.layout.compact {
      return false;
    }
    self.append(head, tail, port, crate::addr::FAMILY_V4, 0, &ip);
    true
  }

  /// Appends the next datagram's payload and writes the sections every layout has (`address`
  /// is `address_width()` bytes); returns its index. The caller checked there is room.
  fn append(&mut self, head: &[u8], tail: &[u8], port: u16, family: u8, flags: u8, address: &[u8]) -> usize {
    let i = self.next;
    let l = self.layout;
    let offset = (self.buf.len() - l.total()) as u32;
    self.buf.extend_from_slice(head);
    self.buf.extend_from_slice(tail);
    let meta = &mut self.buf[..l.total()];
    put_u32(meta, l.lengths() + 4 * i, (head.len() + tail.len()) as u32);
    put_u32(meta, l.offsets() + 4 * i, offset);
    let p = l.ports() + 2 * i;
    meta[p..p + 2].copy_from_slice(&port.to_ne_bytes());
    meta[l.families() + i] = family;
    meta[l.flags() + i] = flags;
    let a = l.addresses() + address.len() * i;
    meta[a..a + address.len()].copy_from_slice(address);
    self.next += 1;
    i
  }

  /// Finishes the batch. If fewer datagrams than reserved were pushed, the metadata is
  /// re-laid out for the real count so the JS side can rely on `MetaLayout { count }`.
  pub fn finish(self, kernel_drops: Option<u64>) -> RawBatch {
    let n = self.next;
    let total = self.layout.total();
    let bytes = if n == self.layout.count {
      self.buf
    } else {
      let mut out = relayout(&self.buf[..total], self.layout, n);
      out.extend_from_slice(&self.buf[total..]);
      out
    };
    RawBatch {
      bytes,
      meta_len: MetaLayout { count: n, compact: self.layout.compact }.total(),
      count: n as u32,
      kernel_drops,
      gro_slots: 0,
      control_truncated: 0,
      compact: self.layout.compact,
    }
  }
}

fn put_u32(buf: &mut [u8], at: usize, v: u32) {
  buf[at..at + 4].copy_from_slice(&v.to_ne_bytes());
}

/// Whether a datagram from `from` with `extra` can go into a compact batch: an IPv4 (or
/// unknown, all-zero) source and none of the per-datagram extras.
pub fn fits_compact(from: &CompactAddr, extra: &Extra) -> bool {
  from.family != 6
    && from.scope_id == 0
    && from.bytes[4..].iter().all(|&b| b == 0)
    && extra.flags & FLAGS_NEEDING_FULL == 0
}

fn relayout(meta: &[u8], from: MetaLayout, n: usize) -> Vec<u8> {
  let to = MetaLayout { count: n, compact: from.compact };
  let mut out = vec![0u8; to.total()];
  for ((src, width), (dst, _)) in from.sections().into_iter().zip(to.sections()) {
    out[dst..dst + width * n].copy_from_slice(&meta[src..src + width * n]);
  }
  out
}

#[cfg(test)]
mod tests {
  use super::*;

  fn read_u32(m: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(m[at..at + 4].try_into().unwrap())
  }

  fn addr(port: u16, last: u8) -> CompactAddr {
    let mut bytes = [0u8; 16];
    bytes[..4].copy_from_slice(&[127, 0, 0, last]);
    CompactAddr { family: 4, port, bytes, scope_id: 0 }
  }

  fn flags(f: u8) -> Extra {
    Extra { flags: f, ..Extra::default() }
  }

  #[test]
  fn layout_sections_do_not_overlap_and_are_aligned() {
    for compact in [false, true] {
      for n in [1usize, 2, 3, 63, 64, 1024] {
        let l = MetaLayout { count: n, compact };
        let mut sections: Vec<(usize, usize, usize)> =
          l.sections().into_iter().map(|(at, width)| (at, width * n, width.min(8))).collect();
        sections.sort();
        for w in sections.windows(2) {
          assert!(w[0].0 + w[0].1 <= w[1].0, "sections overlap for n={n} compact={compact}");
        }
        for &(start, _, align) in &sections {
          assert_eq!(start % align, 0, "misaligned section for n={n} compact={compact}");
        }
        let (last, bytes, _) = sections[sections.len() - 1];
        assert_eq!(last + bytes, l.total());
        assert_eq!(l.total(), if compact { 16 * n } else { 64 * n });
        assert_eq!(l.extras().is_none(), compact);
      }
    }
  }

  #[test]
  fn a_compact_batch_holds_ipv4_sources_in_four_bytes_and_refuses_what_needs_more() {
    let mut b = BatchBuilder::new(3, 8, true);
    assert!(b.push(b"abc", &addr(1000, 1), &flags(FLAG_TRUNCATED)));
    let v6 = CompactAddr { family: 6, port: 1, bytes: [1; 16], scope_id: 0 };
    assert!(!b.push(b"x", &v6, &flags(0)), "an IPv6 source needs the full layout");
    assert!(!b.push(b"x", &addr(1, 1), &flags(FLAG_TIMESTAMP)), "so does a timestamp");
    assert!(b.push(b"defgh", &addr(1001, 2), &flags(0)));
    let r = b.finish(None);
    assert!(r.compact);
    assert_eq!((r.count, r.meta_len), (2, 32), "re-laid out for 2 datagrams");
    assert_eq!(r.data(), b"abcdefgh");
    let l = r.layout();
    let m = r.meta();
    assert_eq!([read_u32(m, l.lengths()), read_u32(m, l.lengths() + 4)], [3, 5]);
    assert_eq!([read_u32(m, l.offsets()), read_u32(m, l.offsets() + 4)], [0, 3]);
    assert_eq!(&m[l.addresses()..l.addresses() + 8], &[127, 0, 0, 1, 127, 0, 0, 2]);
    assert_eq!(u16::from_ne_bytes([m[l.ports() + 2], m[l.ports() + 3]]), 1001);
    assert_eq!([m[l.families()], m[l.families() + 1]], [4, 4]);
    assert_eq!([m[l.flags()], m[l.flags() + 1]], [FLAG_TRUNCATED, 0]);
  }

  #[test]
  fn builder_packs_back_to_back_and_records_metadata() {
    let mut b = BatchBuilder::new(3, 9, false);
    assert!(b.push(b"abc", &addr(1000, 1), &flags(0)));
    let extra = Extra {
      flags: FLAG_TRUNCATED | FLAG_TIMESTAMP | FLAG_TOS | FLAG_LOCAL,
      timestamp_ns: 1_700_000_000_123_456_789,
      tos: 0x2e,
      local: addr(0, 42),
      ifindex: 1,
    };
    assert!(b.push(b"", &addr(1001, 2), &extra));
    assert!(b.push(b"defghi", &addr(1002, 3), &flags(0)));
    assert!(!b.push(b"x", &addr(1, 1), &flags(0)), "a full builder refuses more");
    let r = b.finish(Some(7));
    assert_eq!(r.count, 3);
    assert_eq!(r.data(), b"abcdefghi");
    let l = MetaLayout::full(3);
    let x = l.extras().unwrap();
    let m = r.meta();
    assert_eq!(
      [read_u32(m, l.lengths()), read_u32(m, l.lengths() + 4), read_u32(m, l.lengths() + 8)],
      [3, 0, 6]
    );
    assert_eq!([read_u32(m, l.offsets()), read_u32(m, l.offsets() + 8)], [0, 3]);
    assert_eq!(m[l.flags() + 1], extra.flags);
    assert_eq!(m[l.flags()], 0);
    assert_eq!(&m[l.addresses() + 32..l.addresses() + 36], &[127, 0, 0, 3]);
    assert_eq!(
      u64::from_ne_bytes(m[x.timestamps + 8..x.timestamps + 16].try_into().unwrap()),
      extra.timestamp_ns
    );
    assert_eq!(m[x.tos + 1], 0x2e);
    assert_eq!(read_u32(m, x.ifindexes + 4), 1);
    assert_eq!(m[x.local_families + 1], 4);
    assert_eq!(&m[x.local_addresses + 16..x.local_addresses + 20], &[127, 0, 0, 42]);
    assert_eq!(r.kernel_drops, Some(7));
  }

  #[test]
  fn short_batch_is_relaid_out_for_its_real_count() {
    let mut b = BatchBuilder::new(64, 100, false);
    b.push(b"hello", &addr(5353, 9), &flags(0));
    b.push(
      b"world!",
      &addr(5354, 8),
      &Extra { flags: FLAG_TRUNCATED | FLAG_TOS, tos: 3, ..Extra::default() },
    );
    let r = b.finish(None);
    let l = MetaLayout::full(2);
    let m = r.meta();
    assert_eq!(m.len(), l.total());
    assert_eq!(r.data(), b"helloworld!");
    assert_eq!(read_u32(m, l.lengths() + 4), 6);
    assert_eq!(read_u32(m, l.offsets() + 4), 5);
    assert_eq!(u16::from_ne_bytes([m[l.ports() + 2], m[l.ports() + 3]]), 5354);
    assert_eq!(m[l.families()], 4);
    assert_eq!(m[l.flags() + 1], FLAG_TRUNCATED | FLAG_TOS);
    assert_eq!(m[l.extras().unwrap().tos + 1], 3);
    assert_eq!(m[l.addresses() + 16 + 3], 8);
  }
}

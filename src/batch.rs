//! The compact form in which a received batch travels to JS: one buffer holding the metadata,
//! laid out as parallel arrays, followed by the payloads back to back. One allocation and one
//! JS object per batch.
//!
//! Metadata layout for a batch of `n` datagrams (byte offsets; every section starts aligned
//! for its element type because the sections are ordered by element size):
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
//! `lib/batch.ts` reads these offsets (as multiples of `n`) and the flags from the exported
//! `batchLayout()` (`native::dispatch`), so this file is the one place the layout is written.

use crate::addr::CompactAddr;

/// Bytes of metadata per datagram.
pub const META_BYTES_PER_DATAGRAM: usize = 64;
/// Flag bit: the datagram was longer than the receive slot and was cut (`MSG_TRUNC`).
pub const FLAG_TRUNCATED: u8 = 1;
/// Flag bit: the local (destination) address and interface index are known (`IP_PKTINFO`).
pub const FLAG_LOCAL: u8 = 2;
/// Flag bit: the kernel receive timestamp is known (`SO_TIMESTAMPNS`).
pub const FLAG_TIMESTAMP: u8 = 4;
/// Flag bit: the TOS / traffic class byte is known (`IP_RECVTOS` / `IPV6_RECVTCLASS`).
pub const FLAG_TOS: u8 = 8;

/// Where each section of the metadata starts, for `n` datagrams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetaLayout {
  /// Datagrams in the batch.
  pub count: usize,
}

impl MetaLayout {
  /// Receive timestamps, u64 nanoseconds.
  pub fn timestamps(&self) -> usize {
    0
  }
  /// Payload lengths, u32.
  pub fn lengths(&self) -> usize {
    8 * self.count
  }
  /// Payload offsets, u32.
  pub fn offsets(&self) -> usize {
    12 * self.count
  }
  /// IPv6 scope ids, u32.
  pub fn scopes(&self) -> usize {
    16 * self.count
  }
  /// Interface indexes, u32.
  pub fn ifindexes(&self) -> usize {
    20 * self.count
  }
  /// Source ports, u16.
  pub fn ports(&self) -> usize {
    24 * self.count
  }
  /// Source families, u8.
  pub fn families(&self) -> usize {
    26 * self.count
  }
  /// Flag bits (`FLAG_*`), u8.
  pub fn flags(&self) -> usize {
    27 * self.count
  }
  /// TOS / traffic class bytes, u8.
  pub fn tos(&self) -> usize {
    28 * self.count
  }
  /// Local address families, u8.
  pub fn local_families(&self) -> usize {
    29 * self.count
  }
  /// Source addresses, 16 bytes each.
  pub fn addresses(&self) -> usize {
    32 * self.count
  }
  /// Local addresses, 16 bytes each.
  pub fn local_addresses(&self) -> usize {
    48 * self.count
  }
  /// Metadata bytes in all (where the payloads start).
  pub fn total(&self) -> usize {
    META_BYTES_PER_DATAGRAM * self.count
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
}

impl RawBatch {
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
  /// Reserves room for `count` datagrams carrying `payload_bytes` bytes in all.
  pub fn new(count: usize, payload_bytes: usize) -> Self {
    let layout = MetaLayout { count };
    let mut buf = Vec::with_capacity(layout.total() + payload_bytes);
    buf.resize(layout.total(), 0);
    BatchBuilder { layout, buf, next: 0 }
  }

  /// Appends one datagram. Returns false (and appends nothing) once `count` datagrams are in.
  pub fn push(&mut self, payload: &[u8], from: &CompactAddr, extra: &Extra) -> bool {
    let i = self.next;
    if i >= self.layout.count {
      return false;
    }
    let l = self.layout;
    let offset = (self.buf.len() - l.total()) as u32;
    self.buf.extend_from_slice(payload);
    let meta = &mut self.buf[..l.total()];
    put_u32(meta, l.lengths() + 4 * i, payload.len() as u32);
    put_u32(meta, l.offsets() + 4 * i, offset);
    put_u32(meta, l.scopes() + 4 * i, from.scope_id);
    let p = l.ports() + 2 * i;
    meta[p..p + 2].copy_from_slice(&from.port.to_ne_bytes());
    meta[l.families() + i] = from.family;
    meta[l.flags() + i] = extra.flags;
    let a = l.addresses() + 16 * i;
    meta[a..a + 16].copy_from_slice(&from.bytes);
    if extra.flags & FLAG_TIMESTAMP != 0 {
      let t = l.timestamps() + 8 * i;
      meta[t..t + 8].copy_from_slice(&extra.timestamp_ns.to_ne_bytes());
    }
    if extra.flags & FLAG_TOS != 0 {
      meta[l.tos() + i] = extra.tos;
    }
    if extra.flags & FLAG_LOCAL != 0 {
      put_u32(meta, l.ifindexes() + 4 * i, extra.ifindex);
      meta[l.local_families() + i] = extra.local.family;
      let d = l.local_addresses() + 16 * i;
      meta[d..d + 16].copy_from_slice(&extra.local.bytes);
    }
    self.next += 1;
    true
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
      meta_len: MetaLayout { count: n }.total(),
      count: n as u32,
      kernel_drops,
      gro_slots: 0,
      control_truncated: 0,
    }
  }
}

fn put_u32(buf: &mut [u8], at: usize, v: u32) {
  buf[at..at + 4].copy_from_slice(&v.to_ne_bytes());
}

fn relayout(meta: &[u8], from: MetaLayout, n: usize) -> Vec<u8> {
  let to = MetaLayout { count: n };
  let mut out = vec![0u8; to.total()];
  let sections = [
    (from.timestamps(), to.timestamps(), 8),
    (from.lengths(), to.lengths(), 4),
    (from.offsets(), to.offsets(), 4),
    (from.scopes(), to.scopes(), 4),
    (from.ifindexes(), to.ifindexes(), 4),
    (from.ports(), to.ports(), 2),
    (from.families(), to.families(), 1),
    (from.flags(), to.flags(), 1),
    (from.tos(), to.tos(), 1),
    (from.local_families(), to.local_families(), 1),
    (from.addresses(), to.addresses(), 16),
    (from.local_addresses(), to.local_addresses(), 16),
  ];
  for (src, dst, width) in sections {
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
    for n in [1usize, 2, 3, 63, 64, 1024] {
      let l = MetaLayout { count: n };
      let mut sections = [
        (l.timestamps(), 8 * n, 8),
        (l.lengths(), 4 * n, 4),
        (l.offsets(), 4 * n, 4),
        (l.scopes(), 4 * n, 4),
        (l.ifindexes(), 4 * n, 4),
        (l.ports(), 2 * n, 2),
        (l.families(), n, 1),
        (l.flags(), n, 1),
        (l.tos(), n, 1),
        (l.local_families(), n, 1),
        (l.addresses(), 16 * n, 1),
        (l.local_addresses(), 16 * n, 1),
      ];
      sections.sort();
      for w in sections.windows(2) {
        assert!(w[0].0 + w[0].1 <= w[1].0, "sections overlap for n={n}");
      }
      for (start, _, align) in sections {
        assert_eq!(start % align, 0, "misaligned section for n={n}");
      }
      assert_eq!(l.local_addresses() + 16 * n, l.total());
    }
  }

  #[test]
  fn builder_packs_back_to_back_and_records_metadata() {
    let mut b = BatchBuilder::new(3, 9);
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
    let l = MetaLayout { count: 3 };
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
      u64::from_ne_bytes(m[l.timestamps() + 8..l.timestamps() + 16].try_into().unwrap()),
      extra.timestamp_ns
    );
    assert_eq!(m[l.tos() + 1], 0x2e);
    assert_eq!(read_u32(m, l.ifindexes() + 4), 1);
    assert_eq!(m[l.local_families() + 1], 4);
    assert_eq!(&m[l.local_addresses() + 16..l.local_addresses() + 20], &[127, 0, 0, 42]);
    assert_eq!(r.kernel_drops, Some(7));
  }

  #[test]
  fn short_batch_is_relaid_out_for_its_real_count() {
    let mut b = BatchBuilder::new(64, 100);
    b.push(b"hello", &addr(5353, 9), &flags(0));
    b.push(
      b"world!",
      &addr(5354, 8),
      &Extra { flags: FLAG_TRUNCATED | FLAG_TOS, tos: 3, ..Extra::default() },
    );
    let r = b.finish(None);
    let l = MetaLayout { count: 2 };
    let m = r.meta();
    assert_eq!(m.len(), l.total());
    assert_eq!(r.data(), b"helloworld!");
    assert_eq!(read_u32(m, l.lengths() + 4), 6);
    assert_eq!(read_u32(m, l.offsets() + 4), 5);
    assert_eq!(u16::from_ne_bytes([m[l.ports() + 2], m[l.ports() + 3]]), 5354);
    assert_eq!(m[l.families()], 4);
    assert_eq!(m[l.flags() + 1], FLAG_TRUNCATED | FLAG_TOS);
    assert_eq!(m[l.tos() + 1], 3);
    assert_eq!(m[l.addresses() + 16 + 3], 8);
  }
}

//! The compact form in which a received batch travels to JS: one buffer holding the metadata,
//! laid out as parallel arrays, followed by the payloads back to back. One allocation and one
//! JS object per batch.
//!
//! Metadata layout for a batch of `n` datagrams (byte offsets; every section starts aligned
//! for its element type because the sections are ordered by element size):
//!
//! | section    | type      | offset | bytes |
//! |------------|-----------|--------|-------|
//! | lengths    | u32[n]    | 0      | 4n    |
//! | offsets    | u32[n]    | 4n     | 4n    |
//! | scope ids  | u32[n]    | 8n     | 4n    |
//! | ports      | u16[n]    | 12n    | 2n    |
//! | families   | u8[n]     | 14n    | n     |
//! | flags      | u8[n]     | 15n    | n     |
//! | addresses  | u8[16n]   | 16n    | 16n   |
//!
//! `lib/batch.js` reads the same layout; the two must change together.

use crate::addr::CompactAddr;

/// Bytes of metadata per datagram.
pub const META_BYTES_PER_DATAGRAM: usize = 32;
/// Flag bit: the datagram was longer than the receive slot and was cut (`MSG_TRUNC`).
pub const FLAG_TRUNCATED: u8 = 1;

/// Where each section of the metadata starts, for `n` datagrams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetaLayout {
  pub count: usize,
}

impl MetaLayout {
  pub fn lengths(&self) -> usize {
    0
  }
  pub fn offsets(&self) -> usize {
    4 * self.count
  }
  pub fn scopes(&self) -> usize {
    8 * self.count
  }
  pub fn ports(&self) -> usize {
    12 * self.count
  }
  pub fn families(&self) -> usize {
    14 * self.count
  }
  pub fn flags(&self) -> usize {
    15 * self.count
  }
  pub fn addresses(&self) -> usize {
    16 * self.count
  }
  pub fn total(&self) -> usize {
    META_BYTES_PER_DATAGRAM * self.count
  }
}

/// A received batch ready to hand to JS: metadata (`meta_len` bytes) then payloads.
#[derive(Debug, Default)]
pub struct RawBatch {
  pub bytes: Vec<u8>,
  pub meta_len: usize,
  pub count: u32,
  /// Kernel's cumulative drop counter (`SO_RXQ_OVFL`) as of this batch, if enabled.
  pub kernel_drops: Option<u64>,
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
  pub fn push(&mut self, payload: &[u8], from: &CompactAddr, flags: u8) -> bool {
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
    meta[l.flags() + i] = flags;
    let a = l.addresses() + 16 * i;
    meta[a..a + 16].copy_from_slice(&from.bytes);
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
    RawBatch { bytes, meta_len: MetaLayout { count: n }.total(), count: n as u32, kernel_drops }
  }
}

fn put_u32(buf: &mut [u8], at: usize, v: u32) {
  buf[at..at + 4].copy_from_slice(&v.to_ne_bytes());
}

fn relayout(meta: &[u8], from: MetaLayout, n: usize) -> Vec<u8> {
  let to = MetaLayout { count: n };
  let mut out = vec![0u8; to.total()];
  let sections = [
    (from.lengths(), to.lengths(), 4),
    (from.offsets(), to.offsets(), 4),
    (from.scopes(), to.scopes(), 4),
    (from.ports(), to.ports(), 2),
    (from.families(), to.families(), 1),
    (from.flags(), to.flags(), 1),
    (from.addresses(), to.addresses(), 16),
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

  #[test]
  fn layout_sections_do_not_overlap_and_are_aligned() {
    for n in [1usize, 2, 3, 63, 64, 1024] {
      let l = MetaLayout { count: n };
      assert_eq!(l.offsets() - l.lengths(), 4 * n);
      assert_eq!(l.ports() % 2, 0);
      assert_eq!(l.scopes() % 4, 0);
      assert_eq!(l.addresses() + 16 * n, l.total());
    }
  }

  #[test]
  fn builder_packs_back_to_back_and_records_metadata() {
    let mut b = BatchBuilder::new(3, 9);
    assert!(b.push(b"abc", &addr(1000, 1), 0));
    assert!(b.push(b"", &addr(1001, 2), FLAG_TRUNCATED));
    assert!(b.push(b"defghi", &addr(1002, 3), 0));
    assert!(!b.push(b"x", &addr(1, 1), 0), "a full builder refuses more");
    let r = b.finish(Some(7));
    assert_eq!(r.count, 3);
    assert_eq!(r.data(), b"abcdefghi");
    let l = MetaLayout { count: 3 };
    assert_eq!([read_u32(r.meta(), 0), read_u32(r.meta(), 4), read_u32(r.meta(), 8)], [3, 0, 6]);
    assert_eq!([read_u32(r.meta(), l.offsets()), read_u32(r.meta(), l.offsets() + 8)], [0, 3]);
    assert_eq!(r.meta()[l.flags() + 1], FLAG_TRUNCATED);
    assert_eq!(&r.meta()[l.addresses() + 32..l.addresses() + 36], &[127, 0, 0, 3]);
    assert_eq!(r.kernel_drops, Some(7));
  }

  #[test]
  fn short_batch_is_relaid_out_for_its_real_count() {
    let mut b = BatchBuilder::new(64, 100);
    b.push(b"hello", &addr(5353, 9), 0);
    b.push(b"world!", &addr(5354, 8), FLAG_TRUNCATED);
    let r = b.finish(None);
    let l = MetaLayout { count: 2 };
    assert_eq!(r.meta().len(), l.total());
    assert_eq!(r.data(), b"helloworld!");
    assert_eq!(read_u32(r.meta(), l.lengths() + 4), 6);
    assert_eq!(read_u32(r.meta(), l.offsets() + 4), 5);
    assert_eq!(u16::from_ne_bytes([r.meta()[l.ports() + 2], r.meta()[l.ports() + 3]]), 5354);
    assert_eq!(r.meta()[l.families()], 4);
    assert_eq!(r.meta()[l.flags() + 1], FLAG_TRUNCATED);
    assert_eq!(r.meta()[l.addresses() + 16 + 3], 8);
  }
}

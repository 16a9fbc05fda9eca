//! Control messages (ancillary data): a bounds-checked walk over a control buffer, and the
//! encoders the send path needs. A malformed or unknown control message is skipped; nothing
//! is ever read past the length the kernel reported.

use std::mem::size_of;

/// One control message found in a buffer.
#[derive(Debug, PartialEq, Eq)]
pub struct Cmsg<'a> {
  pub level: i32,
  pub kind: i32,
  pub data: &'a [u8],
}

const fn align(len: usize) -> usize {
  let a = size_of::<usize>();
  (len + a - 1) & !(a - 1)
}

/// Size of the `cmsghdr` header, aligned (what `CMSG_LEN(0)` is).
pub const HDR: usize = align(size_of::<libc::cmsghdr>());

/// Room a control message with `data_len` bytes of payload takes (`CMSG_SPACE`).
pub const fn space(data_len: usize) -> usize {
  HDR + align(data_len)
}

/// Iterates the control messages in the first `len` bytes of `buf`.
pub fn parse(buf: &[u8], len: usize) -> CmsgIter<'_> {
  CmsgIter { buf: &buf[..len.min(buf.len())], pos: 0 }
}

/// Iterator returned by [`parse`].
pub struct CmsgIter<'a> {
  buf: &'a [u8],
  pos: usize,
}

impl<'a> Iterator for CmsgIter<'a> {
  type Item = Cmsg<'a>;
  fn next(&mut self) -> Option<Cmsg<'a>> {
    let rest = self.buf.get(self.pos..)?;
    if rest.len() < size_of::<libc::cmsghdr>() {
      return None;
    }
    // SAFETY: `rest` holds at least size_of::<cmsghdr>() bytes; read_unaligned copes with
    // any alignment of the byte slice.
    let hdr: libc::cmsghdr = unsafe { std::ptr::read_unaligned(rest.as_ptr() as *const libc::cmsghdr) };
    let total = hdr.cmsg_len as usize;
    if total < HDR || total > rest.len() {
      // Malformed: a length that cannot hold its header or runs past the buffer. Stop.
      return None;
    }
    let data = &rest[HDR..total];
    self.pos += align(total).max(HDR);
    Some(Cmsg { level: hdr.cmsg_level, kind: hdr.cmsg_type, data })
  }
}

/// Reads a native-endian u32 payload (e.g. `SO_RXQ_OVFL`), if the payload is big enough.
pub fn read_u32(data: &[u8]) -> Option<u32> {
  data.get(..4).map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
}

/// Reads a native-endian u16 or i32 payload (e.g. `UDP_GRO`'s segment size, which the kernel
/// writes as an int).
pub fn read_int(data: &[u8]) -> Option<i32> {
  if data.len() >= 4 {
    Some(i32::from_ne_bytes([data[0], data[1], data[2], data[3]]))
  } else {
    data.get(..2).map(|b| u16::from_ne_bytes([b[0], b[1]]) as i32)
  }
}

/// Writes one control message at the start of `buf`; returns the bytes used, or None if it
/// does not fit.
pub fn write(buf: &mut [u8], level: i32, kind: i32, payload: &[u8]) -> Option<usize> {
  let need = space(payload.len());
  if buf.len() < need {
    return None;
  }
  // SAFETY: an all-zero cmsghdr is valid; fields are then set explicitly.
  let mut hdr: libc::cmsghdr = unsafe { std::mem::zeroed() };
  hdr.cmsg_len = (HDR + payload.len()) as _;
  hdr.cmsg_level = level;
  hdr.cmsg_type = kind;
  buf[..need].fill(0);
  // SAFETY: `buf` has at least `need` >= size_of::<cmsghdr>() bytes; write_unaligned copes
  // with any alignment.
  unsafe { std::ptr::write_unaligned(buf.as_mut_ptr() as *mut libc::cmsghdr, hdr) };
  buf[HDR..HDR + payload.len()].copy_from_slice(payload);
  Some(need)
}

/// Tracks a kernel counter that wraps at 2^32 (`SO_RXQ_OVFL`) as a 64-bit total.
#[derive(Debug, Default, Clone, Copy)]
pub struct WrappingCounter {
  last: Option<u32>,
  total: u64,
}

impl WrappingCounter {
  /// Feeds one reading; readings older than the last one (smaller modulo wrap by more than
  /// half the range) are ignored, so the same drops are never counted twice.
  pub fn observe(&mut self, reading: u32) {
    match self.last {
      None => {
        self.total = reading as u64;
        self.last = Some(reading);
      }
      Some(last) => {
        let diff = reading.wrapping_sub(last);
        if diff != 0 && diff < (1 << 31) {
          self.total += diff as u64;
          self.last = Some(reading);
        }
      }
    }
  }
  pub fn total(&self) -> u64 {
    self.total
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn round_trips_written_messages() {
    let mut buf = vec![0u8; 128];
    let a = write(&mut buf, 1, 40, &7u32.to_ne_bytes()).unwrap();
    let b = write(&mut buf[a..], 17, 104, &1400i32.to_ne_bytes()).unwrap();
    let found: Vec<_> = parse(&buf, a + b).collect();
    assert_eq!(found.len(), 2);
    assert_eq!((found[0].level, found[0].kind, read_u32(found[0].data)), (1, 40, Some(7)));
    assert_eq!((found[1].level, found[1].kind, read_int(found[1].data)), (17, 104, Some(1400)));
  }

  #[test]
  fn malformed_lengths_stop_the_walk() {
    let mut buf = vec![0u8; 64];
    write(&mut buf, 1, 40, &[1, 2, 3, 4]).unwrap();
    // Claim a length past the buffer.
    // SAFETY: `buf` holds 64 bytes, more than one cmsghdr; read_unaligned copes with alignment.
    let mut hdr: libc::cmsghdr = unsafe { std::ptr::read_unaligned(buf.as_ptr() as *const libc::cmsghdr) };
    hdr.cmsg_len = 1000 as _;
    // SAFETY: as above, writing one cmsghdr into the 64-byte buffer.
    unsafe { std::ptr::write_unaligned(buf.as_mut_ptr() as *mut libc::cmsghdr, hdr) };
    assert_eq!(parse(&buf, 64).count(), 0);
    // A length shorter than the header.
    hdr.cmsg_len = 3 as _;
    // SAFETY: as above, writing one cmsghdr into the 64-byte buffer.
    unsafe { std::ptr::write_unaligned(buf.as_mut_ptr() as *mut libc::cmsghdr, hdr) };
    assert_eq!(parse(&buf, 64).count(), 0);
    // A controllen shorter than one header.
    assert_eq!(parse(&buf, 4).count(), 0);
  }

  #[test]
  fn wrapping_counter_handles_wrap_and_stale_readings() {
    let mut c = WrappingCounter::default();
    c.observe(10);
    c.observe(10);
    c.observe(5); // stale, ignored
    assert_eq!(c.total(), 10);
    let mut w = WrappingCounter::default();
    w.observe(u32::MAX - 1);
    w.observe(3); // wrapped: 5 more
    assert_eq!(w.total(), u32::MAX as u64 - 1 + 5);
  }
}

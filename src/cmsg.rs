//! Control messages (ancillary data): a bounds-checked walk over a control buffer, and the
//! encoders the send path needs. A malformed or unknown control message is skipped; nothing
//! is ever read past the length the kernel reported.
//!
//! Layout comes from the `libc` crate's per-platform `CMSG_*` functions, never from a
//! hard-coded alignment: Linux aligns headers and payloads to `usize` (a 16-byte header on
//! 64-bit), Darwin to 4 bytes (a 12-byte header). The walk never dereferences the caller's
//! buffer (which may sit at any alignment): each header is copied out with a bounds-checked
//! `read_unaligned`, and `CMSG_NXTHDR` is asked about that aligned copy and a `msghdr`
//! describing the bytes left from it, so its answer is an offset, checked again against the
//! slice.

use std::mem::size_of;

/// One control message found in a buffer.
#[derive(Debug, PartialEq, Eq)]
pub struct Cmsg<'a> {
  pub level: i32,
  pub kind: i32,
  pub data: &'a [u8],
}

/// `CMSG_LEN(0)`: the aligned header size, where the payload starts.
// SAFETY: CMSG_LEN is pure arithmetic on its argument (unsafe only by libc's convention).
pub const HDR: usize = unsafe { libc::CMSG_LEN(0) } as usize;

/// Room a control message with `data_len` bytes of payload takes (`CMSG_SPACE`).
pub const fn space(data_len: usize) -> usize {
  // SAFETY: CMSG_SPACE is pure arithmetic on its argument. Payloads here are a few bytes,
  // far below c_uint::MAX.
  unsafe { libc::CMSG_SPACE(data_len as libc::c_uint) as usize }
}

/// `CMSG_LEN(data_len)`: the `cmsg_len` of a message with `data_len` bytes of payload.
const fn len_of(data_len: usize) -> usize {
  // SAFETY: CMSG_LEN is pure arithmetic on its argument.
  unsafe { libc::CMSG_LEN(data_len as libc::c_uint) as usize }
}

/// Offset of the payload from its header (`CMSG_DATA(h) - h`), asked of libc on an aligned,
/// zeroed header.
fn data_offset() -> usize {
  // SAFETY: an all-zero cmsghdr is valid plain data.
  let hdr: libc::cmsghdr = unsafe { std::mem::zeroed() };
  let at = &hdr as *const libc::cmsghdr;
  // SAFETY: CMSG_DATA only offsets the pointer (by the aligned header size); the result is
  // turned into a number and never dereferenced.
  (unsafe { libc::CMSG_DATA(at) } as usize) - at as usize
}

/// Where the header after one at `offset` (whose copy is `hdr`) starts, per the platform's
/// `CMSG_NXTHDR`, given `remaining` bytes from `offset` to the end of the control data;
/// `None` when no further header fits.
fn next_offset(hdr: &libc::cmsghdr, offset: usize, remaining: usize) -> Option<usize> {
  let at = hdr as *const libc::cmsghdr;
  // SAFETY: an all-zero msghdr is valid (musl's padding fields must be zero).
  let mut m: libc::msghdr = unsafe { std::mem::zeroed() };
  m.msg_control = at as *mut libc::c_void;
  m.msg_controllen = remaining.min(u32::MAX as usize) as _;
  // SAFETY: CMSG_NXTHDR reads `m` and `*at` (both live, aligned locals) and computes an
  // address from them; that address (past the local copy) is only compared and turned into
  // a distance, never dereferenced.
  let next = unsafe { libc::CMSG_NXTHDR(&m, at) };
  if next.is_null() {
    return None;
  }
  let step = (next as usize).checked_sub(at as usize)?;
  if step == 0 {
    return None;
  }
  offset.checked_add(step)
}

/// Iterates the control messages in the first `len` bytes of `buf`.
pub fn parse(buf: &[u8], len: usize) -> CmsgIter<'_> {
  let buf = &buf[..len.min(buf.len())];
  // CMSG_FIRSTHDR: the first header sits at the start when one fits.
  let first = if buf.len() >= size_of::<libc::cmsghdr>() { Some(0) } else { None };
  CmsgIter { buf, pos: first, data_at: data_offset() }
}

/// Iterator returned by [`parse`].
pub struct CmsgIter<'a> {
  buf: &'a [u8],
  pos: Option<usize>,
  data_at: usize,
}

impl<'a> Iterator for CmsgIter<'a> {
  type Item = Cmsg<'a>;
  fn next(&mut self) -> Option<Cmsg<'a>> {
    let pos = self.pos.take()?;
    let rest = self.buf.get(pos..)?;
    if rest.len() < size_of::<libc::cmsghdr>() {
      return None;
    }
    // SAFETY: `rest` holds at least size_of::<cmsghdr>() bytes; read_unaligned copes with
    // any alignment of the byte slice.
    let hdr: libc::cmsghdr = unsafe { std::ptr::read_unaligned(rest.as_ptr() as *const libc::cmsghdr) };
    #[allow(clippy::unnecessary_cast)] // socklen_t on musl and Darwin, size_t on glibc
    let total = hdr.cmsg_len as usize;
    if total < HDR || total > rest.len() {
      // Malformed: a length that cannot hold its header or runs past the buffer. Stop.
      return None;
    }
    let data = rest.get(self.data_at..total)?;
    self.pos = next_offset(&hdr, pos, rest.len()).filter(|&n| n > pos && n < self.buf.len());
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
  hdr.cmsg_len = len_of(payload.len()) as _;
  hdr.cmsg_level = level;
  hdr.cmsg_type = kind;
  buf[..need].fill(0);
  // SAFETY: `buf` has at least `need` >= size_of::<cmsghdr>() bytes; write_unaligned copes
  // with any alignment.
  unsafe { std::ptr::write_unaligned(buf.as_mut_ptr() as *mut libc::cmsghdr, hdr) };
  let at = data_offset();
  buf[at..at + payload.len()].copy_from_slice(payload);
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
  fn layout_is_the_platforms() {
    // Linux aligns to usize (16-byte header on 64-bit); Darwin to 4 bytes (12-byte header).
    #[cfg(target_os = "linux")]
    let (hdr, unit) = (size_of::<libc::cmsghdr>().next_multiple_of(size_of::<usize>()), size_of::<usize>());
    #[cfg(target_vendor = "apple")]
    let (hdr, unit) = (12, 4);
    #[cfg(any(target_os = "linux", target_vendor = "apple"))]
    {
      assert_eq!(HDR, hdr);
      assert_eq!(data_offset(), hdr);
      assert_eq!(space(1), hdr + unit);
      assert_eq!(space(unit), hdr + unit);
      assert_eq!(space(unit + 1), hdr + 2 * unit);
    }
  }

  #[test]
  fn walks_a_buffer_at_any_alignment() {
    let mut backing = [0u8; 160];
    for shift in 0..8 {
      let buf = &mut backing[shift..shift + 150];
      buf.fill(0);
      let a = write(buf, 1, 40, &[9, 0, 0, 0]).unwrap();
      let b = write(&mut buf[a..], 41, 50, &[1; 20]).unwrap();
      let c = write(&mut buf[a + b..], 0, 1, &[7]).unwrap();
      // The kernel reports the last message's CMSG_LEN, not its padded CMSG_SPACE.
      let end = a + b + HDR + 1;
      assert!(end <= a + b + c);
      let found: Vec<_> = parse(buf, end).map(|m| (m.level, m.kind, m.data.to_vec())).collect();
      assert_eq!(
        found,
        vec![(1, 40, vec![9, 0, 0, 0]), (41, 50, vec![1; 20]), (0, 1, vec![7])],
        "shift {shift}"
      );
    }
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

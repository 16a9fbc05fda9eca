//! Control messages: build the UDP_SEGMENT (GSO) cmsg for sends and read the
//! SO_RXQ_OVFL drop counter from received ones, with explicit bounds checks.

use std::mem;

/// Linux `UDP_SEGMENT` socket option / cmsg type (linux/udp.h).
pub const UDP_SEGMENT: i32 = libc::UDP_SEGMENT;
/// `SOL_UDP` == IPPROTO_UDP.
pub const SOL_UDP: i32 = libc::SOL_UDP;

/// Bytes of control buffer per message; plenty for one u32 or u16 cmsg.
pub const CTRL_LEN: usize = 64;

/// A control-message buffer aligned for `cmsghdr`.
#[repr(C, align(8))]
#[derive(Clone, Copy)]
pub struct CtrlBuf(pub [u8; CTRL_LEN]);

impl CtrlBuf {
  pub const ZERO: CtrlBuf = CtrlBuf([0; CTRL_LEN]);
}

/// CMSG_LEN(0): offset of the data after an aligned header.
fn hdr_len() -> usize {
  // SAFETY: CMSG_LEN is pure arithmetic on its argument.
  unsafe { libc::CMSG_LEN(0) as usize }
}

/// CMSG_ALIGN(len) for the platform's cmsg alignment (size_t).
fn align(len: usize) -> usize {
  let a = mem::size_of::<usize>();
  (len + a - 1) & !(a - 1)
}

/// Write one `SOL_UDP/UDP_SEGMENT` cmsg carrying `seg_size` (u16) into `buf`.
/// Returns the msg_controllen to use (CMSG_SPACE(2)).
pub fn write_udp_segment(buf: &mut CtrlBuf, seg_size: u16) -> usize {
  let data_len = mem::size_of::<u16>();
  // SAFETY: CMSG_SPACE/CMSG_LEN are pure arithmetic.
  let (space, len) =
    unsafe { (libc::CMSG_SPACE(data_len as u32) as usize, libc::CMSG_LEN(data_len as u32) as usize) };
  assert!(space <= CTRL_LEN, "control buffer too small");
  buf.0 = [0; CTRL_LEN];
  // SAFETY: an all-zero cmsghdr is a valid value of this plain C struct.
  let mut hdr: libc::cmsghdr = unsafe { mem::zeroed() };
  hdr.cmsg_len = len as _;
  hdr.cmsg_level = SOL_UDP;
  hdr.cmsg_type = UDP_SEGMENT;
  // SAFETY: `buf` holds CTRL_LEN >= size_of::<cmsghdr>() bytes and is
  // 8-aligned; write_unaligned has no alignment requirement anyway.
  unsafe { std::ptr::write_unaligned(buf.0.as_mut_ptr().cast::<libc::cmsghdr>(), hdr) };
  let off = hdr_len();
  buf.0[off..off + data_len].copy_from_slice(&seg_size.to_ne_bytes());
  space
}

/// Scan the first `controllen` bytes of `buf` (as returned by the kernel in
/// msg_controllen) for a `SOL_SOCKET/SO_RXQ_OVFL` cmsg and return its u32
/// cumulative drop counter. Malformed or truncated entries end the scan.
pub fn rxq_ovfl(buf: &CtrlBuf, controllen: usize) -> Option<u32> {
  let bytes = &buf.0[..controllen.min(CTRL_LEN)];
  let hsize = mem::size_of::<libc::cmsghdr>();
  let data_off = hdr_len();
  let mut off = 0usize;
  let mut found = None;
  // Bounded: each step advances `off` by at least `data_off` (> 0) bytes.
  while off + hsize <= bytes.len() {
    let at = bytes[off..].as_ptr().cast::<libc::cmsghdr>();
    // SAFETY: `off + hsize <= bytes.len()`, so the header lies inside the
    // slice; read_unaligned has no alignment requirement.
    let hdr: libc::cmsghdr = unsafe { std::ptr::read_unaligned(at) };
    let len = hdr.cmsg_len as usize;
    if len < data_off || off + len > bytes.len() {
      break; // malformed or truncated
    }
    let data = &bytes[off + data_off..off + len];
    if hdr.cmsg_level == libc::SOL_SOCKET && hdr.cmsg_type == libc::SO_RXQ_OVFL {
      if let Some(b) = data.get(..4) {
        found = Some(u32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
      }
    }
    off += align(len).max(data_off);
  }
  found
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn segment_cmsg_roundtrip_layout() {
    let mut buf = CtrlBuf::ZERO;
    let space = write_udp_segment(&mut buf, 1200);
    assert_eq!(space, 24); // 16-byte header + 2 bytes, aligned to 8
    let off = hdr_len();
    assert_eq!(u16::from_ne_bytes([buf.0[off], buf.0[off + 1]]), 1200);
    assert_eq!(rxq_ovfl(&buf, space), None); // not an RXQ_OVFL cmsg
  }

  #[test]
  fn parses_rxq_ovfl_and_rejects_truncation() {
    let mut buf = CtrlBuf::ZERO;
    // SAFETY: an all-zero cmsghdr is a valid value of this plain C struct.
    let mut hdr: libc::cmsghdr = unsafe { mem::zeroed() };
    // SAFETY: CMSG_LEN is pure arithmetic.
    hdr.cmsg_len = unsafe { libc::CMSG_LEN(4) } as _;
    hdr.cmsg_level = libc::SOL_SOCKET;
    hdr.cmsg_type = libc::SO_RXQ_OVFL;
    // SAFETY: the buffer is larger than a cmsghdr.
    unsafe { std::ptr::write_unaligned(buf.0.as_mut_ptr().cast::<libc::cmsghdr>(), hdr) };
    let off = hdr_len();
    buf.0[off..off + 4].copy_from_slice(&77u32.to_ne_bytes());
    assert_eq!(rxq_ovfl(&buf, 24), Some(77));
    assert_eq!(rxq_ovfl(&buf, 19), None); // cmsg_len runs past controllen
    assert_eq!(rxq_ovfl(&buf, 0), None);
  }
}

//! The system calls of a send: message headers and iovecs over the packed data, the control
//! messages a datagram needs (source address, TOS, GSO segment size), and the `sendmmsg`
//! (batched) and `sendmsg` (portable) loops.

use std::os::fd::RawFd;

use super::gso::{gso_run, MAX_UDP_PAYLOAD};
use super::{ChunkResult, Cursor, Packed, SendScratch, UIO_MAXIOV};
use crate::cmsg;

/// One `sendmmsg` entry: `count` datagrams from `msg` (more than one only with GSO).
#[derive(Clone, Copy)]
pub(super) struct Entry {
  msg: usize,
  count: usize,
  iov_start: usize,
  iovlen: usize,
  seg: usize,
}

/// Builds a msghdr for datagram `msg` whose parts start at `c`, pushing its iovecs.
pub(super) fn push_iovecs(p: &Packed, iovecs: &mut Vec<libc::iovec>, msg: usize, c: &mut Cursor) {
  for _ in 0..p.parts(msg) {
    let len = p.part_lens[c.part] as usize;
    iovecs.push(libc::iovec {
      // SAFETY: validate() checked the parts add up to data.len(), so byte..byte+len is in
      // bounds; the kernel only reads through this pointer.
      iov_base: unsafe { p.data.as_ptr().add(c.byte) } as *mut libc::c_void,
      iov_len: len,
    });
    c.byte += len;
    c.part += 1;
  }
}

/// The msghdr of datagram `msg` over `iovlen` iovecs at `iov`, with its destination.
pub(super) fn header(p: &Packed, msg: usize, iov: *mut libc::iovec, iovlen: usize) -> libc::msghdr {
  // SAFETY: an all-zero msghdr is valid (musl's padding fields must be zero).
  let mut h: libc::msghdr = unsafe { std::mem::zeroed() };
  if let Some(d) = p.dest(msg) {
    h.msg_name = d.as_ptr() as *mut libc::c_void;
    h.msg_namelen = d.len();
  }
  h.msg_iov = iov;
  h.msg_iovlen = iovlen as _;
  h
}

/// Control room per sendmmsg entry: pktinfo (IPv6: 20 bytes), TOS and GSO segment size.
pub(super) const CONTROL_PER_ENTRY: usize = 96;

/// Writes the control messages datagram `msg` needs (source address, TOS, GSO segment size)
/// into `buf`; returns the bytes used (0: none needed).
pub(super) fn write_send_control(
  buf: &mut [u8],
  p: &Packed,
  msg: usize,
  gso_segment: Option<u16>,
  peer_v4: bool,
) -> usize {
  let mut used = 0;
  if let Some(src) = p.source_index.map(|s| s[msg] as usize).filter(|&i| i > 0) {
    used += write_source(&mut buf[used..], p.sources[src - 1]);
  }
  if let Some(tos) = p.tos.map(|t| t[msg]).filter(|&v| v >= 0) {
    let v4 = p.dest(msg).map_or(peer_v4, crate::socket::is_v4_path);
    used += write_tos(&mut buf[used..], v4, tos);
  }
  // GSO (`UDP_SEGMENT`, level `SOL_UDP`) is Linux's; elsewhere no run is ever built.
  #[cfg(target_os = "linux")]
  if let Some(seg) = gso_segment {
    used += cmsg::write(&mut buf[used..], libc::SOL_UDP, crate::linux::UDP_SEGMENT, &seg.to_ne_bytes())
      .unwrap_or(0);
  }
  #[cfg(not(target_os = "linux"))]
  let _ = gso_segment;
  used
}

/// Writes the source-address control message (`IP_PKTINFO` / `IPV6_PKTINFO`).
pub(super) fn write_source(buf: &mut [u8], src: std::net::IpAddr) -> usize {
  match src {
    std::net::IpAddr::V4(v4) => {
      // struct in_pktinfo { int ipi_ifindex; in_addr ipi_spec_dst; in_addr ipi_addr; }
      let mut info = [0u8; 12];
      info[4..8].copy_from_slice(&v4.octets());
      cmsg::write(buf, libc::IPPROTO_IP, libc::IP_PKTINFO, &info).unwrap_or(0)
    }
    std::net::IpAddr::V6(v6) => {
      // struct in6_pktinfo { in6_addr ipi6_addr; unsigned ipi6_ifindex; }
      let mut info = [0u8; 20];
      info[..16].copy_from_slice(&v6.octets());
      cmsg::write(buf, libc::IPPROTO_IPV6, libc::IPV6_PKTINFO, &info).unwrap_or(0)
    }
  }
}

/// Writes the TOS control message for a datagram that takes the IPv4 path (`v4`: an IPv4 or
/// IPv4-mapped destination, even on an IPv6 socket, whose IPv4 path ignores `IPV6_TCLASS`) or
/// the IPv6 path (which ignores `IP_TOS`).
pub(super) fn write_tos(buf: &mut [u8], v4: bool, tos: i32) -> usize {
  if v4 {
    // IP_TOS as a control message takes one byte on Linux.
    cmsg::write(buf, libc::IPPROTO_IP, libc::IP_TOS, &[tos as u8]).unwrap_or(0)
  } else {
    cmsg::write(buf, libc::IPPROTO_IPV6, libc::IPV6_TCLASS, &tos.to_ne_bytes()).unwrap_or(0)
  }
}

/// Sends datagrams from `first` (before `end`) with one `sendmmsg`: up to UIO_MAXIOV entries,
/// each one datagram or, with GSO on, a run of same-size datagrams to the same destination.
#[cfg(target_os = "linux")]
pub(super) fn send_chunk_mmsg(
  fd: RawFd,
  p: &Packed,
  first: usize,
  end: usize,
  mut c: Cursor,
  s: &mut SendScratch,
  plain_until: usize,
) -> ChunkResult {
  s.iovecs.clear();
  s.entries.clear();
  s.control.clear();
  let max_segment = s.gso_max_segment.unwrap_or(MAX_UDP_PAYLOAD);
  // First build every iovec and entry (the vectors may grow), then take pointers into them.
  let mut m = first;
  while m < end && s.entries.len() < UIO_MAXIOV {
    let (count, seg) = if s.gso && m >= plain_until { gso_run(p, m, end, c, max_segment) } else { (1, 0) };
    let iov_start = s.iovecs.len();
    for k in m..m + count {
      push_iovecs(p, &mut s.iovecs, k, &mut c);
    }
    s.entries.push(Entry { msg: m, count, iov_start, iovlen: s.iovecs.len() - iov_start, seg });
    m += count;
  }
  s.control.resize(s.entries.len() * CONTROL_PER_ENTRY, 0);
  s.hdrs.clear();
  let iov_base = s.iovecs.as_mut_ptr();
  for (k, e) in s.entries.iter().enumerate() {
    // SAFETY: iov_start + iovlen <= iovecs.len(): exactly these iovecs were pushed above.
    let iov = unsafe { iov_base.add(e.iov_start) };
    let mut h = header(p, e.msg, iov, e.iovlen);
    let ctrl = &mut s.control[k * CONTROL_PER_ENTRY..(k + 1) * CONTROL_PER_ENTRY];
    let seg = if e.count > 1 { Some(e.seg as u16) } else { None };
    let used = write_send_control(ctrl, p, e.msg, seg, s.peer_v4);
    if used > 0 {
      h.msg_control = ctrl.as_mut_ptr() as *mut libc::c_void;
      h.msg_controllen = used as _;
    }
    s.hdrs.push(libc::mmsghdr { msg_hdr: h, msg_len: 0 });
  }
  let entries = s.hdrs.len();
  // SAFETY: hdrs[..entries] point at iovecs, control buffers and destination addresses that
  // stay alive and unmoved for the duration of the call; MSG_DONTWAIT makes it non-blocking.
  let r = unsafe { libc::sendmmsg(fd, s.hdrs.as_mut_ptr(), entries as libc::c_uint, libc::MSG_DONTWAIT) };
  if r < 0 {
    // sendmmsg fails only when its first entry fails.
    let refused = s.entries.first().filter(|e| e.count > 1).map(|e| (e.count, e.seg));
    return ChunkResult {
      sent: 0,
      bytes: 0,
      syscalls: 1,
      gso_sends: 0,
      errno: Some(crate::error::errno()),
      refused,
    };
  }
  let done = r as usize;
  let sent = s.entries[..done].iter().map(|e| e.count).sum();
  let bytes = s.hdrs[..done].iter().map(|h| h.msg_len as u64).sum();
  let gso_sends = s.entries[..done].iter().filter(|e| e.count > 1).count() as u64;
  // A short count means the next entry would block or fail; the next call reports which.
  ChunkResult { sent, bytes, syscalls: 1, gso_sends, errno: None, refused: None }
}

#[cfg(not(target_os = "linux"))]
pub(super) fn send_chunk_mmsg(
  fd: RawFd,
  p: &Packed,
  first: usize,
  end: usize,
  c: Cursor,
  s: &mut SendScratch,
  _plain_until: usize,
) -> ChunkResult {
  send_chunk_portable(fd, p, first, (end - first).min(UIO_MAXIOV), c, s)
}

/// Sends up to `count` datagrams from `first` with one `sendmsg` each (the portable path).
pub(super) fn send_chunk_portable(
  fd: RawFd,
  p: &Packed,
  first: usize,
  count: usize,
  mut c: Cursor,
  s: &mut SendScratch,
) -> ChunkResult {
  let mut out = ChunkResult { sent: 0, bytes: 0, syscalls: 0, gso_sends: 0, errno: None, refused: None };
  s.control.resize(CONTROL_PER_ENTRY, 0);
  for m in first..first + count {
    s.iovecs.clear();
    push_iovecs(p, &mut s.iovecs, m, &mut c);
    let mut h = header(p, m, s.iovecs.as_mut_ptr(), s.iovecs.len());
    let used = write_send_control(&mut s.control, p, m, None, s.peer_v4);
    if used > 0 {
      h.msg_control = s.control.as_mut_ptr() as *mut libc::c_void;
      h.msg_controllen = used as _;
    }
    out.syscalls += 1;
    // SAFETY: `h` points at iovecs and a destination that are alive for the call.
    let r = unsafe { libc::sendmsg(fd, &h, libc::MSG_DONTWAIT) };
    if r < 0 {
      out.errno = Some(crate::error::errno());
      break;
    }
    out.sent += 1;
    out.bytes += r as u64;
  }
  out
}

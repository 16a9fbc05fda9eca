//! Batched send: many datagrams per `sendmmsg` call (Linux) or one `sendmsg` per datagram
//! (portable path). Datagrams arrive packed from JS: one byte buffer holding every part back
//! to back, the length of each part, how many parts each datagram has (scatter/gather), and
//! which entry of a small destination table each datagram goes to.

use std::os::fd::RawFd;

use socket2::SockAddr;

use crate::cmsg;
use crate::error::OsError;

/// Linux caps `vlen` and the iovec count of one message at UIO_MAXIOV.
pub const UIO_MAXIOV: usize = 1024;

/// Datagrams to send, borrowed from JS for the duration of one call.
pub struct Packed<'a> {
  pub data: &'a [u8],
  /// Length of every part, in order.
  pub part_lens: &'a [u32],
  /// Parts per datagram; `None` means one part each.
  pub parts_per_msg: Option<&'a [u32]>,
  /// Index into `dests` for each datagram; `None` means every datagram goes to `dests[0]`
  /// (or to the connected peer when `dests` is empty).
  pub dest_index: Option<&'a [u32]>,
  pub dests: &'a [SockAddr],
  /// Per datagram: index into `sources` + 1 of the source address to send from
  /// (`IP_PKTINFO`/`IPV6_PKTINFO`), 0 for the socket's default. `None`: all default.
  pub source_index: Option<&'a [u32]>,
  pub sources: &'a [std::net::IpAddr],
  /// Per datagram: TOS / traffic class byte, or -1 for the socket's default. `None`: all default.
  pub tos: Option<&'a [i32]>,
}

impl Packed<'_> {
  /// Number of datagrams.
  pub fn count(&self) -> usize {
    self.parts_per_msg.map_or(self.part_lens.len(), |p| p.len())
  }

  /// Checks that the arrays agree with each other and with the data. Returns what is wrong.
  pub fn validate(&self) -> Result<(), &'static str> {
    let total: u64 = self.part_lens.iter().map(|&l| l as u64).sum();
    if total != self.data.len() as u64 {
      return Err("part lengths do not add up to the data length");
    }
    if let Some(p) = self.parts_per_msg {
      let parts: u64 = p.iter().map(|&c| c as u64).sum();
      if parts != self.part_lens.len() as u64 {
        return Err("parts per datagram do not add up to the number of parts");
      }
    }
    if let Some(d) = self.dest_index {
      if d.len() != self.count() {
        return Err("one destination index per datagram is required");
      }
      if d.iter().any(|&i| i as usize >= self.dests.len()) {
        return Err("destination index out of range");
      }
    }
    if let Some(s) = self.source_index {
      if s.len() != self.count() || s.iter().any(|&i| i as usize > self.sources.len()) {
        return Err("source indexes must be one per datagram and within the source table");
      }
    }
    if let Some(t) = self.tos {
      if t.len() != self.count() || t.iter().any(|&v| !(-1..=255).contains(&v)) {
        return Err("tos must be one value per datagram, -1..255");
      }
    }
    Ok(())
  }

  fn dest(&self, msg: usize) -> Option<&SockAddr> {
    match self.dest_index {
      Some(d) => self.dests.get(d[msg] as usize),
      None => self.dests.first(),
    }
  }

  fn parts(&self, msg: usize) -> usize {
    self.parts_per_msg.map_or(1, |p| p[msg] as usize)
  }
}

/// What one send call achieved.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SendOutcome {
  /// Datagrams handed to the kernel by this call.
  pub sent: usize,
  /// Bytes in those datagrams.
  pub bytes: u64,
  /// System calls made.
  pub syscalls: u64,
  /// Stopped because the send buffer is full (`EAGAIN`): wait for writability and resume.
  pub would_block: bool,
  /// Stopped at datagram `start + sent` because of this error.
  pub error: Option<OsError>,
  /// GSO super-datagrams sent (each carrying several datagrams).
  pub gso_sends: u64,
  /// Times GSO was refused and turned off for this socket during the call.
  pub gso_fallbacks: u64,
}

/// Reusable header, iovec and control storage for sends, and the socket's GSO state.
#[derive(Default)]
pub struct SendScratch {
  iovecs: Vec<libc::iovec>,
  #[cfg(target_os = "linux")]
  hdrs: Vec<libc::mmsghdr>,
  entries: Vec<Entry>,
  control: Vec<u8>,
  /// Send runs of same-size datagrams as GSO super-datagrams (turned off if the kernel refuses
  /// GSO where plain sends of the same datagrams go through).
  pub gso: bool,
  /// Largest GSO segment this socket sends, learned when the kernel refused a larger one with
  /// `EMSGSIZE` (a segment over the path MTU); larger datagrams go plainly (and are fragmented,
  /// as node:dgram's are). `None`: no ceiling known yet. One ceiling per socket: a socket that
  /// sends over several paths uses the smallest MTU seen refusing, which costs only speed.
  pub gso_max_segment: Option<usize>,
  /// Per call: the connected peer takes the IPv4 path (IPv4 or IPv4-mapped), so a per-datagram
  /// TOS without a destination goes as `IP_TOS` rather than `IPV6_TCLASS`.
  peer_v4: bool,
}

/// One `sendmmsg` entry: `count` datagrams from `msg` (more than one only with GSO).
#[derive(Clone, Copy)]
struct Entry {
  msg: usize,
  count: usize,
  iov_start: usize,
  iovlen: usize,
  seg: usize,
}

/// Where datagram `msg` starts: its first part index and byte offset.
#[derive(Clone, Copy)]
struct Cursor {
  part: usize,
  byte: usize,
}

fn advance(p: &Packed, mut c: Cursor, from: usize, to: usize) -> Cursor {
  for m in from..to {
    for _ in 0..p.parts(m) {
      c.byte += p.part_lens[c.part] as usize;
      c.part += 1;
    }
  }
  c
}

/// Builds a msghdr for datagram `msg` whose parts start at `c`, pushing its iovecs.
fn push_iovecs(p: &Packed, iovecs: &mut Vec<libc::iovec>, msg: usize, c: &mut Cursor) {
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

fn header(p: &Packed, msg: usize, iov: *mut libc::iovec, iovlen: usize) -> libc::msghdr {
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

fn is_would_block(errno: i32) -> bool {
  errno == libc::EAGAIN || errno == libc::EWOULDBLOCK
}

/// Sends datagrams `start..end` of `p` without blocking, as many per system call as allowed.
/// `p` must have passed [`Packed::validate`]; `end` is clamped to the datagram count.
pub fn send(
  fd: RawFd,
  p: &Packed,
  start: usize,
  end: usize,
  batched: bool,
  scratch: &mut SendScratch,
) -> SendOutcome {
  let n = p.count().min(end);
  let mut out = SendOutcome::default();
  let mut cursor = advance(p, Cursor { part: 0, byte: 0 }, 0, start);
  let mut i = start;
  // Datagrams before `plain_until` go without GSO: they belong to a run the kernel refused.
  let mut plain_until = start;
  // A GSO refusal whose plain resend has not been tried yet.
  let mut pending: Option<Refusal> = None;
  scratch.peer_v4 = p.tos.is_some()
    && p.dests.is_empty()
    && crate::socket::peer_of(fd).is_some_and(|a| crate::socket::is_v4_path(&a));
  while i < n {
    let result = if batched {
      send_chunk_mmsg(fd, p, i, n, cursor, scratch, plain_until)
    } else {
      send_chunk_portable(fd, p, i, (n - i).min(UIO_MAXIOV), cursor, scratch)
    };
    out.syscalls += result.syscalls;
    out.bytes += result.bytes;
    out.sent += result.sent;
    out.gso_sends += result.gso_sends;
    cursor = advance(p, cursor, i, i + result.sent);
    i += result.sent;
    if let Some(r) = pending {
      if result.sent > 0 {
        // A plain send of the refused run went where the GSO send did not: GSO was at fault.
        learn_from_refusal(fd, p, r, scratch);
        out.gso_fallbacks += 1;
        pending = None;
      } else if result.errno.is_some_and(|e| e != libc::EINTR && !is_would_block(e)) {
        // The plain send failed as well: the datagram itself is at fault (a bad source
        // address, say). Report that error below and leave GSO on.
        pending = None;
      }
    }
    match (result.errno, result.refused) {
      (None, _) => continue,
      (Some(e), _) if e == libc::EINTR => continue,
      (Some(e), _) if is_would_block(e) => {
        out.would_block = true;
        break;
      }
      (Some(e), Some((count, segment))) if scratch.gso && is_gso_refusal(e) => {
        // The kernel or device refused the GSO entry at datagram `i`: resend its datagrams
        // plainly in this same call; the outcome of that resend says whose fault it was.
        plain_until = i + count;
        pending = Some(Refusal { errno: e, msg: i, segment });
        continue;
      }
      (Some(e), _) => {
        out.error = Some(OsError { errno: e, syscall: if batched { "sendmmsg" } else { "sendmsg" } });
        break;
      }
    }
  }
  out
}

/// Errors with which a kernel or device may refuse a GSO send (pitfall 8): no checksum offload
/// (`EIO`), an unsupported path (`EINVAL`), a segment over the path MTU (`EMSGSIZE`), or no
/// support at all. The application can cause each of them too (a bad source address gives
/// `EINVAL`): only a plain resend that succeeds proves GSO was at fault.
fn is_gso_refusal(errno: i32) -> bool {
  errno == libc::EIO
    || errno == libc::EINVAL
    || errno == libc::EMSGSIZE
    || errno == libc::EOPNOTSUPP
    || errno == libc::ENOPROTOOPT
}

/// A GSO entry the kernel refused, whose datagrams are being resent plainly.
#[derive(Clone, Copy)]
struct Refusal {
  /// The error the GSO send got.
  errno: i32,
  /// First datagram of the refused run.
  msg: usize,
  /// Its segment size.
  segment: usize,
}

/// Applies what a refusal taught, once a plain resend of the same datagrams succeeded:
/// `EMSGSIZE` means the segment was over the path MTU, so later runs keep below the MTU of
/// that path (GSO stays on); any other refusal means GSO does not work here, so it turns off.
/// The path is the datagram's destination, or the connected peer of `fd`.
fn learn_from_refusal(fd: RawFd, p: &Packed, r: Refusal, scratch: &mut SendScratch) {
  if r.errno != libc::EMSGSIZE {
    scratch.gso = false;
    return;
  }
  let dest = p.dest(r.msg).cloned().or_else(|| crate::socket::peer_of(fd));
  let path = dest.as_ref().and_then(crate::socket::path_max_payload);
  // Never above the refused segment, whatever the lookup says, so every refusal lowers it.
  let ceiling = path.unwrap_or(usize::MAX).min(r.segment.saturating_sub(1));
  scratch.gso_max_segment = Some(scratch.gso_max_segment.map_or(ceiling, |c| c.min(ceiling)));
}

struct ChunkResult {
  sent: usize,
  bytes: u64,
  syscalls: u64,
  gso_sends: u64,
  /// Error that stopped the chunk before all of it was sent (with `sent` possibly > 0).
  errno: Option<i32>,
  /// The entry the error belongs to carried a GSO control message: (datagrams, segment size).
  refused: Option<(usize, usize)>,
}

/// Control room per sendmmsg entry: pktinfo (IPv6: 20 bytes), TOS and GSO segment size.
const CONTROL_PER_ENTRY: usize = 96;

/// Writes the control messages datagram `msg` needs (source address, TOS, GSO segment size)
/// into `buf`; returns the bytes used (0: none needed).
fn write_send_control(
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
  if let Some(seg) = gso_segment {
    used += cmsg::write(&mut buf[used..], libc::SOL_UDP, crate::linux::UDP_SEGMENT, &seg.to_ne_bytes())
      .unwrap_or(0);
  }
  used
}

fn write_source(buf: &mut [u8], src: std::net::IpAddr) -> usize {
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
fn write_tos(buf: &mut [u8], v4: bool, tos: i32) -> usize {
  if v4 {
    // IP_TOS as a control message takes one byte on Linux.
    cmsg::write(buf, libc::IPPROTO_IP, libc::IP_TOS, &[tos as u8]).unwrap_or(0)
  } else {
    cmsg::write(buf, libc::IPPROTO_IPV6, libc::IPV6_TCLASS, &tos.to_ne_bytes()).unwrap_or(0)
  }
}

/// Largest payload of one UDP datagram (IPv4: 65535 - 20 - 8), and so of a GSO super-datagram.
pub const MAX_UDP_PAYLOAD: usize = 65507;

/// Bytes in datagram `msg` whose parts start at `c`.
fn msg_len(p: &Packed, msg: usize, c: Cursor) -> usize {
  (0..p.parts(msg)).map(|k| p.part_lens[c.part + k] as usize).sum()
}

/// How many datagrams from `first` (before `end`) can go as one GSO super-datagram: same
/// destination, same size (the last may be shorter) of at most `max_segment` bytes, at most
/// 64 segments, 64 KiB in all and UIO_MAXIOV parts. Returns (datagrams, segment size); a run
/// of one goes without the GSO control message.
fn gso_run(p: &Packed, first: usize, end: usize, c: Cursor, max_segment: usize) -> (usize, usize) {
  let seg = msg_len(p, first, c);
  if seg == 0 || seg > max_segment {
    return (1, 0);
  }
  let dest = p.dest_index.map(|d| d[first]);
  let mut c = advance(p, c, first, first + 1);
  let (mut count, mut total, mut parts) = (1usize, seg, p.parts(first));
  while first + count < end && count < crate::linux::UDP_MAX_SEGMENTS {
    let m = first + count;
    if p.dest_index.map(|d| d[m]) != dest
      || p.source_index.map(|s| s[m]) != p.source_index.map(|s| s[first])
      || p.tos.map(|t| t[m]) != p.tos.map(|t| t[first])
    {
      break;
    }
    let len = msg_len(p, m, c);
    if len == 0 || len > seg || total + len > MAX_UDP_PAYLOAD || parts + p.parts(m) > UIO_MAXIOV {
      break;
    }
    count += 1;
    total += len;
    parts += p.parts(m);
    c = advance(p, c, m, m + 1);
    if len < seg {
      break; // a shorter segment ends the run
    }
  }
  (count, seg)
}

/// Sends datagrams from `first` (before `end`) with one `sendmmsg`: up to UIO_MAXIOV entries,
/// each one datagram or, with GSO on, a run of same-size datagrams to the same destination.
#[cfg(target_os = "linux")]
fn send_chunk_mmsg(
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
fn send_chunk_mmsg(
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

fn send_chunk_portable(
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

#[cfg(test)]
mod tests {
  use super::*;
  use std::net::UdpSocket;
  use std::os::fd::AsRawFd;

  fn recv_all(rx: &UdpSocket, n: usize) -> Vec<Vec<u8>> {
    rx.set_read_timeout(Some(std::time::Duration::from_secs(2))).unwrap();
    let mut buf = [0u8; 2048];
    (0..n)
      .map(|_| {
        let len = rx.recv(&mut buf).unwrap();
        buf[..len].to_vec()
      })
      .collect()
  }

  fn check(batched: bool) {
    let rx1 = UdpSocket::bind("127.0.0.1:0").unwrap();
    let rx2 = UdpSocket::bind("127.0.0.1:0").unwrap();
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let dests = [SockAddr::from(rx1.local_addr().unwrap()), SockAddr::from(rx2.local_addr().unwrap())];
    // Datagrams: "one"+"two" (two parts) -> rx1, "x" -> rx2, "" -> rx1.
    let data = b"onetwox";
    let part_lens = [3u32, 3, 1, 0];
    let parts = [2u32, 1, 1];
    let dest_index = [0u32, 1, 0];
    let p = Packed {
      data,
      part_lens: &part_lens,
      parts_per_msg: Some(&parts),
      dest_index: Some(&dest_index),
      dests: &dests,
      source_index: None,
      sources: &[],
      tos: None,
    };
    p.validate().unwrap();
    let mut scratch = SendScratch::default();
    let out = send(tx.as_raw_fd(), &p, 0, usize::MAX, batched, &mut scratch);
    assert_eq!((out.sent, out.bytes, out.error, out.would_block), (3, 7, None, false));
    assert_eq!(recv_all(&rx1, 2), vec![b"onetwo".to_vec(), b"".to_vec()]);
    assert_eq!(recv_all(&rx2, 1), vec![b"x".to_vec()]);
    // Resume from the middle.
    let out = send(tx.as_raw_fd(), &p, 2, usize::MAX, batched, &mut scratch);
    assert_eq!(out.sent, 1);
    assert_eq!(recv_all(&rx1, 1), vec![b"".to_vec()]);
  }

  #[test]
  fn batched_send_scatter_gather_and_destinations() {
    #[cfg(target_os = "linux")]
    check(true);
  }

  #[test]
  fn portable_send_scatter_gather_and_destinations() {
    check(false);
  }

  #[test]
  fn oversized_datagram_stops_with_emsgsize_and_count() {
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let dests = [SockAddr::from(rx.local_addr().unwrap())];
    let data = vec![7u8; 2 + 70000];
    let lens = [1u32, 1, 70000];
    let p = Packed {
      data: &data,
      part_lens: &lens,
      parts_per_msg: None,
      dest_index: None,
      dests: &dests,
      source_index: None,
      sources: &[],
      tos: None,
    };
    for batched in [true, false] {
      let out = send(tx.as_raw_fd(), &p, 0, usize::MAX, batched, &mut SendScratch::default());
      assert_eq!(out.sent, 2);
      assert_eq!(out.error.map(|e| e.errno), Some(libc::EMSGSIZE));
    }
  }

  #[test]
  fn validate_catches_inconsistent_arrays() {
    let dests = [SockAddr::from("127.0.0.1:9".parse::<std::net::SocketAddr>().unwrap())];
    let mk = |lens: &'static [u32], parts: Option<&'static [u32]>, idx: Option<&'static [u32]>| Packed {
      data: b"abc",
      part_lens: lens,
      parts_per_msg: parts,
      dest_index: idx,
      dests: &[],
      source_index: None,
      sources: &[],
      tos: None,
    };
    assert!(mk(&[1, 1], None, None).validate().is_err());
    assert!(mk(&[1, 2], Some(&[1]), None).validate().is_err());
    assert!(mk(&[3], None, Some(&[0])).validate().is_err(), "no table to index");
    let ok = Packed {
      data: b"abc",
      part_lens: &[3],
      parts_per_msg: None,
      dest_index: Some(&[0]),
      dests: &dests,
      source_index: None,
      sources: &[],
      tos: None,
    };
    assert!(ok.validate().is_ok());
  }

  #[cfg(target_os = "linux")]
  #[test]
  fn gso_runs_arrive_as_the_same_datagrams() {
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let rx2 = UdpSocket::bind("127.0.0.1:0").unwrap();
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let dests = [SockAddr::from(rx.local_addr().unwrap()), SockAddr::from(rx2.local_addr().unwrap())];
    // 150 datagrams of 100 bytes to rx, one of 40 (ends a run), 3 of 100 to rx2, 5 of 100 to rx.
    let mut lens = vec![100u32; 150];
    lens.push(40);
    lens.extend([100u32; 8]);
    let mut idx = vec![0u32; 151];
    idx.extend([1u32; 3]);
    idx.extend([0u32; 5]);
    let mut data = Vec::new();
    for (i, &l) in lens.iter().enumerate() {
      data.extend((0..l).map(|j| (i as u32 * 7 + j) as u8));
    }
    let p = Packed {
      data: &data,
      part_lens: &lens,
      parts_per_msg: None,
      dest_index: Some(&idx),
      dests: &dests,
      source_index: None,
      sources: &[],
      tos: None,
    };
    p.validate().unwrap();
    let mut scratch = SendScratch { gso: true, ..SendScratch::default() };
    let out = send(tx.as_raw_fd(), &p, 0, usize::MAX, true, &mut scratch);
    assert_eq!((out.sent, out.error, out.gso_fallbacks), (159, None, 0));
    // 150+40 -> runs of 64, 64, 23 (22 x 100 + 40); then 3 to rx2; then 5.
    assert_eq!(out.gso_sends, 5);
    assert_eq!(out.syscalls, 1);
    let got = recv_all(&rx, 156);
    let mut k = 0;
    for (i, &l) in lens.iter().enumerate() {
      if idx[i] != 0 {
        continue;
      }
      let want: Vec<u8> = (0..l).map(|j| (i as u32 * 7 + j) as u8).collect();
      assert_eq!(got[k], want, "datagram {i}");
      k += 1;
    }
    assert_eq!(recv_all(&rx2, 3).iter().map(|d| d.len()).collect::<Vec<_>>(), vec![100, 100, 100]);
  }

  /// Packs `lens.len()` single-part datagrams of the given sizes, all to `dests[0]`.
  fn packed<'a>(data: &'a [u8], lens: &'a [u32], dests: &'a [SockAddr]) -> Packed<'a> {
    Packed {
      data,
      part_lens: lens,
      parts_per_msg: None,
      dest_index: None,
      dests,
      source_index: None,
      sources: &[],
      tos: None,
    }
  }

  #[test]
  fn gso_runs_keep_to_the_segment_ceiling() {
    let dests = [SockAddr::from("127.0.0.1:9".parse::<std::net::SocketAddr>().unwrap())];
    let lens = [1472u32, 1472, 1472, 2000, 2000, 1000, 1000, 1473, 1472];
    let data = vec![0u8; lens.iter().map(|&l| l as usize).sum()];
    let p = packed(&data, &lens, &dests);
    let at = |m: usize| advance(&p, Cursor { part: 0, byte: 0 }, 0, m);
    // Without a ceiling, equal sizes make one run each.
    assert_eq!(gso_run(&p, 0, lens.len(), at(0), MAX_UDP_PAYLOAD), (3, 1472));
    assert_eq!(
      gso_run(&p, 3, lens.len(), at(3), MAX_UDP_PAYLOAD),
      (3, 2000),
      "2000, 2000, then a shorter last"
    );
    // With a 1472-byte ceiling: runs at or below it still form; larger datagrams go alone.
    assert_eq!(gso_run(&p, 0, lens.len(), at(0), 1472), (3, 1472));
    assert_eq!(gso_run(&p, 3, lens.len(), at(3), 1472).0, 1);
    assert_eq!(gso_run(&p, 4, lens.len(), at(4), 1472).0, 1);
    assert_eq!(gso_run(&p, 5, lens.len(), at(5), 1472), (2, 1000));
    assert_eq!(gso_run(&p, 7, lens.len(), at(7), 1472).0, 1, "1473 is over the ceiling");
    // A shorter datagram may end a run only if the run's segment is within the ceiling.
    assert_eq!(gso_run(&p, 5, 7, at(5), 999).0, 1);
  }

  #[test]
  fn tos_goes_as_ip_tos_to_ipv4_and_mapped_destinations() {
    let kind = |dest: &str, peer_v4: bool| {
      let dests: Vec<SockAddr> =
        dest.parse::<std::net::SocketAddr>().ok().map(SockAddr::from).into_iter().collect();
      let p = Packed { tos: Some(&[0xb8]), ..packed(b"x", &[1], &dests) };
      let mut buf = [0u8; CONTROL_PER_ENTRY];
      let used = write_send_control(&mut buf, &p, 0, None, peer_v4);
      cmsg::parse(&buf, used).map(|c| (c.level, c.kind)).collect::<Vec<_>>()
    };
    let ip_tos = vec![(libc::IPPROTO_IP, libc::IP_TOS)];
    let tclass = vec![(libc::IPPROTO_IPV6, libc::IPV6_TCLASS)];
    assert_eq!(kind("127.0.0.1:9", false), ip_tos);
    assert_eq!(kind("[::ffff:127.0.0.1]:9", false), ip_tos, "a mapped destination takes the IPv4 path");
    assert_eq!(kind("[::1]:9", true), tclass);
    // No destination: the connected peer decides.
    assert_eq!(kind("", true), ip_tos);
    assert_eq!(kind("", false), tclass);
  }

  #[cfg(target_os = "linux")]
  #[test]
  fn gso_refused_by_the_kernel_is_resent_plainly_in_the_same_call_and_turned_off() {
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    // Without UDP checksums the kernel refuses segmentation offload (EINVAL); plain sends go.
    let sock = socket2::SockRef::from(&tx);
    crate::socket::set_int(&sock, libc::SOL_SOCKET, libc::SO_NO_CHECK, 1, "SO_NO_CHECK").unwrap();
    let dests = [SockAddr::from(rx.local_addr().unwrap())];
    let lens = [100u32; 10];
    let data: Vec<u8> = (0..1000).map(|i| i as u8).collect();
    let p = packed(&data, &lens, &dests);
    let mut scratch = SendScratch { gso: true, ..SendScratch::default() };
    let out = send(tx.as_raw_fd(), &p, 0, usize::MAX, true, &mut scratch);
    assert_eq!((out.sent, out.error, out.gso_fallbacks, out.gso_sends), (10, None, 1, 0));
    assert!(!scratch.gso, "GSO is off once a plain resend went where GSO did not");
    let got = recv_all(&rx, 10);
    assert!(got.iter().enumerate().all(|(i, d)| d[..] == data[i * 100..(i + 1) * 100]));
  }

  #[cfg(target_os = "linux")]
  #[test]
  fn an_application_error_under_gso_is_reported_and_keeps_gso_on() {
    let Ok(rx) = UdpSocket::bind("[::1]:0") else {
      eprintln!("skipped: no IPv6 loopback");
      return;
    };
    let tx = UdpSocket::bind("[::]:0").unwrap();
    let dests = [SockAddr::from(rx.local_addr().unwrap())];
    // Two plain datagrams, then a run of 8 from an IPv4(-mapped) source to an IPv6 peer:
    // EINVAL with GSO and without.
    let lens = [10u32, 20, 100, 100, 100, 100, 100, 100, 100, 100];
    let data = vec![1u8; lens.iter().map(|&l| l as usize).sum()];
    let sources = ["::ffff:127.0.0.1".parse::<std::net::IpAddr>().unwrap()];
    let src_idx = [0u32, 0, 1, 1, 1, 1, 1, 1, 1, 1];
    let p = Packed { source_index: Some(&src_idx), sources: &sources, ..packed(&data, &lens, &dests) };
    p.validate().unwrap();
    let mut scratch = SendScratch { gso: true, ..SendScratch::default() };
    let out = send(tx.as_raw_fd(), &p, 0, usize::MAX, true, &mut scratch);
    assert_eq!(out.sent, 2, "the datagrams before the bad one went");
    assert_eq!(out.error.map(|e| e.errno), Some(libc::EINVAL));
    assert_eq!(out.gso_fallbacks, 0);
    assert!(scratch.gso, "an application error does not turn GSO off");
    assert_eq!(scratch.gso_max_segment, None);
    assert_eq!(recv_all(&rx, 2).iter().map(|d| d.len()).collect::<Vec<_>>(), vec![10, 20]);
  }

  #[test]
  fn a_refusal_lowers_the_segment_ceiling_or_turns_gso_off() {
    let dests = [SockAddr::from("127.0.0.1:9".parse::<std::net::SocketAddr>().unwrap())];
    let p = packed(b"", &[], &dests);
    let mut s = SendScratch { gso: true, ..SendScratch::default() };
    let fd = -1; // only consulted without a destination
                 // Loopback's MTU is at least 1500, so the refused size bounds the ceiling here.
    learn_from_refusal(fd, &p, Refusal { errno: libc::EMSGSIZE, msg: 0, segment: 1400 }, &mut s);
    assert_eq!((s.gso, s.gso_max_segment), (true, Some(1399)));
    learn_from_refusal(fd, &p, Refusal { errno: libc::EMSGSIZE, msg: 0, segment: 3000 }, &mut s);
    assert_eq!(s.gso_max_segment, Some(1399), "a later refusal never raises the ceiling");
    learn_from_refusal(fd, &p, Refusal { errno: libc::EIO, msg: 0, segment: 100 }, &mut s);
    assert!(!s.gso, "any other refusal turns GSO off");
  }
}

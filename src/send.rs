//! Batched send: many datagrams per `sendmmsg` call (Linux) or one `sendmsg` per datagram
//! (portable path). Datagrams arrive packed from JS: one byte buffer holding every part back
//! to back, the length of each part, how many parts each datagram has (scatter/gather), and
//! which entry of a small destination table each datagram goes to.

use std::os::fd::RawFd;

use socket2::SockAddr;

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
}

/// Reusable header and iovec storage for sends.
#[derive(Default)]
pub struct SendScratch {
  iovecs: Vec<libc::iovec>,
  #[cfg(target_os = "linux")]
  hdrs: Vec<libc::mmsghdr>,
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
  while i < n {
    let chunk = (n - i).min(UIO_MAXIOV);
    let result = if batched {
      send_chunk_mmsg(fd, p, i, chunk, cursor, scratch)
    } else {
      send_chunk_portable(fd, p, i, chunk, cursor, scratch)
    };
    out.syscalls += result.syscalls;
    out.bytes += result.bytes;
    out.sent += result.sent;
    cursor = advance(p, cursor, i, i + result.sent);
    i += result.sent;
    match result.errno {
      None => continue,
      Some(e) if e == libc::EINTR => continue,
      Some(e) if is_would_block(e) => {
        out.would_block = true;
        break;
      }
      Some(e) => {
        out.error = Some(OsError { errno: e, syscall: if batched { "sendmmsg" } else { "sendmsg" } });
        break;
      }
    }
  }
  out
}

struct ChunkResult {
  sent: usize,
  bytes: u64,
  syscalls: u64,
  /// Error that stopped the chunk before all of it was sent (with `sent` possibly > 0).
  errno: Option<i32>,
}

#[cfg(target_os = "linux")]
fn send_chunk_mmsg(
  fd: RawFd,
  p: &Packed,
  first: usize,
  count: usize,
  mut c: Cursor,
  s: &mut SendScratch,
) -> ChunkResult {
  s.iovecs.clear();
  // First push every iovec (the vector may grow), then take pointers into it.
  for m in first..first + count {
    push_iovecs(p, &mut s.iovecs, m, &mut c);
  }
  s.hdrs.clear();
  let base = s.iovecs.as_mut_ptr();
  let mut at = 0usize;
  for m in first..first + count {
    let parts = p.parts(m);
    // SAFETY: at + parts <= iovecs.len() because exactly these iovecs were pushed above.
    let iov = unsafe { base.add(at) };
    s.hdrs.push(libc::mmsghdr { msg_hdr: header(p, m, iov, parts), msg_len: 0 });
    at += parts;
  }
  // SAFETY: hdrs[..count] point at iovecs and destination addresses that stay alive and
  // unmoved for the duration of the call; MSG_DONTWAIT makes it non-blocking.
  let r = unsafe { libc::sendmmsg(fd, s.hdrs.as_mut_ptr(), count as libc::c_uint, libc::MSG_DONTWAIT) };
  if r < 0 {
    return ChunkResult { sent: 0, bytes: 0, syscalls: 1, errno: Some(crate::error::errno()) };
  }
  let sent = r as usize;
  let bytes = s.hdrs[..sent].iter().map(|h| h.msg_len as u64).sum();
  // A short count means the next datagram would block or fail; the next call reports which.
  ChunkResult { sent, bytes, syscalls: 1, errno: None }
}

#[cfg(not(target_os = "linux"))]
fn send_chunk_mmsg(
  fd: RawFd,
  p: &Packed,
  first: usize,
  count: usize,
  c: Cursor,
  s: &mut SendScratch,
) -> ChunkResult {
  send_chunk_portable(fd, p, first, count, c, s)
}

fn send_chunk_portable(
  fd: RawFd,
  p: &Packed,
  first: usize,
  count: usize,
  mut c: Cursor,
  s: &mut SendScratch,
) -> ChunkResult {
  let mut out = ChunkResult { sent: 0, bytes: 0, syscalls: 0, errno: None };
  for m in first..first + count {
    s.iovecs.clear();
    push_iovecs(p, &mut s.iovecs, m, &mut c);
    let h = header(p, m, s.iovecs.as_mut_ptr(), s.iovecs.len());
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
    let p = Packed { data: &data, part_lens: &lens, parts_per_msg: None, dest_index: None, dests: &dests };
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
    };
    assert!(mk(&[1, 1], None, None).validate().is_err());
    assert!(mk(&[1, 2], Some(&[1]), None).validate().is_err());
    assert!(mk(&[3], None, Some(&[0])).validate().is_err(), "no table to index");
    let ok =
      Packed { data: b"abc", part_lens: &[3], parts_per_msg: None, dest_index: Some(&[0]), dests: &dests };
    assert!(ok.validate().is_ok());
  }
}

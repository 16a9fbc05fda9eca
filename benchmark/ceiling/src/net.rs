//! Socket setup and small syscall wrappers (buffers, options, poll, rusage).

use std::io;
use std::mem;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::fail;

/// A non-blocking UDP socket of the family of `ip` (which is always loopback).
pub fn udp_socket(ip: IpAddr) -> Socket {
  let domain = match ip {
    IpAddr::V4(_) => Domain::IPV4,
    IpAddr::V6(_) => Domain::IPV6,
  };
  let sock =
    Socket::new(domain, Type::DGRAM, Some(Protocol::UDP)).unwrap_or_else(|e| fail(format!("socket(): {e}")));
  sock.set_nonblocking(true).unwrap_or_else(|e| fail(format!("set non-blocking: {e}")));
  sock
}

/// A non-blocking UDP socket bound to `ip:port`; returns it and the bound port.
pub fn bind_udp(ip: IpAddr, port: u16) -> (Socket, u16) {
  debug_assert!(ip.is_loopback(), "only loopback is ever bound");
  let sock = udp_socket(ip);
  let addr = SocketAddr::new(ip, port);
  sock.bind(&SockAddr::from(addr)).unwrap_or_else(|e| fail(format!("bind {addr}: {e}")));
  let local = sock
    .local_addr()
    .ok()
    .and_then(|a| a.as_socket())
    .unwrap_or_else(|| fail("getsockname() failed after bind"));
  (sock, local.port())
}

/// setsockopt() with an `int` value.
pub fn setsockopt_int(fd: RawFd, level: i32, name: i32, value: i32) -> io::Result<()> {
  // SAFETY: `value` is a live c_int and we pass its exact size; the kernel
  // only reads it during the call.
  let rc = unsafe {
    libc::setsockopt(fd, level, name, (&value as *const i32).cast(), mem::size_of::<i32>() as libc::socklen_t)
  };
  if rc == 0 {
    Ok(())
  } else {
    Err(io::Error::last_os_error())
  }
}

/// getsockopt() of an `int` value.
pub fn getsockopt_int(fd: RawFd, level: i32, name: i32) -> io::Result<i32> {
  let mut value: i32 = 0;
  let mut len = mem::size_of::<i32>() as libc::socklen_t;
  // SAFETY: `value`/`len` are live locals; `len` tells the kernel how much
  // it may write into `value`.
  let rc = unsafe { libc::getsockopt(fd, level, name, (&mut value as *mut i32).cast(), &mut len) };
  if rc == 0 {
    Ok(value)
  } else {
    Err(io::Error::last_os_error())
  }
}

/// Set a socket buffer: try the privileged `force` option (ignores
/// net.core.[rw]mem_max, works as root / CAP_NET_ADMIN), then the plain one.
/// Returns (bytes granted as reported by getsockopt, whether force worked).
/// Linux reports twice the requested value (bookkeeping overhead).
fn set_buffer(sock: &Socket, bytes: u64, force: i32, plain: i32, what: &str) -> (u64, bool) {
  let fd = sock.as_raw_fd();
  let want = i32::try_from(bytes).unwrap_or(i32::MAX);
  let forced = setsockopt_int(fd, libc::SOL_SOCKET, force, want).is_ok();
  if !forced {
    if let Err(e) = setsockopt_int(fd, libc::SOL_SOCKET, plain, want) {
      crate::warn(format!("setsockopt({what}, {want}): {e}"));
    }
  }
  let granted =
    getsockopt_int(fd, libc::SOL_SOCKET, plain).unwrap_or_else(|e| fail(format!("getsockopt({what}): {e}")));
  let granted = u64::try_from(granted).unwrap_or(0);
  if granted < bytes {
    crate::warn(format!(
      "{what}: asked for {bytes} bytes, kernel granted {granted} \
             (not forced; raise net.core.*mem_max or run as root)"
    ));
  }
  (granted, forced)
}

/// SO_RCVBUF via SO_RCVBUFFORCE first. Returns (granted, forced).
pub fn set_rcvbuf(sock: &Socket, bytes: u64) -> (u64, bool) {
  set_buffer(sock, bytes, libc::SO_RCVBUFFORCE, libc::SO_RCVBUF, "SO_RCVBUF")
}

/// SO_SNDBUF via SO_SNDBUFFORCE first. Returns (granted, forced).
pub fn set_sndbuf(sock: &Socket, bytes: u64) -> (u64, bool) {
  set_buffer(sock, bytes, libc::SO_SNDBUFFORCE, libc::SO_SNDBUF, "SO_SNDBUF")
}

/// Ask for the SO_RXQ_OVFL control message (cumulative socket drop counter).
pub fn enable_rxq_ovfl(sock: &Socket) {
  if let Err(e) = setsockopt_int(sock.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RXQ_OVFL, 1) {
    fail(format!("setsockopt(SO_RXQ_OVFL): {e}"));
  }
}

/// SO_MEMINFO: the socket's memory counters (index with libc::SK_MEMINFO_*).
pub fn meminfo(fd: RawFd) -> Option<[u32; 9]> {
  let mut info = [0u32; 9];
  let mut len = mem::size_of_val(&info) as libc::socklen_t;
  // SAFETY: `info` is a live 36-byte array and `len` holds its size, so the
  // kernel writes at most that many bytes.
  let rc =
    unsafe { libc::getsockopt(fd, libc::SOL_SOCKET, libc::SO_MEMINFO, info.as_mut_ptr().cast(), &mut len) };
  (rc == 0).then_some(info)
}

/// The socket's drop counter (sk_drops) read directly via SO_MEMINFO.
/// Unlike the SO_RXQ_OVFL cmsg it also counts drops after the last queued
/// datagram. 0 if unavailable.
pub fn meminfo_drops(fd: RawFd) -> u64 {
  meminfo(fd).map_or(0, |m| u64::from(m[libc::SK_MEMINFO_DROPS as usize]))
}

/// Bytes of receive memory the socket currently holds (0 if unavailable).
pub fn meminfo_rmem(fd: RawFd) -> u64 {
  meminfo(fd).map_or(0, |m| u64::from(m[libc::SK_MEMINFO_RMEM_ALLOC as usize]))
}

/// poll() one fd for `events`. Ok(true) if ready, Ok(false) on timeout or EINTR.
pub fn poll_one(fd: RawFd, events: i16, timeout_ms: i32) -> io::Result<bool> {
  let mut pfd = libc::pollfd { fd, events, revents: 0 };
  // SAFETY: one valid pollfd, nfds = 1.
  let rc = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
  if rc < 0 {
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EINTR) {
      return Ok(false);
    }
    return Err(e);
  }
  Ok(rc > 0)
}

/// poll() two fds for POLLIN (`b` may be negative: ignored). Returns which are ready
/// (readable, hung up or in error); (false, false) on timeout or EINTR.
pub fn poll_in_two(a: RawFd, b: RawFd, timeout_ms: i32) -> io::Result<(bool, bool)> {
  let mut pfds = [
    libc::pollfd { fd: a, events: libc::POLLIN, revents: 0 },
    libc::pollfd { fd: b, events: libc::POLLIN, revents: 0 },
  ];
  // SAFETY: two valid pollfds in a live local array, nfds = 2; a negative fd is ignored.
  let rc = unsafe { libc::poll(pfds.as_mut_ptr(), 2, timeout_ms) };
  if rc < 0 {
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EINTR) {
      return Ok((false, false));
    }
    return Err(e);
  }
  Ok((pfds[0].revents != 0, pfds[1].revents != 0))
}

/// Reads (and discards) what stdin has; true at end-of-file or on an error.
pub fn stdin_at_eof() -> bool {
  let mut buf = [0u8; 256];
  // SAFETY: `buf` is a live local array and we pass its exact length.
  let n = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
  n <= 0
}

/// This process's resource usage (`getrusage(RUSAGE_SELF)`).
fn rusage() -> libc::rusage {
  // SAFETY: an all-zero rusage is a valid value of this plain C struct.
  let mut ru: libc::rusage = unsafe { mem::zeroed() };
  // SAFETY: `ru` is a live rusage the kernel fills in.
  let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
  if rc != 0 {
    fail(format!("getrusage: {}", io::Error::last_os_error()));
  }
  ru
}

/// Minor page faults this process has taken (first touches of memory, among others).
pub fn minor_faults() -> u64 {
  u64::try_from(rusage().ru_minflt).unwrap_or(0)
}

/// This process's CPU time (user + system) in nanoseconds.
pub fn cpu_ns() -> u64 {
  let ru = rusage();
  let tv_ns = |tv: libc::timeval| {
    u64::try_from(tv.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(tv.tv_usec).unwrap_or(0) * 1_000
  };
  tv_ns(ru.ru_utime) + tv_ns(ru.ru_stime)
}

/// Make sleeps as precise as the kernel allows (default slack is 50 us).
pub fn minimize_timer_slack() {
  // SAFETY: PR_SET_TIMERSLACK takes one unsigned long argument; it only
  // changes this thread's timer slack.
  let rc = unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0) };
  if rc != 0 {
    crate::warn("PR_SET_TIMERSLACK failed; pacing may be coarser");
  }
}

/// The errno of the last failed call.
pub fn last_errno() -> i32 {
  io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

//! Adopting a UDP socket someone else opened, by file descriptor: a socket passed by systemd
//! (`LISTEN_FDS`), by a parent process, or by Node's cluster primary. The native socket takes
//! ownership of a duplicate (`F_DUPFD_CLOEXEC`), so the caller's fd stays theirs to close; the
//! duplicate is checked to be a UDP datagram socket of an IP family before anything else
//! happens, and is closed (by `OwnedFd`) on every error path, so a refused fd leaks nothing.

use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd, RawFd};

use napi::bindgen_prelude::Env;
use napi_derive::napi;
use socket2::{SockAddr, SockRef, Socket};

use crate::error::{os_error, OsError};
use crate::socket::{self, Granted, OpenError, SocketConfig};

fn refused(errno: i32, syscall: &'static str, detail: &str) -> OpenError {
  OpenError { os: OsError { errno, syscall }, detail: detail.to_string() }
}

fn step<T>(r: std::io::Result<T>, syscall: &'static str, detail: &str) -> Result<T, OpenError> {
  r.map_err(|e| OpenError { os: OsError::from_io(&e, syscall), detail: detail.to_string() })
}

/// Checks that `sock` is an IPv4 or IPv6 UDP socket; returns true for IPv6. Errors:
/// `ENOTSOCK` (not a socket: a file, a pipe...), `EINVAL` (a socket, but not UDP over IP).
fn check(sock: &SockRef<'_>) -> Result<bool, OpenError> {
  let ty = step(sock.r#type(), "getsockopt", "SO_TYPE")?;
  if ty != socket2::Type::DGRAM {
    return Err(refused(libc::EINVAL, "getsockopt", "SO_TYPE: not a datagram socket"));
  }
  #[cfg(target_os = "linux")]
  {
    let proto = step(sock.protocol(), "getsockopt", "SO_PROTOCOL")?;
    if proto != Some(socket2::Protocol::UDP) {
      return Err(refused(libc::EINVAL, "getsockopt", "SO_PROTOCOL: not a UDP socket"));
    }
  }
  let local: SockAddr = step(sock.local_addr(), "getsockname", "")?;
  match local.family() as libc::c_int {
    libc::AF_INET => Ok(false),
    libc::AF_INET6 => Ok(true),
    _ => Err(refused(libc::EINVAL, "getsockname", "not an IPv4 or IPv6 socket")),
  }
}

/// Borrows `fd` for the duration of `f` (`EBADF` for a negative fd or one not open).
fn with_fd<T>(fd: i32, f: impl FnOnce(&SockRef<'_>) -> Result<T, OpenError>) -> Result<T, OpenError> {
  if fd < 0 {
    return Err(refused(libc::EBADF, "fcntl", "the fd is negative"));
  }
  // SAFETY: F_GETFD only reads the descriptor flags of `fd`; an fd that is not open gives EBADF.
  if unsafe { libc::fcntl(fd as RawFd, libc::F_GETFD) } == -1 {
    return Err(OpenError { os: OsError::last("fcntl"), detail: "F_GETFD".into() });
  }
  // SAFETY: `fd` was just seen open, and the borrow ends with this call; the caller keeps the fd
  // open meanwhile (the same promise as any API taking a raw fd).
  let borrowed = unsafe { BorrowedFd::borrow_raw(fd as RawFd) };
  f(&SockRef::from(&borrowed))
}

/// The family of the UDP socket `fd` (4 or 6), without taking it; errors as [`adopt`].
pub fn family_of(fd: i32) -> Result<u32, OpenError> {
  with_fd(fd, |s| check(s).map(|v6| if v6 { 6 } else { 4 }))
}

/// Takes a duplicate of the UDP socket `fd` and configures it as `socket::open` would, minus
/// what only applies before bind (`bind`, `reuseAddr`, `reusePort`, `ipv6Only`): the socket is
/// used as it was bound. Returns the socket, its buffer sizes, and whether it is IPv6.
pub fn adopt(fd: i32, cfg: &SocketConfig) -> Result<(Socket, Granted, bool), OpenError> {
  let ipv6 = with_fd(fd, check)?;
  // SAFETY: F_DUPFD_CLOEXEC duplicates an fd just seen open; the result is -1 or a new fd
  // nobody else owns, which OwnedFd takes below.
  let dup = unsafe { libc::fcntl(fd as RawFd, libc::F_DUPFD_CLOEXEC, 0) };
  if dup == -1 {
    return Err(OpenError { os: OsError::last("fcntl"), detail: "F_DUPFD_CLOEXEC".into() });
  }
  // SAFETY: `dup` is a fresh descriptor owned by nobody else; from here it closes on drop,
  // so every error below releases it.
  let socket = Socket::from(unsafe { OwnedFd::from_raw_fd(dup) });
  step(socket.set_nonblocking(true), "fcntl", "O_NONBLOCK")?;
  if cfg.broadcast {
    step(socket.set_broadcast(true), "setsockopt", "SO_BROADCAST")?;
  }
  let mut recv_forced = false;
  let mut send_forced = false;
  if let Some(size) = cfg.recv_buffer_size {
    recv_forced = cfg.force_buffer_size && socket::force_buffer(&socket, size, true);
    if !recv_forced {
      step(socket.set_recv_buffer_size(size), "setsockopt", "SO_RCVBUF")?;
    }
  }
  if let Some(size) = cfg.send_buffer_size {
    send_forced = cfg.force_buffer_size && socket::force_buffer(&socket, size, false);
    if !send_forced {
      step(socket.set_send_buffer_size(size), "setsockopt", "SO_SNDBUF")?;
    }
  }
  if let Some(ttl) = cfg.ttl {
    if ipv6 {
      step(socket.set_unicast_hops_v6(ttl), "setsockopt", "IPV6_UNICAST_HOPS")?;
    } else {
      step(socket.set_ttl_v4(ttl), "setsockopt", "IP_TTL")?;
    }
  }
  if let Some(peer) = cfg.connect {
    let peer = if ipv6 { crate::addr::to_v6_mapped(peer) } else { peer };
    step(socket.connect(&SockAddr::from(peer)), "connect", &peer.to_string())?;
  }
  let granted = Granted {
    recv_buffer_size: step(socket.recv_buffer_size(), "getsockopt", "SO_RCVBUF")?,
    send_buffer_size: step(socket.send_buffer_size(), "getsockopt", "SO_SNDBUF")?,
    recv_forced,
    send_forced,
  };
  Ok((socket, granted, ipv6))
}

/// The IP family (4 or 6) of the UDP socket `fd`, checked as adopting it would check it:
/// `lib/options.ts` uses it to infer `type` when `fd` is given without one. The fd is only
/// borrowed.
#[napi]
pub fn udp_socket_family(env: Env, fd: i32) -> napi::Result<u32> {
  family_of(fd).map_err(|e| os_error(e.os, &e.detail).into_napi(&env))
}

#[cfg(test)]
mod tests {
  use super::*;
  use std::os::fd::AsRawFd;

  fn cfg() -> SocketConfig {
    SocketConfig {
      bind: "0.0.0.0:0".parse().unwrap(),
      ipv6: false,
      ipv6_only: None,
      reuse_addr: false,
      reuse_port: false,
      broadcast: false,
      recv_buffer_size: None,
      send_buffer_size: None,
      force_buffer_size: false,
      ttl: None,
      connect: None,
    }
  }

  #[test]
  fn adopts_a_udp_socket_and_leaves_the_original_open() {
    let orig = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let (s, _, v6) = adopt(orig.as_raw_fd(), &cfg()).unwrap();
    assert!(!v6);
    assert_ne!(s.as_raw_fd(), orig.as_raw_fd());
    assert_eq!(s.local_addr().unwrap().as_socket(), Some(orig.local_addr().unwrap()));
    drop(s);
    assert!(orig.local_addr().is_ok(), "the caller's fd stays open");
  }

  #[test]
  fn refuses_what_is_not_a_udp_socket() {
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    assert_eq!(adopt(tcp.as_raw_fd(), &cfg()).unwrap_err().os.errno, libc::EINVAL);
    let file = std::fs::File::open("Cargo.toml").unwrap();
    assert_eq!(adopt(file.as_raw_fd(), &cfg()).unwrap_err().os.errno, libc::ENOTSOCK);
    assert_eq!(adopt(-1, &cfg()).unwrap_err().os.errno, libc::EBADF);
  }
}

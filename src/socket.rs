//! Socket creation and configuration with `socket2`: family, options, bind, connect.
//! The resulting socket is non-blocking; its watch on the event loop does all waiting.

use std::net::SocketAddr;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::error::OsError;

/// Everything needed to create a socket, already validated.
#[derive(Debug, Clone)]
pub struct SocketConfig {
  pub bind: SocketAddr,
  /// Create an IPv6 socket even when `bind` is IPv4 is not allowed; this is the family used.
  pub ipv6: bool,
  pub ipv6_only: Option<bool>,
  pub reuse_addr: bool,
  pub reuse_port: bool,
  pub broadcast: bool,
  pub recv_buffer_size: Option<usize>,
  pub send_buffer_size: Option<usize>,
  /// Use `SO_RCVBUFFORCE`/`SO_SNDBUFFORCE` first (needs CAP_NET_ADMIN), then the plain option.
  pub force_buffer_size: bool,
  pub ttl: Option<u32>,
  pub connect: Option<SocketAddr>,
}

/// Buffer sizes the kernel actually granted (Linux reports double the request, capped by
/// `net.core.rmem_max`/`wmem_max` unless forced).
#[derive(Debug, Clone, Copy)]
pub struct Granted {
  /// Granted sizes (0 when none was requested: read them with getsockopt when needed).
  pub recv_buffer_size: usize,
  pub send_buffer_size: usize,
  /// True when a forced size was applied (the process had CAP_NET_ADMIN).
  pub recv_forced: bool,
  pub send_forced: bool,
}

/// A failure while opening: the OS error plus which step failed.
#[derive(Debug)]
pub struct OpenError {
  pub os: OsError,
  pub detail: String,
}

fn step<T>(r: std::io::Result<T>, syscall: &'static str, detail: &str) -> Result<T, OpenError> {
  r.map_err(|e| OpenError { os: OsError::from_io(&e, syscall), detail: detail.to_string() })
}

/// Creates, configures, binds and (optionally) connects a UDP socket.
pub fn open(cfg: &SocketConfig) -> Result<(Socket, Granted), OpenError> {
  let domain = if cfg.ipv6 { Domain::IPV6 } else { Domain::IPV4 };
  // Non-blocking from the start where the socket call can say so (two fcntl calls fewer).
  #[cfg(any(target_os = "linux", target_os = "android"))]
  let socket =
    step(Socket::new(domain, Type::DGRAM.nonblocking().cloexec(), Some(Protocol::UDP)), "socket", "")?;
  #[cfg(not(any(target_os = "linux", target_os = "android")))]
  let socket = {
    let s = step(Socket::new(domain, Type::DGRAM.cloexec(), Some(Protocol::UDP)), "socket", "")?;
    step(s.set_nonblocking(true), "fcntl", "O_NONBLOCK")?;
    s
  };
  if cfg.ipv6 {
    if let Some(only) = cfg.ipv6_only {
      step(socket.set_only_v6(only), "setsockopt", "IPV6_V6ONLY")?;
    }
  }
  if cfg.reuse_addr {
    step(socket.set_reuse_address(true), "setsockopt", "SO_REUSEADDR")?;
  }
  #[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos", target_os = "cygwin"))))]
  if cfg.reuse_port {
    step(socket.set_reuse_port(true), "setsockopt", "SO_REUSEPORT")?;
  }
  if cfg.broadcast {
    step(socket.set_broadcast(true), "setsockopt", "SO_BROADCAST")?;
  }
  let mut recv_forced = false;
  let mut send_forced = false;
  if let Some(size) = cfg.recv_buffer_size {
    recv_forced = cfg.force_buffer_size && force_buffer(&socket, size, true);
    if !recv_forced {
      step(socket.set_recv_buffer_size(size), "setsockopt", "SO_RCVBUF")?;
    }
  }
  if let Some(size) = cfg.send_buffer_size {
    send_forced = cfg.force_buffer_size && force_buffer(&socket, size, false);
    if !send_forced {
      step(socket.set_send_buffer_size(size), "setsockopt", "SO_SNDBUF")?;
    }
  }
  if let Some(ttl) = cfg.ttl {
    if cfg.ipv6 {
      step(socket.set_unicast_hops_v6(ttl), "setsockopt", "IPV6_UNICAST_HOPS")?;
    } else {
      step(socket.set_ttl_v4(ttl), "setsockopt", "IP_TTL")?;
    }
  }
  let bind = if cfg.ipv6 { crate::addr::to_v6_mapped(cfg.bind) } else { cfg.bind };
  // The address is formatted only for the error (formatting it every time was ~0.4 µs).
  socket
    .bind(&SockAddr::from(bind))
    .map_err(|e| OpenError { os: OsError::from_io(&e, "bind"), detail: bind.to_string() })?;
  if let Some(peer) = cfg.connect {
    let peer = if cfg.ipv6 { crate::addr::to_v6_mapped(peer) } else { peer };
    socket
      .connect(&SockAddr::from(peer))
      .map_err(|e| OpenError { os: OsError::from_io(&e, "connect"), detail: peer.to_string() })?;
  }
  // Read back only what was asked for (the rest is read when asked: `bufferSizes()`).
  let granted = Granted {
    recv_buffer_size: match cfg.recv_buffer_size {
      Some(_) => step(socket.recv_buffer_size(), "getsockopt", "SO_RCVBUF")?,
      None => 0,
    },
    send_buffer_size: match cfg.send_buffer_size {
      Some(_) => step(socket.send_buffer_size(), "getsockopt", "SO_SNDBUF")?,
      None => 0,
    },
    recv_forced,
    send_forced,
  };
  Ok((socket, granted))
}

/// Tries `SO_RCVBUFFORCE`/`SO_SNDBUFFORCE`; false when not permitted or not supported.
#[cfg(target_os = "linux")]
pub(crate) fn force_buffer(socket: &Socket, size: usize, recv: bool) -> bool {
  use std::os::fd::AsRawFd;
  let opt = if recv { libc::SO_RCVBUFFORCE } else { libc::SO_SNDBUFFORCE };
  let value = size.min(i32::MAX as usize) as libc::c_int;
  // SAFETY: passes a pointer to a live c_int and its exact size.
  let rc = unsafe {
    libc::setsockopt(
      socket.as_raw_fd(),
      libc::SOL_SOCKET,
      opt,
      &value as *const libc::c_int as *const libc::c_void,
      std::mem::size_of::<libc::c_int>() as libc::socklen_t,
    )
  };
  rc == 0
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn force_buffer(_socket: &Socket, _size: usize, _recv: bool) -> bool {
  false
}

/// Sets an integer socket option; the error names the option.
pub fn set_int(
  socket: &Socket,
  level: libc::c_int,
  opt: libc::c_int,
  value: libc::c_int,
  name: &'static str,
) -> Result<(), OpenError> {
  use std::os::fd::AsRawFd;
  // SAFETY: passes a pointer to a live c_int and its exact size.
  let rc = unsafe {
    libc::setsockopt(
      socket.as_raw_fd(),
      level,
      opt,
      &value as *const libc::c_int as *const libc::c_void,
      std::mem::size_of::<libc::c_int>() as libc::socklen_t,
    )
  };
  if rc == 0 {
    Ok(())
  } else {
    Err(OpenError { os: OsError::last("setsockopt"), detail: name.to_string() })
  }
}

/// Reads an integer socket option.
pub fn get_int(socket: &Socket, level: libc::c_int, opt: libc::c_int) -> std::io::Result<libc::c_int> {
  use std::os::fd::AsRawFd;
  let mut value: libc::c_int = 0;
  let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
  // SAFETY: passes a live c_int and its size; the kernel writes at most `len` bytes.
  let rc = unsafe {
    libc::getsockopt(
      socket.as_raw_fd(),
      level,
      opt,
      &mut value as *mut libc::c_int as *mut libc::c_void,
      &mut len,
    )
  };
  if rc == 0 {
    Ok(value)
  } else {
    Err(std::io::Error::last_os_error())
  }
}

/// Per-datagram receive information the socket is asked to deliver (Linux).
#[derive(Debug, Clone, Copy, Default)]
pub struct RecvInfo {
  pub pktinfo: bool,
  pub timestamps: bool,
  pub tos: bool,
  pub gro: bool,
}

/// Turns on the control messages for `info`. IPv6 sockets also ask for the IPv4 forms, for
/// IPv4-mapped traffic on dual-stack sockets (a failure there is ignored).
#[cfg(target_os = "linux")]
pub fn enable_recv_info(socket: &Socket, ipv6: bool, info: RecvInfo) -> Result<(), OpenError> {
  if info.pktinfo {
    if ipv6 {
      set_int(socket, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1, "IPV6_RECVPKTINFO")?;
      let _ = set_int(socket, libc::IPPROTO_IP, libc::IP_PKTINFO, 1, "IP_PKTINFO");
    } else {
      set_int(socket, libc::IPPROTO_IP, libc::IP_PKTINFO, 1, "IP_PKTINFO")?;
    }
  }
  if info.timestamps {
    set_int(socket, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1, "SO_TIMESTAMPNS")?;
  }
  if info.tos {
    if ipv6 {
      set_int(socket, libc::IPPROTO_IPV6, libc::IPV6_RECVTCLASS, 1, "IPV6_RECVTCLASS")?;
      let _ = set_int(socket, libc::IPPROTO_IP, libc::IP_RECVTOS, 1, "IP_RECVTOS");
    } else {
      set_int(socket, libc::IPPROTO_IP, libc::IP_RECVTOS, 1, "IP_RECVTOS")?;
    }
  }
  if info.gro {
    set_int(socket, libc::SOL_UDP, crate::linux::UDP_GRO, 1, "UDP_GRO")?;
  }
  Ok(())
}

#[cfg(not(target_os = "linux"))]
pub fn enable_recv_info(_socket: &Socket, _ipv6: bool, info: RecvInfo) -> Result<(), OpenError> {
  if info.pktinfo || info.timestamps || info.tos || info.gro {
    return Err(OpenError {
      os: OsError { errno: libc::ENOPROTOOPT, syscall: "setsockopt" },
      detail: "Linux only".into(),
    });
  }
  Ok(())
}

/// Sets the TOS (IPv4) or traffic class (IPv6) of everything the socket sends.
pub fn set_tos(socket: &Socket, ipv6: bool, tos: u32) -> Result<(), OpenError> {
  if ipv6 {
    set_int(socket, libc::IPPROTO_IPV6, libc::IPV6_TCLASS, tos as libc::c_int, "IPV6_TCLASS")?;
    let _ = set_int(socket, libc::IPPROTO_IP, libc::IP_TOS, tos as libc::c_int, "IP_TOS");
    Ok(())
  } else {
    set_int(socket, libc::IPPROTO_IP, libc::IP_TOS, tos as libc::c_int, "IP_TOS")
  }
}

/// True when the kernel knows `UDP_SEGMENT` (GSO) on this socket. The answer depends on the
/// kernel and the address family only, so it is asked once per family per process.
#[cfg(target_os = "linux")]
pub fn probe_gso(socket: &Socket, ipv6: bool) -> bool {
  use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
  // 0: not asked yet; 1: no; 2: yes. Index 0: IPv4, 1: IPv6.
  static KNOWN: [AtomicU8; 2] = [AtomicU8::new(0), AtomicU8::new(0)];
  let slot = &KNOWN[usize::from(ipv6)];
  match slot.load(Relaxed) {
    0 => {
      let yes = get_int(socket, libc::SOL_UDP, crate::linux::UDP_SEGMENT).is_ok();
      slot.store(if yes { 2 } else { 1 }, Relaxed);
      yes
    }
    k => k == 2,
  }
}

#[cfg(not(target_os = "linux"))]
pub fn probe_gso(_socket: &Socket, _ipv6: bool) -> bool {
  false
}

/// Bytes of IPv4 + UDP headers (no IP options) in front of a UDP payload.
const V4_UDP_HEADERS: usize = 20 + 8;
/// Bytes of IPv6 + UDP headers (no extension headers) in front of a UDP payload.
const V6_UDP_HEADERS: usize = 40 + 8;

/// True when `a` is an IPv4 address or an IPv4-mapped IPv6 address: the kernel sends such a
/// datagram on its IPv4 path, which reads `IPPROTO_IP` control messages only.
pub fn is_v4_path(a: &SockAddr) -> bool {
  match a.as_socket() {
    Some(SocketAddr::V4(_)) => true,
    Some(SocketAddr::V6(v6)) => v6.ip().to_ipv4_mapped().is_some(),
    None => false,
  }
}

/// The connected peer of `fd`, if it has one.
pub fn peer_of(fd: std::os::fd::RawFd) -> Option<SockAddr> {
  // SAFETY: the caller passes an fd it owns and keeps open for the duration of this call;
  // the borrow does not outlive it.
  let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
  socket2::SockRef::from(&borrowed).peer_addr().ok()
}

/// Largest UDP payload that leaves for `dest` without IP fragmentation: the route's MTU
/// (`IP_MTU`/`IPV6_MTU` read on a throwaway socket connected to `dest`, which sends nothing)
/// minus the IP and UDP headers. `None` when the route cannot be looked up.
#[cfg(target_os = "linux")]
pub fn path_max_payload(dest: &SockAddr) -> Option<usize> {
  let dest = dest.as_socket()?;
  // An IPv4-mapped destination takes the IPv4 route: look it up as IPv4.
  let dest = match dest {
    SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
      Some(v4) => SocketAddr::new(v4.into(), v6.port()),
      None => dest,
    },
    v4 => v4,
  };
  let (domain, level, opt, headers) = if dest.is_ipv4() {
    (Domain::IPV4, libc::IPPROTO_IP, libc::IP_MTU, V4_UDP_HEADERS)
  } else {
    (Domain::IPV6, libc::IPPROTO_IPV6, libc::IPV6_MTU, V6_UDP_HEADERS)
  };
  let probe = Socket::new(domain, Type::DGRAM.cloexec(), Some(Protocol::UDP)).ok()?;
  probe.connect(&SockAddr::from(dest)).ok()?;
  let mtu = get_int(&probe, level, opt).ok()?;
  usize::try_from(mtu).ok()?.checked_sub(headers)
}

#[cfg(not(target_os = "linux"))]
pub fn path_max_payload(_dest: &SockAddr) -> Option<usize> {
  None
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn v4_path_means_ipv4_or_mapped() {
    let v4: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let mapped: SocketAddr = "[::ffff:127.0.0.1]:9".parse().unwrap();
    let v6: SocketAddr = "[::1]:9".parse().unwrap();
    assert!(is_v4_path(&SockAddr::from(v4)));
    assert!(is_v4_path(&SockAddr::from(mapped)));
    assert!(!is_v4_path(&SockAddr::from(v6)));
  }

  #[cfg(target_os = "linux")]
  #[test]
  fn path_max_payload_of_loopback_is_its_mtu_minus_headers() {
    let lo: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let mapped: SocketAddr = "[::ffff:127.0.0.1]:9".parse().unwrap();
    let got = path_max_payload(&SockAddr::from(lo));
    // Loopback's MTU is 64 KiB by default, 1500 or more wherever it was lowered.
    assert!(got.is_some_and(|m| m >= 1500 - V4_UDP_HEADERS), "{got:?}");
    assert_eq!(path_max_payload(&SockAddr::from(mapped)), got, "a mapped address takes the IPv4 route");
  }

  #[cfg(target_os = "linux")]
  #[test]
  fn peer_of_reports_the_connected_peer_only() {
    let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    use std::os::fd::AsRawFd;
    assert!(peer_of(a.as_raw_fd()).is_none());
    a.connect(b.local_addr().unwrap()).unwrap();
    assert_eq!(peer_of(a.as_raw_fd()).and_then(|p| p.as_socket()), Some(b.local_addr().unwrap()));
  }
}

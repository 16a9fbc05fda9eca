//! Address conversion: IP literals (with optional `%scope`) to `SocketAddr`, and kernel
//! `sockaddr_storage` back to the compact per-datagram form a batch carries to JS.

use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// Family code stored per datagram in a batch: 4 or 6, or 0 for an address we cannot decode.
pub const FAMILY_V4: u8 = 4;
pub const FAMILY_V6: u8 = 6;

/// A source address in the compact form a batch carries: 16 address bytes (IPv4 uses the
/// first four), the port, the family code and the IPv6 scope id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct CompactAddr {
  pub family: u8,
  pub port: u16,
  pub bytes: [u8; 16],
  pub scope_id: u32,
}

/// Why an address string was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum AddrError {
  /// Not an IPv4 or IPv6 literal (hostnames are not resolved here).
  NotAnIp,
  /// The `%scope` part names no interface.
  BadScope,
}

/// Parses an IP literal: dotted IPv4, or IPv6 optionally followed by `%scope` where the scope
/// is a numeric id or an interface name (`fe80::1%lo`). Hostnames are refused.
pub fn parse_ip(text: &str) -> Result<(IpAddr, u32), AddrError> {
  if let Some((ip, scope)) = text.split_once('%') {
    let v6: Ipv6Addr = ip.parse().map_err(|_| AddrError::NotAnIp)?;
    return Ok((IpAddr::V6(v6), parse_scope(scope)?));
  }
  text.parse::<IpAddr>().map(|ip| (ip, 0)).map_err(|_| AddrError::NotAnIp)
}

fn parse_scope(scope: &str) -> Result<u32, AddrError> {
  if scope.is_empty() {
    return Err(AddrError::BadScope);
  }
  if let Ok(id) = scope.parse::<u32>() {
    return Ok(id);
  }
  let name = std::ffi::CString::new(scope).map_err(|_| AddrError::BadScope)?;
  // SAFETY: `name` is a valid NUL-terminated C string that outlives the call.
  let id = unsafe { libc::if_nametoindex(name.as_ptr()) };
  if id == 0 {
    Err(AddrError::BadScope)
  } else {
    Ok(id)
  }
}

/// Builds a socket address from an IP literal and a port.
pub fn socket_addr(text: &str, port: u16) -> Result<SocketAddr, AddrError> {
  let (ip, scope) = parse_ip(text)?;
  Ok(match ip {
    IpAddr::V4(v4) => SocketAddr::V4(SocketAddrV4::new(v4, port)),
    IpAddr::V6(v6) => SocketAddr::V6(SocketAddrV6::new(v6, port, 0, scope)),
  })
}

/// Converts an IPv4 destination to its IPv4-mapped IPv6 form, for sending from an IPv6
/// (dual-stack) socket; other addresses are returned unchanged.
pub fn to_v6_mapped(addr: SocketAddr) -> SocketAddr {
  match addr {
    SocketAddr::V4(v4) => SocketAddr::V6(SocketAddrV6::new(v4.ip().to_ipv6_mapped(), v4.port(), 0, 0)),
    other => other,
  }
}

/// Decodes what the kernel wrote into a `sockaddr_storage` (`len` bytes of it).
/// Unknown families and short lengths decode to family 0 instead of reading past `len`.
pub fn decode_sockaddr(storage: &libc::sockaddr_storage, len: libc::socklen_t) -> CompactAddr {
  let len = len as usize;
  match storage.ss_family as libc::c_int {
    libc::AF_INET if len >= std::mem::size_of::<libc::sockaddr_in>() => {
      // SAFETY: the family is AF_INET and the kernel wrote at least sizeof(sockaddr_in)
      // bytes, so reading the storage as a sockaddr_in is valid (storage is larger and aligned).
      let sin = unsafe { &*(storage as *const libc::sockaddr_storage as *const libc::sockaddr_in) };
      let mut bytes = [0u8; 16];
      bytes[..4].copy_from_slice(&sin.sin_addr.s_addr.to_ne_bytes());
      CompactAddr { family: FAMILY_V4, port: u16::from_be(sin.sin_port), bytes, scope_id: 0 }
    }
    libc::AF_INET6 if len >= std::mem::size_of::<libc::sockaddr_in6>() => {
      // SAFETY: the family is AF_INET6 and the kernel wrote at least sizeof(sockaddr_in6)
      // bytes, so reading the storage as a sockaddr_in6 is valid.
      let sin6 = unsafe { &*(storage as *const libc::sockaddr_storage as *const libc::sockaddr_in6) };
      CompactAddr {
        family: FAMILY_V6,
        port: u16::from_be(sin6.sin6_port),
        bytes: sin6.sin6_addr.s6_addr,
        scope_id: sin6.sin6_scope_id,
      }
    }
    _ => CompactAddr::default(),
  }
}

/// Textual form of an IP the way Node prints it (IPv6 compressed, `%scope` as a number).
pub fn ip_to_string(addr: &SocketAddr) -> String {
  match addr {
    SocketAddr::V4(v4) => v4.ip().to_string(),
    SocketAddr::V6(v6) if v6.scope_id() != 0 => format!("{}%{}", v6.ip(), v6.scope_id()),
    SocketAddr::V6(v6) => v6.ip().to_string(),
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use socket2::SockAddr;
  use std::net::{Ipv4Addr, SocketAddrV4, SocketAddrV6};

  /// Converts a compact address back to a `SocketAddr` (the inverse of `to_compact`, for checking it).
  pub fn compact_to_socket_addr(c: &CompactAddr) -> Option<SocketAddr> {
    match c.family {
      FAMILY_V4 => {
        let ip = Ipv4Addr::new(c.bytes[0], c.bytes[1], c.bytes[2], c.bytes[3]);
        Some(SocketAddr::V4(SocketAddrV4::new(ip, c.port)))
      }
      FAMILY_V6 => Some(SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(c.bytes), c.port, 0, c.scope_id))),
      _ => None,
    }
  }

  fn round_trip(addr: SocketAddr) -> CompactAddr {
    let sa = SockAddr::from(addr);
    // SAFETY: zeroed sockaddr_storage is a valid value; we copy at most its size.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = sa.len() as usize;
    // SAFETY: `sa` holds `len` initialised bytes and `storage` has room for any sockaddr.
    unsafe {
      std::ptr::copy_nonoverlapping(sa.as_ptr() as *const u8, &mut storage as *mut _ as *mut u8, len)
    };
    decode_sockaddr(&storage, sa.len())
  }

  #[test]
  fn parses_literals_and_refuses_the_rest() {
    assert_eq!(parse_ip("127.0.0.1").unwrap().0, IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert_eq!(parse_ip("::1").unwrap().0, IpAddr::V6(Ipv6Addr::LOCALHOST));
    assert!(parse_ip("::ffff:1.2.3.4").is_ok());
    assert_eq!(parse_ip("fe80::1%1").unwrap().1, 1);
    assert_eq!(parse_ip("fe80::1%lo").unwrap().1, 1, "lo is interface 1");
    for bad in ["256.1.1.1", "", "localhost", "1.2.3", "::g", "127.0.0.1%lo", "fe80::1%", "fe80::1%nosuchif0"]
    {
      assert!(parse_ip(bad).is_err(), "{bad} must be refused");
    }
  }

  #[test]
  fn sockaddr_round_trips() {
    for text in ["127.0.0.1:9", "[::1]:65535", "[fe80::1%1]:53", "0.0.0.0:0", "[::ffff:10.0.0.1]:1"] {
      let addr: SocketAddr = text.parse().unwrap();
      let c = round_trip(addr);
      assert_eq!(compact_to_socket_addr(&c), Some(addr), "{text}");
    }
  }

  #[test]
  fn short_or_unknown_sockaddr_decodes_to_family_zero() {
    // SAFETY: zeroed sockaddr_storage is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    storage.ss_family = libc::AF_INET6 as libc::sa_family_t;
    assert_eq!(decode_sockaddr(&storage, 8).family, 0);
    storage.ss_family = libc::AF_UNIX as libc::sa_family_t;
    assert_eq!(decode_sockaddr(&storage, 110).family, 0);
  }

  #[test]
  fn maps_v4_for_dual_stack() {
    let m = to_v6_mapped("127.0.0.1:5".parse().unwrap());
    assert_eq!(m.to_string(), "[::ffff:127.0.0.1]:5");
    assert_eq!(ip_to_string(&"[fe80::1%3]:1".parse().unwrap()), "fe80::1%3");
  }
}

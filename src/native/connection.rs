//! Addresses: parsing them into argument errors, and the socket's own address and peer
//! (`localAddress`, `remoteAddress`, `connect`, `disconnect`).

use std::os::fd::AsRawFd;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use socket2::SockAddr;

use super::options::{address_info, AddressInfo};
use super::{throw, NativeSocket};
use crate::addr::{self, AddrError};
use crate::error::{invalid_arg, invalid_entry, os_error, NResult, NativeError, OsError};

/// The argument error for an address `argument` that is no usable IP literal.
pub(super) fn addr_error(e: AddrError, argument: &'static str) -> NativeError {
  invalid_arg(argument, addr_reason(e))
}

/// The argument error for entry `index` of a send's destination or source table.
pub(super) fn entry_error(e: AddrError, argument: &'static str, index: usize) -> NativeError {
  invalid_entry(argument, index, addr_reason(e))
}

/// Why an address literal was refused.
fn addr_reason(e: AddrError) -> &'static str {
  match e {
    AddrError::NotAnIp => "must be an IP address literal",
    AddrError::BadScope => "has an unknown IPv6 scope",
  }
}

/// A port number, or the argument error naming `argument`.
pub(super) fn port(p: u32, argument: &'static str) -> NResult<u16> {
  u16::try_from(p).map_err(|_| invalid_arg(argument, "must be 0..65535"))
}

/// An IPv4 address literal, or the argument error naming `argument`.
pub(super) fn ipv4(text: &str, argument: &'static str) -> NResult<std::net::Ipv4Addr> {
  match addr::parse_ip(text) {
    Ok((std::net::IpAddr::V4(v4), _)) => Ok(v4),
    _ => Err(invalid_arg(argument, "must be an IPv4 address")),
  }
}

/// An IPv6 interface given as a name (`lo`), an index (`1`) or `::%scope`.
pub(super) fn interface_index(text: &str) -> NResult<u32> {
  if let Ok(i) = text.parse::<u32>() {
    return Ok(i);
  }
  if let Ok((_, scope)) = addr::parse_ip(text) {
    return Ok(scope);
  }
  addr::parse_ip(&format!("::%{text}"))
    .map(|(_, s)| s)
    .map_err(|_| invalid_arg("interface", "names no known interface"))
}

#[napi]
impl NativeSocket {
  /// The local address the socket is bound to (the real port when bound to port 0).
  #[napi]
  pub fn local_address(&self, env: Env) -> Result<AddressInfo> {
    self.with(&env, |o| {
      let a = o.socket.local_addr().map_err(|e| os_error(OsError::from_io(&e, "getsockname"), ""))?;
      a.as_socket().map(|a| address_info(&a)).ok_or_else(|| invalid_arg("socket", "is not an IP socket"))
    })
  }

  /// The connected peer, or null when not connected.
  #[napi]
  pub fn remote_address(&self, env: Env) -> Result<Option<AddressInfo>> {
    self.with(&env, |o| {
      if !o.connected {
        return Ok(None);
      }
      match o.socket.peer_addr() {
        Ok(a) => Ok(a.as_socket().map(|a| address_info(&a))),
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => Ok(None),
        Err(e) => Err(os_error(OsError::from_io(&e, "getpeername"), "")),
      }
    })
  }

  /// Connects the socket to a peer: sends without a destination go there, and only its
  /// datagrams are received.
  #[napi]
  pub fn connect(&self, env: Env, address: String, port_number: u32) -> Result<()> {
    let peer = throw(
      &env,
      port(port_number, "port")
        .and_then(|p| addr::socket_addr(&address, p).map_err(|e| addr_error(e, "address"))),
    )?;
    self.with(&env, |o| {
      let peer = if o.ipv6 { addr::to_v6_mapped(peer) } else { peer };
      o.socket
        .connect(&SockAddr::from(peer))
        .map_err(|e| os_error(OsError::from_io(&e, "connect"), &peer.to_string()))?;
      o.connected = true;
      Ok(())
    })
  }

  /// Dissolves the association made by `connect`.
  #[napi]
  pub fn disconnect(&self, env: Env) -> Result<()> {
    self.with(&env, |o| {
      // SAFETY: an all-zero sockaddr with AF_UNSPEC is the documented way to disconnect UDP.
      let mut sa: libc::sockaddr = unsafe { std::mem::zeroed() };
      sa.sa_family = libc::AF_UNSPEC as libc::sa_family_t;
      // SAFETY: passes a live sockaddr and its exact size.
      let rc = unsafe {
        libc::connect(o.socket.as_raw_fd(), &sa, std::mem::size_of::<libc::sockaddr>() as libc::socklen_t)
      };
      if rc != 0 {
        let e = std::io::Error::last_os_error();
        // Some systems answer EAFNOSUPPORT yet do disconnect.
        if e.raw_os_error() != Some(libc::EAFNOSUPPORT) {
          return Err(os_error(OsError::from_io(&e, "connect"), "AF_UNSPEC"));
        }
      }
      o.connected = false;
      Ok(())
    })
  }
}

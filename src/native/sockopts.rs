//! Socket options: buffer sizes, capabilities, TTL/TOS, broadcast, multicast, membership and
//! the raw `setsockopt`/`getsockopt` escape hatch.

use napi::bindgen_prelude::*;
use napi_derive::napi;

use super::connection::{addr_error, interface_index, ipv4};
use super::options::{BufferSizes, Capabilities};
use super::{throw, NativeSocket};
use crate::addr;
use crate::error::{invalid_arg, os_error, OsError};
use crate::recv::RecvMode;
use crate::socket;
use crate::steering::{Steering, SteeringOptions};

#[napi]
impl NativeSocket {
  /// Buffer sizes the kernel granted (read back with getsockopt, not the requested ones).
  #[napi]
  pub fn buffer_sizes(&self, env: Env) -> Result<BufferSizes> {
    self.with(&env, |o| {
      let r = o.socket.recv_buffer_size().unwrap_or(o.granted.recv_buffer_size);
      let s = o.socket.send_buffer_size().unwrap_or(o.granted.send_buffer_size);
      Ok(BufferSizes {
        recv_buffer_size: r.min(u32::MAX as usize) as u32,
        send_buffer_size: s.min(u32::MAX as usize) as u32,
        recv_forced: o.granted.recv_forced,
        send_forced: o.granted.send_forced,
      })
    })
  }

  /// Sets `SO_RCVBUF` (or `SO_SNDBUF` when `send` is true) after creation.
  #[napi]
  pub fn set_buffer_size(&self, env: Env, send: bool, size: u32) -> Result<()> {
    self.with(&env, |o| {
      let r = if send {
        o.socket.set_send_buffer_size(size as usize)
      } else {
        o.socket.set_recv_buffer_size(size as usize)
      };
      r.map_err(|e| {
        os_error(OsError::from_io(&e, "setsockopt"), if send { "SO_SNDBUF" } else { "SO_RCVBUF" })
      })
    })
  }

  /// work on the socket's path).
  #[napi]
  pub fn capabilities(&self, env: Env) -> Result<Capabilities> {
    self.with(&env, |o| {
      let batched = o.shared.mode == RecvMode::Batched;
      Ok(Capabilities {
        batched,
        gso_supported: o.caps.gso_supported,
        gso: o.scratch.gso,
        gro: o.caps.info.gro,
        drop_counter: o.caps.drop_counter,
        pktinfo: o.caps.info.pktinfo,
        timestamps: o.caps.info.timestamps,
        recv_tos: o.caps.info.tos,
        // What the socket has now, read back from the kernel: true only when it was bound
        // with `reusePort` (or set SO_REUSEPORT itself) on a platform that has the option.
        reuse_port: reuse_port_of(&o.socket),
        reuse_port_steering: cfg!(target_os = "linux"),
      })
    })
  }

  /// Chooses the steering of this socket's `SO_REUSEPORT` group (see `crate::steering`).
  #[napi]
  pub fn set_steering(&self, env: Env, steering: SteeringOptions) -> Result<()> {
    let s = throw(&env, Steering::parse(&steering))?;
    self.with(&env, |o| crate::steering::apply(&o.socket, s))
  }

  /// `SO_INCOMING_CPU`: the value set, or for a connected socket the CPU that processed the
  /// last datagram it received; -1 before either.
  #[napi]
  pub fn get_incoming_cpu(&self, env: Env) -> Result<i32> {
    self.with(&env, |o| crate::steering::incoming_cpu(&o.socket))
  }

  /// Sets `SO_INCOMING_CPU`.
  #[napi]
  pub fn set_incoming_cpu(&self, env: Env, cpu: i32) -> Result<()> {
    self.with(&env, |o| crate::steering::set_incoming_cpu(&o.socket, cpu))
  }

  /// Sets an integer socket option directly (`setsockopt(fd, level, option, &value)`): an
  /// escape hatch for options this API does not cover.
  #[napi]
  pub fn set_int_option(&self, env: Env, level: i32, option: i32, value: i32) -> Result<()> {
    self.with(&env, |o| {
      #[cfg(target_os = "linux")]
      if level == libc::SOL_UDP && option == crate::linux::UDP_GRO && value != 0 && !o.caps.info.gro {
        // The receive slots of a socket bound without `gro` hold one datagram each: coalesced
        // receives would be cut, and most of their datagrams lost without a count.
        return Err(invalid_arg(
          "option",
          "UDP_GRO cannot be enabled with setSocketOption: bind with gro: true",
        ));
      }
      socket::set_int(&o.socket, level, option, value, "raw option").map_err(|e| os_error(e.os, &e.detail))
    })
  }

  /// Reads an integer socket option directly (`getsockopt`).
  #[napi]
  pub fn get_int_option(&self, env: Env, level: i32, option: i32) -> Result<i32> {
    self.with(&env, |o| {
      socket::get_int(&o.socket, level, option)
        .map_err(|e| os_error(OsError::from_io(&e, "getsockopt"), "raw option"))
    })
  }

  /// Sets `SO_BROADCAST`.
  #[napi]
  pub fn set_broadcast(&self, env: Env, on: bool) -> Result<()> {
    self.with(&env, |o| {
      o.socket.set_broadcast(on).map_err(|e| os_error(OsError::from_io(&e, "setsockopt"), "SO_BROADCAST"))
    })
  }

  /// Reads `SO_BROADCAST`.
  #[napi]
  pub fn get_broadcast(&self, env: Env) -> Result<bool> {
    self.with(&env, |o| {
      o.socket.broadcast().map_err(|e| os_error(OsError::from_io(&e, "getsockopt"), "SO_BROADCAST"))
    })
  }

  /// Sets the unicast TTL (IPv4) or hop limit (IPv6).
  #[napi]
  pub fn set_ttl(&self, env: Env, ttl: u32) -> Result<()> {
    self.with(&env, |o| {
      let r = if o.ipv6 { o.socket.set_unicast_hops_v6(ttl) } else { o.socket.set_ttl_v4(ttl) };
      r.map_err(|e| os_error(OsError::from_io(&e, "setsockopt"), "IP_TTL"))
    })
  }

  /// Sets the TOS (IPv4) or traffic class (IPv6) of everything this socket sends.
  #[napi]
  pub fn set_tos(&self, env: Env, tos: u32) -> Result<()> {
    if tos > 255 {
      return Err(invalid_arg("tos", "must be 0..255").into_napi(&env));
    }
    self.with(&env, |o| socket::set_tos(&o.socket, o.ipv6, tos).map_err(|e| os_error(e.os, &e.detail)))
  }

  /// Sets the multicast TTL (IPv4) or hop limit (IPv6).
  #[napi]
  pub fn set_multicast_ttl(&self, env: Env, ttl: u32) -> Result<()> {
    self.with(&env, |o| {
      let r = if o.ipv6 { o.socket.set_multicast_hops_v6(ttl) } else { o.socket.set_multicast_ttl_v4(ttl) };
      r.map_err(|e| os_error(OsError::from_io(&e, "setsockopt"), "IP_MULTICAST_TTL"))
    })
  }

  /// Sets whether multicast sent from this socket loops back to local receivers.
  #[napi]
  pub fn set_multicast_loopback(&self, env: Env, on: bool) -> Result<()> {
    self.with(&env, |o| {
      let r = if o.ipv6 { o.socket.set_multicast_loop_v6(on) } else { o.socket.set_multicast_loop_v4(on) };
      r.map_err(|e| os_error(OsError::from_io(&e, "setsockopt"), "IP_MULTICAST_LOOP"))
    })
  }

  /// Reads whether multicast loops back.
  #[napi]
  pub fn get_multicast_loopback(&self, env: Env) -> Result<bool> {
    self.with(&env, |o| {
      let r = if o.ipv6 { o.socket.multicast_loop_v6() } else { o.socket.multicast_loop_v4() };
      r.map_err(|e| os_error(OsError::from_io(&e, "getsockopt"), "IP_MULTICAST_LOOP"))
    })
  }

  /// Chooses the interface for outgoing multicast: an IPv4 address of the interface, or for
  /// IPv6 an interface name, index or `::%scope`.
  #[napi]
  pub fn set_multicast_interface(&self, env: Env, interface: String) -> Result<()> {
    self.with(&env, |o| {
      let r = if o.ipv6 {
        o.socket.set_multicast_if_v6(interface_index(&interface)?)
      } else {
        o.socket.set_multicast_if_v4(&ipv4(&interface, "interface")?)
      };
      r.map_err(|e| os_error(OsError::from_io(&e, "setsockopt"), "IP_MULTICAST_IF"))
    })
  }

  /// Joins (`join` true) or leaves a multicast group, optionally on one interface, optionally
  /// source-specific (`source`).
  #[napi]
  pub fn membership(
    &self,
    env: Env,
    join: bool,
    group: String,
    interface: Option<String>,
    source: Option<String>,
  ) -> Result<()> {
    let (g, _) = throw(&env, addr::parse_ip(&group).map_err(|e| addr_error(e, "group")))?;
    if !g.is_multicast() {
      return Err(invalid_arg("group", "must be a multicast address").into_napi(&env));
    }
    self.with(&env, |o| {
      let what = if join { "join" } else { "leave" };
      let err = |e: std::io::Error| os_error(OsError::from_io(&e, "setsockopt"), what);
      match (g, source) {
        (std::net::IpAddr::V4(g4), None) => {
          let ifa = match &interface {
            Some(i) => ipv4(i, "interface")?,
            None => std::net::Ipv4Addr::UNSPECIFIED,
          };
          if join { o.socket.join_multicast_v4(&g4, &ifa) } else { o.socket.leave_multicast_v4(&g4, &ifa) }
            .map_err(err)
        }
        (std::net::IpAddr::V4(g4), Some(src)) => {
          let s4 = ipv4(&src, "source")?;
          let ifa = match &interface {
            Some(i) => ipv4(i, "interface")?,
            None => std::net::Ipv4Addr::UNSPECIFIED,
          };
          if join { o.socket.join_ssm_v4(&s4, &g4, &ifa) } else { o.socket.leave_ssm_v4(&s4, &g4, &ifa) }
            .map_err(err)
        }
        (std::net::IpAddr::V6(g6), None) => {
          let idx = match &interface {
            Some(i) => interface_index(i)?,
            None => 0,
          };
          if join { o.socket.join_multicast_v6(&g6, idx) } else { o.socket.leave_multicast_v6(&g6, idx) }
            .map_err(err)
        }
        (std::net::IpAddr::V6(g6), Some(src)) => {
          let (s, _) = addr::parse_ip(&src).map_err(|e| addr_error(e, "source"))?;
          let std::net::IpAddr::V6(s6) = s else {
            return Err(invalid_arg("source", "must be IPv6 for an IPv6 group"));
          };
          let idx = match &interface {
            Some(i) => interface_index(i)?,
            None => 0,
          };
          crate::multicast::ssm_v6(&o.socket, join, g6, s6, idx).map_err(err)
        }
      }
    })
  }
}

/// Whether `SO_REUSEPORT` is set on `socket` (false where the platform lacks the option or
/// the read fails).
fn reuse_port_of(socket: &socket2::Socket) -> bool {
  #[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos", target_os = "cygwin"))))]
  return socket.reuse_port().unwrap_or(false);
  #[cfg(not(all(unix, not(any(target_os = "solaris", target_os = "illumos", target_os = "cygwin")))))]
  {
    let _ = socket;
    false
  }
}

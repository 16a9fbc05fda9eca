//! Steering inside a `SO_REUSEPORT` group: which socket of the group gets each datagram.
//!
//! The kernel's default picks a socket by a hash of the flow (addresses and ports), so one
//! sender lands on one socket whatever the group size. A classic BPF program attached with
//! `SO_ATTACH_REUSEPORT_CBPF` replaces that choice for the whole group: it returns the index
//! of the socket (in the order the sockets joined; the kernel compacts the array when one
//! leaves, moving the last socket into the freed slot), and an index at or past the number of
//! sockets makes the kernel fall back to the hash. Two programs are built here:
//!
//! - `cpu`: `ld #cpu; [mod #n;] ret a`: the CPU that processed the packet (for loopback, the
//!   sender's CPU; for a NIC, the CPU its receive queue interrupts), modulo `n` when given.
//! - `random`: `ld #rand; mod #n; ret a`: a uniformly random socket of the `n`.
//!
//! `hash` detaches any program (`SO_DETACH_REUSEPORT_BPF`, Linux 5.3+; "none attached" is not
//! an error). Linux only: elsewhere every mode but `hash` is refused with `EOPNOTSUPP`.

use napi_derive::napi;
use socket2::Socket;

use crate::error::{invalid_arg, NResult, NativeError, OsError};

/// Steering of a reuseport group, as the constructor and `setSteering` take it.
#[napi(object)]
#[derive(Clone)]
pub struct SteeringOptions {
  /// `'hash'`, `'cpu'` or `'random'`.
  pub mode: String,
  /// Sockets the program spreads over (1..=65535); required for `'random'`, optional for
  /// `'cpu'` (without it CPU k goes to socket k).
  pub group_size: Option<u32>,
}

/// A parsed steering choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Steering {
  /// The kernel's flow hash (no program).
  Hash,
  /// The processing CPU, modulo the group size when there is one.
  Cpu(Option<u32>),
  /// A random socket among `n`.
  Random(u32),
}

impl Steering {
  /// Parses and checks `o`, naming the offending field in the error.
  pub fn parse(o: &SteeringOptions) -> NResult<Steering> {
    let n = match o.group_size {
      Some(n) if n == 0 || n > u16::MAX as u32 => return Err(invalid_arg("groupSize", "must be 1..65535")),
      n => n,
    };
    match (o.mode.as_str(), n) {
      ("hash", None) => Ok(Steering::Hash),
      ("hash", Some(_)) => Err(invalid_arg("groupSize", "applies to 'cpu' and 'random' steering only")),
      ("cpu", n) => Ok(Steering::Cpu(n)),
      ("random", Some(n)) => Ok(Steering::Random(n)),
      ("random", None) => Err(invalid_arg("groupSize", "is required with 'random' steering")),
      _ => Err(invalid_arg("steering", "must be 'hash', 'cpu' or 'random'")),
    }
  }
}

/// The classic BPF program for `s` (`None` for the hash, which needs none).
#[cfg(target_os = "linux")]
pub fn program(s: Steering) -> Option<Vec<libc::sock_filter>> {
  use libc::{
    BPF_A, BPF_ABS, BPF_ALU, BPF_K, BPF_LD, BPF_MOD, BPF_RET, BPF_W, SKF_AD_CPU, SKF_AD_OFF, SKF_AD_RANDOM,
  };
  // `BPF_STMT` without libc's `unsafe fn` wrapper: an instruction with no jumps.
  let stmt = |code: u32, k: u32| libc::sock_filter { code: code as u16, jt: 0, jf: 0, k };
  // Ancillary loads: the offset is negative (SKF_AD_OFF), passed as its u32 bit pattern.
  let load = |what: libc::c_int| stmt(BPF_LD | BPF_W | BPF_ABS, (SKF_AD_OFF + what) as u32);
  let ret_a = stmt(BPF_RET | BPF_A, 0);
  let modulo = |n: u32| stmt(BPF_ALU | BPF_MOD | BPF_K, n);
  match s {
    Steering::Hash => None,
    Steering::Cpu(None) => Some(vec![load(SKF_AD_CPU), ret_a]),
    Steering::Cpu(Some(n)) => Some(vec![load(SKF_AD_CPU), modulo(n), ret_a]),
    Steering::Random(n) => Some(vec![load(SKF_AD_RANDOM), modulo(n), ret_a]),
  }
}

/// Applies `s` to the reuseport group of `socket` (which must have `SO_REUSEPORT` set).
#[cfg(target_os = "linux")]
pub fn apply(socket: &Socket, s: Steering) -> NResult<()> {
  use std::os::fd::AsRawFd;
  let fd = socket.as_raw_fd();
  let Some(mut prog) = program(s) else {
    // The option ignores its value, but the kernel refuses one shorter than an int (EINVAL).
    let unused: libc::c_int = 0;
    // SAFETY: `fd` is the open socket borrowed from `socket`; the value points at a live c_int
    // and its exact size is passed.
    let r = unsafe {
      libc::setsockopt(
        fd,
        libc::SOL_SOCKET,
        libc::SO_DETACH_REUSEPORT_BPF,
        (&unused as *const libc::c_int).cast(),
        std::mem::size_of::<libc::c_int>() as libc::socklen_t,
      )
    };
    let err = std::io::Error::last_os_error();
    // ENOENT: no program attached, which is what `hash` asks for. ENOPROTOOPT: a kernel before
    // 5.3 cannot detach; nothing was attached by this socket's `hash` request either.
    return match err.raw_os_error() {
      _ if r == 0 => Ok(()),
      Some(libc::ENOENT) | Some(libc::ENOPROTOOPT) => Ok(()),
      _ => Err(os(&err, "SO_DETACH_REUSEPORT_BPF")),
    };
  };
  let fprog = libc::sock_fprog { len: prog.len() as u16, filter: prog.as_mut_ptr() };
  // SAFETY: `fd` is the open socket borrowed from `socket`; `fprog` points at `prog`, which
  // outlives the call; the kernel copies the program and checks it.
  let r = unsafe {
    libc::setsockopt(
      fd,
      libc::SOL_SOCKET,
      libc::SO_ATTACH_REUSEPORT_CBPF,
      (&fprog as *const libc::sock_fprog).cast(),
      std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
    )
  };
  if r == 0 {
    Ok(())
  } else {
    // EINVAL: the socket is not in a reuseport group (bound without `reusePort`).
    Err(os(&std::io::Error::last_os_error(), "SO_ATTACH_REUSEPORT_CBPF (needs reusePort: true)"))
  }
}

/// Everywhere but Linux: only `hash` (the default, a no-op) is possible.
#[cfg(not(target_os = "linux"))]
pub fn apply(_socket: &Socket, s: Steering) -> NResult<()> {
  match s {
    Steering::Hash => Ok(()),
    _ => Err(crate::error::os_error(
      OsError { errno: libc::EOPNOTSUPP, syscall: "setsockopt" },
      "SO_ATTACH_REUSEPORT_CBPF (reuseport steering is Linux-only)",
    )),
  }
}

/// `SO_INCOMING_CPU` of `socket`: the one set with [`set_incoming_cpu`], or for a connected
/// socket the CPU that processed its last datagram (the kernel records it only for those);
/// -1 before either.
#[cfg(target_os = "linux")]
pub fn incoming_cpu(socket: &Socket) -> NResult<i32> {
  crate::socket::get_int(socket, libc::SOL_SOCKET, libc::SO_INCOMING_CPU)
    .map_err(|e| crate::error::os_error(OsError::from_io(&e, "getsockopt"), "SO_INCOMING_CPU"))
}

/// Sets `SO_INCOMING_CPU` of `socket`.
#[cfg(target_os = "linux")]
pub fn set_incoming_cpu(socket: &Socket, cpu: i32) -> NResult<()> {
  crate::socket::set_int(socket, libc::SOL_SOCKET, libc::SO_INCOMING_CPU, cpu, "SO_INCOMING_CPU")
    .map_err(|e| crate::error::os_error(e.os, &e.detail))
}

/// `SO_INCOMING_CPU` exists on Linux only.
#[cfg(not(target_os = "linux"))]
pub fn incoming_cpu(_socket: &Socket) -> NResult<i32> {
  Err(unsupported_cpu())
}

/// `SO_INCOMING_CPU` exists on Linux only.
#[cfg(not(target_os = "linux"))]
pub fn set_incoming_cpu(_socket: &Socket, _cpu: i32) -> NResult<()> {
  Err(unsupported_cpu())
}

#[cfg(not(target_os = "linux"))]
fn unsupported_cpu() -> NativeError {
  crate::error::os_error(
    OsError { errno: libc::EOPNOTSUPP, syscall: "getsockopt" },
    "SO_INCOMING_CPU (Linux-only)",
  )
}

/// The error for a failed `setsockopt`/`getsockopt` of `what`.
#[cfg(target_os = "linux")]
fn os(e: &std::io::Error, what: &str) -> NativeError {
  crate::error::os_error(OsError::from_io(e, "setsockopt"), what)
}

#[cfg(test)]
mod tests {
  use super::*;

  fn opts(mode: &str, n: Option<u32>) -> SteeringOptions {
    SteeringOptions { mode: mode.to_string(), group_size: n }
  }

  #[test]
  fn parses_modes_and_refuses_bad_values() {
    assert_eq!(Steering::parse(&opts("hash", None)).ok(), Some(Steering::Hash));
    assert_eq!(Steering::parse(&opts("cpu", None)).ok(), Some(Steering::Cpu(None)));
    assert_eq!(Steering::parse(&opts("cpu", Some(4))).ok(), Some(Steering::Cpu(Some(4))));
    assert_eq!(Steering::parse(&opts("random", Some(2))).ok(), Some(Steering::Random(2)));
    assert!(Steering::parse(&opts("random", None)).is_err());
    assert!(Steering::parse(&opts("random", Some(0))).is_err());
    assert!(Steering::parse(&opts("random", Some(65536))).is_err());
    assert!(Steering::parse(&opts("hash", Some(2))).is_err());
    assert!(Steering::parse(&opts("round-robin", None)).is_err());
  }

  #[cfg(target_os = "linux")]
  #[test]
  fn programs_load_then_reduce_then_return() {
    assert!(program(Steering::Hash).is_none());
    let p = program(Steering::Random(4)).unwrap_or_default();
    assert_eq!(p.len(), 3);
    assert_eq!(p[0].k, (libc::SKF_AD_OFF + libc::SKF_AD_RANDOM) as u32);
    assert_eq!(p[1].k, 4);
    assert_eq!(p[2].code as u32, libc::BPF_RET | libc::BPF_A);
    assert_eq!(program(Steering::Cpu(None)).map(|p| p.len()), Some(2));
  }
}

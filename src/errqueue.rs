//! The socket error queue. With `IP_RECVERR` / `IPV6_RECVERR` on (settable through the raw
//! `setSocketOption`), the kernel queues each ICMP error on the socket's error queue, and
//! `poll` reports `POLLERR` until the queue is read with `MSG_ERRQUEUE`: a reader that never
//! reads it spins. The socket's event-loop watch drains it here (`crate::io`).
//!
//! The queue holds more than errors: transmit timestamps (`SO_TIMESTAMPING`) and zerocopy
//! completions arrive there too, marked by `ee_origin` (and `ee_errno` `ENOMSG` or 0). Those
//! are counted and discarded, never reported as errors.
//!
//! The same ICMP error is also parked in the socket's pending error (`sk_err`), which the next
//! receive returns; reading the queue clears it. Callers that meet a receive error therefore
//! drain the queue and report that error only when no queued entry explains it (see `io.rs`).

use std::os::fd::RawFd;

use crate::cmsg;

/// `SO_EE_ORIGIN_ZEROCOPY` (linux/errqueue.h): a `MSG_ZEROCOPY` completion. Not in `libc`.
#[cfg(target_os = "linux")]
const SO_EE_ORIGIN_ZEROCOPY: u8 = 5;

/// Most entries read per wake-up, so a flood of ICMP errors cannot starve receiving.
pub const MAX_ENTRIES_PER_DRAIN: usize = 64;

/// What one error-queue entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
  /// An error to report (an ICMP error, a local error): its errno.
  Error(i32),
  /// Not an error: a transmit timestamp or a zerocopy completion.
  Notice,
}

/// Classifies an entry from its control messages. An entry without a (complete)
/// `sock_extended_err` is reported as `EIO`, never dropped unseen. Linux only: the error queue,
/// `IP_RECVERR` and `sock_extended_err` exist nowhere else.
#[cfg(target_os = "linux")]
pub fn classify(control: &[u8], len: usize) -> Entry {
  let found = cmsg::parse(control, len).find(|c| {
    (c.level == libc::IPPROTO_IP && c.kind == libc::IP_RECVERR)
      || (c.level == libc::IPPROTO_IPV6 && c.kind == libc::IPV6_RECVERR)
  });
  let Some(c) = found else { return Entry::Error(libc::EIO) };
  if c.data.len() < std::mem::size_of::<libc::sock_extended_err>() {
    return Entry::Error(libc::EIO);
  }
  // SAFETY: `c.data` holds at least size_of::<sock_extended_err>() bytes; read_unaligned copes
  // with the byte slice's alignment, and every bit pattern is a valid sock_extended_err.
  let ee: libc::sock_extended_err =
    unsafe { std::ptr::read_unaligned(c.data.as_ptr() as *const libc::sock_extended_err) };
  let notice = ee.ee_errno == 0
    || ee.ee_errno == libc::ENOMSG as u32
    || ee.ee_origin == libc::SO_EE_ORIGIN_TIMESTAMPING
    || ee.ee_origin == SO_EE_ORIGIN_ZEROCOPY;
  if notice {
    Entry::Notice
  } else {
    Entry::Error(i32::try_from(ee.ee_errno).unwrap_or(libc::EIO))
  }
}

/// What one drain of the queue found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Drained {
  /// The errnos of the error entries, in queue order.
  pub errors: Vec<i32>,
  /// Entries that were not errors (discarded).
  pub notices: u64,
}

/// Reads (and so clears) up to [`MAX_ENTRIES_PER_DRAIN`] entries.
#[cfg(target_os = "linux")]
pub fn drain(fd: RawFd) -> Drained {
  let mut found = Drained::default();
  let mut data = [0u8; 64];
  // Room for the extended error with its offender address, a timestamp and pktinfo.
  let mut control = [0u8; 512];
  for _ in 0..MAX_ENTRIES_PER_DRAIN {
    let mut iov = libc::iovec { iov_base: data.as_mut_ptr().cast(), iov_len: data.len() };
    // SAFETY: msghdr is plain data; all-zero is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = control.len() as _;
    // SAFETY: `msg` points at a live iovec over `data` and at `control`, both with their true
    // lengths; the kernel writes within them (truncating the payload, which we do not need).
    let rc = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT) };
    if rc < 0 {
      break;
    }
    #[allow(clippy::unnecessary_cast)] // socklen_t on musl
    match classify(&control, msg.msg_controllen as usize) {
      Entry::Error(errno) => found.errors.push(errno),
      Entry::Notice => found.notices += 1,
    }
  }
  found
}

/// No error queue outside Linux.
#[cfg(not(target_os = "linux"))]
pub fn drain(_fd: RawFd) -> Drained {
  Drained::default()
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
  use super::*;

  fn entry(level: i32, kind: i32, errno: i32, origin: u8) -> Entry {
    // SAFETY: sock_extended_err is plain data; all-zero is valid.
    let mut ee: libc::sock_extended_err = unsafe { std::mem::zeroed() };
    ee.ee_errno = errno as u32;
    ee.ee_origin = origin;
    // SAFETY: views the live struct as its bytes, for its exact size.
    let bytes = unsafe {
      std::slice::from_raw_parts(
        &ee as *const libc::sock_extended_err as *const u8,
        std::mem::size_of::<libc::sock_extended_err>(),
      )
    };
    let mut buf = [0u8; 128];
    let n = cmsg::write(&mut buf, level, kind, bytes).unwrap_or(0);
    classify(&buf, n)
  }

  #[test]
  fn icmp_errors_of_either_family_are_errors() {
    let icmp = libc::SO_EE_ORIGIN_ICMP;
    assert_eq!(
      entry(libc::IPPROTO_IP, libc::IP_RECVERR, libc::ECONNREFUSED, icmp),
      Entry::Error(libc::ECONNREFUSED)
    );
    let icmp6 = libc::SO_EE_ORIGIN_ICMP6;
    assert_eq!(
      entry(libc::IPPROTO_IPV6, libc::IPV6_RECVERR, libc::ECONNREFUSED, icmp6),
      Entry::Error(libc::ECONNREFUSED)
    );
    let local = libc::SO_EE_ORIGIN_LOCAL;
    assert_eq!(
      entry(libc::IPPROTO_IP, libc::IP_RECVERR, libc::EMSGSIZE, local),
      Entry::Error(libc::EMSGSIZE)
    );
  }

  #[test]
  fn timestamps_and_zerocopy_completions_are_notices() {
    let ts = libc::SO_EE_ORIGIN_TIMESTAMPING;
    assert_eq!(entry(libc::IPPROTO_IP, libc::IP_RECVERR, libc::ENOMSG, ts), Entry::Notice);
    assert_eq!(entry(libc::IPPROTO_IPV6, libc::IPV6_RECVERR, libc::ENOMSG, ts), Entry::Notice);
    assert_eq!(entry(libc::IPPROTO_IP, libc::IP_RECVERR, 0, SO_EE_ORIGIN_ZEROCOPY), Entry::Notice);
    assert_eq!(
      entry(libc::IPPROTO_IP, libc::IP_RECVERR, libc::ENOMSG, libc::SO_EE_ORIGIN_NONE),
      Entry::Notice
    );
  }

  #[test]
  fn an_entry_without_a_whole_extended_error_is_eio() {
    let mut buf = [0u8; 64];
    let n = cmsg::write(&mut buf, libc::SOL_SOCKET, libc::SO_RXQ_OVFL, &[0; 4]).unwrap_or(0);
    assert_eq!(classify(&buf, n), Entry::Error(libc::EIO));
    assert_eq!(classify(&buf, 0), Entry::Error(libc::EIO));
    let n = cmsg::write(&mut buf, libc::IPPROTO_IP, libc::IP_RECVERR, &[111, 0, 0, 0]).unwrap_or(0);
    assert_eq!(classify(&buf, n), Entry::Error(libc::EIO), "cut short");
  }
}

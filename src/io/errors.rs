//! Receive errors: the socket error queue (`IP_RECVERR`) and the pending `SO_ERROR`, each
//! error reported once.

use std::os::fd::RawFd;

use super::{Delivery, Event, Shared};
use crate::error::OsError;
use crate::errqueue;
use crate::stats::Counters;

/// Drains the error queue (bounded), reporting each error entry once and counting the other
/// entries. `failed` is the errno a receive (or `SO_ERROR`) just returned: an ICMP error with
/// `IP_RECVERR` on is both queued and parked as the socket's pending error, so it is reported
/// only when no queued entry carries the same errno. Returns whether anything was reported,
/// or None when the socket was closed meanwhile.
pub(super) fn report_error_queue(
  shared: &Shared,
  sink: &mut impl FnMut(Event) -> Delivery,
  failed: Option<i32>,
  syscall: &'static str,
) -> Option<bool> {
  let found = errqueue::drain(shared.fd());
  Counters::add(&shared.counters.error_queue_notices, found.notices);
  let mut reported = false;
  if let Some(errno) = failed.filter(|e| !found.errors.contains(e)) {
    Counters::add(&shared.counters.recv_errors, 1);
    reported = true;
    if sink(Event::Error(OsError { errno, syscall })) == Delivery::Closed {
      return None;
    }
  }
  for errno in found.errors {
    Counters::add(&shared.counters.recv_errors, 1);
    reported = true;
    if sink(Event::Error(OsError { errno, syscall: "recvmsg(MSG_ERRQUEUE)" })) == Delivery::Closed {
      return None;
    }
  }
  Some(reported)
}

/// Reads and clears `SO_ERROR`.
pub(super) fn take_socket_error(fd: RawFd) -> Option<i32> {
  let mut err: libc::c_int = 0;
  let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
  // SAFETY: passes a live c_int and its size; the kernel writes at most `len` bytes.
  let rc = unsafe {
    libc::getsockopt(
      fd,
      libc::SOL_SOCKET,
      libc::SO_ERROR,
      &mut err as *mut libc::c_int as *mut libc::c_void,
      &mut len,
    )
  };
  (rc == 0 && err != 0).then_some(err)
}

//! Errors crossing to JS. Syscall failures are thrown with a reason of the form
//! `"<errno> <syscall> <detail>"`, which `lib/errors.js` turns into a Node-style error
//! (`code: 'EMSGSIZE'`, `errno`, `syscall`). Nothing here panics.

use std::io;

/// An operating-system error with the syscall that produced it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OsError {
  pub errno: i32,
  pub syscall: &'static str,
}

impl OsError {
  pub fn last(syscall: &'static str) -> Self {
    OsError { errno: io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO), syscall }
  }
  pub fn from_io(err: &io::Error, syscall: &'static str) -> Self {
    OsError { errno: err.raw_os_error().unwrap_or(libc::EIO), syscall }
  }
}

/// Converts an OS error into the napi error `lib/errors.js` decodes.
pub fn os_error(e: OsError, detail: &str) -> napi::Error {
  napi::Error::new(napi::Status::GenericFailure, format!("OSERR {} {} {}", e.errno, e.syscall, detail))
}

/// Error for an argument the JS layer should already have rejected (defence in depth).
pub fn invalid_arg(what: &str) -> napi::Error {
  napi::Error::new(napi::Status::InvalidArg, format!("ARG {what}"))
}

/// Error for use after `close()`.
pub fn closed() -> napi::Error {
  napi::Error::new(napi::Status::GenericFailure, "CLOSED socket is closed".to_string())
}

/// Returns the current thread's errno.
pub fn errno() -> i32 {
  io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO)
}

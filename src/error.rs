//! Errors crossing to JS. Every error the native layer throws is a JS `Error` whose properties
//! say what went wrong, so `lib/errors.ts` never parses a message:
//!
//! - OS error: `code: 'UDP_MMSG_OS'`, `errno` (positive), `syscall`, `detail` (may be `''`).
//! - Argument error: `code: 'UDP_MMSG_ARG'`, `argument` (`'destination'`, `'batchSize'`, ...),
//!   `index` (the table entry for `destination`/`source`, otherwise absent), `reason`.
//! - Use after close: `code: 'UDP_MMSG_CLOSED'`.
//!
//! Rust code builds a [`NativeError`] (no JS needed, so the core stays testable without Node);
//! [`NativeError::into_napi`] turns it into the JS object at the boundary. Nothing here panics.

use std::io;

use napi::bindgen_prelude::{Env, JsObjectValue, JsValue, Object};

/// `code` of an OS error thrown to JS.
pub const CODE_OS: &str = "UDP_MMSG_OS";
/// `code` of an argument error thrown to JS.
pub const CODE_ARG: &str = "UDP_MMSG_ARG";
/// `code` of the error thrown for use after `close()`.
pub const CODE_CLOSED: &str = "UDP_MMSG_CLOSED";

/// An operating-system error with the syscall that produced it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OsError {
  /// The errno (positive).
  pub errno: i32,
  /// The system call that failed.
  pub syscall: &'static str,
}

impl OsError {
  /// The current thread's errno, attributed to `syscall`.
  pub fn last(syscall: &'static str) -> Self {
    OsError { errno: errno(), syscall }
  }
  /// The errno of `err` (EIO when it has none), attributed to `syscall`.
  pub fn from_io(err: &io::Error, syscall: &'static str) -> Self {
    OsError { errno: err.raw_os_error().unwrap_or(libc::EIO), syscall }
  }
}

/// An error of the native layer, before it becomes a JS value.
#[derive(Debug)]
pub enum NativeError {
  /// A system call failed.
  Os {
    /// The errno (positive).
    errno: i32,
    /// The system call that failed.
    syscall: &'static str,
    /// What it was doing (the option, the address); may be empty.
    detail: String,
  },
  /// An argument the JS layer should already have rejected (defence in depth).
  Arg {
    /// The argument as JS names it (`destination`, `batchSize`, ...).
    argument: &'static str,
    /// The entry of the destination or source table, for those.
    index: Option<u32>,
    /// Why it was refused, as human text.
    reason: String,
  },
  /// The socket was used after `close()`.
  Closed,
  /// A failure of napi itself (converting a value, ...): thrown as napi makes it.
  Napi(napi::Error),
}

/// Result of native-layer code that may throw to JS.
pub type NResult<T> = std::result::Result<T, NativeError>;

impl From<napi::Error> for NativeError {
  fn from(e: napi::Error) -> Self {
    NativeError::Napi(e)
  }
}

impl NativeError {
  /// The human-readable message of the JS error (its properties carry the same facts).
  pub fn message(&self) -> String {
    match self {
      NativeError::Os { errno, syscall, detail } if detail.is_empty() => {
        format!("{syscall} failed: errno {errno}")
      }
      NativeError::Os { errno, syscall, detail } => format!("{syscall} failed: errno {errno} {detail}"),
      NativeError::Arg { argument, index: Some(i), reason } => format!("{argument} {i} {reason}"),
      NativeError::Arg { argument, index: None, reason } => format!("{argument} {reason}"),
      NativeError::Closed => "socket is closed".to_string(),
      NativeError::Napi(e) => e.reason.clone(),
    }
  }

  /// Builds the JS `Error` with its properties; napi throws that very object.
  pub fn into_napi(self, env: &Env) -> napi::Error {
    match self.build(env) {
      Ok(e) => e,
      Err(e) => e,
    }
  }

  fn build(self, env: &Env) -> napi::Result<napi::Error> {
    let message = self.message();
    let this = match self {
      NativeError::Napi(e) => return Ok(e),
      other => other,
    };
    let mut obj: Object = env.create_error(napi::Error::from_reason(message))?;
    match this {
      NativeError::Os { errno, syscall, detail } => {
        obj.set_named_property("code", CODE_OS)?;
        obj.set_named_property("errno", errno)?;
        obj.set_named_property("syscall", syscall)?;
        obj.set_named_property("detail", detail)?;
      }
      NativeError::Arg { argument, index, reason } => {
        obj.set_named_property("code", CODE_ARG)?;
        obj.set_named_property("argument", argument)?;
        if let Some(i) = index {
          obj.set_named_property("index", i)?;
        }
        obj.set_named_property("reason", reason)?;
      }
      NativeError::Closed => obj.set_named_property("code", CODE_CLOSED)?,
      NativeError::Napi(_) => unreachable!("returned above"),
    }
    Ok(napi::Error::from(obj.to_unknown()))
  }
}

/// An OS error with a detail (the option or address concerned; may be empty).
pub fn os_error(e: OsError, detail: &str) -> NativeError {
  NativeError::Os { errno: e.errno, syscall: e.syscall, detail: detail.to_string() }
}

/// An argument error: `argument` (as JS names it) `reason`.
pub fn invalid_arg(argument: &'static str, reason: impl Into<String>) -> NativeError {
  NativeError::Arg { argument, index: None, reason: reason.into() }
}

/// An argument error about entry `index` of the destination or source table of a send.
pub fn invalid_entry(argument: &'static str, index: usize, reason: impl Into<String>) -> NativeError {
  NativeError::Arg { argument, index: Some(index.min(u32::MAX as usize) as u32), reason: reason.into() }
}

/// Error for use after `close()`.
pub fn closed() -> NativeError {
  NativeError::Closed
}

/// Returns the current thread's errno.
pub fn errno() -> i32 {
  io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO)
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn messages_name_the_facts() {
    assert_eq!(
      os_error(OsError { errno: 98, syscall: "bind" }, "0.0.0.0:1").message(),
      "bind failed: errno 98 0.0.0.0:1"
    );
    assert_eq!(os_error(OsError { errno: 9, syscall: "eventfd" }, "").message(), "eventfd failed: errno 9");
    assert_eq!(
      invalid_entry("destination", 3, "has an unknown IPv6 scope").message(),
      "destination 3 has an unknown IPv6 scope"
    );
    assert_eq!(invalid_arg("batchSize", "must be 1..1024").message(), "batchSize must be 1..1024");
    assert_eq!(closed().message(), "socket is closed");
  }
}

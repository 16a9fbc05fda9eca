//! `sendOneFast(key, data, address, port)`: the send of one datagram (a server's answer to one
//! query), called as a plain N-API function instead of a napi-rs class method. The class
//! method's wrapper cost ~3 µs of a request/response server's ~55 µs per query (`perf`,
//! loopback): unwrapping `this` and checking its type tag, napi-rs's bookkeeping of native
//! borrows, and a `String` allocated for the address. Here the socket is found by its key (see
//! `keys`), and the address is read into a buffer on the stack.
//!
//! The N-API function is registered with the other plain functions (`keyed::register`), which
//! unit-test builds leave out, hence the `dead_code` allowance under test.
#![cfg_attr(test, allow(dead_code))]

use std::borrow::Cow;
use std::ffi::c_char;
use std::ptr::null_mut;

use napi::bindgen_prelude::FromNapiValue;
use napi::sys;
use napi_derive::napi;

use super::send::send_one_to;
use super::{keyed, keys, NativeSocket};
use crate::error::{closed, invalid_arg, NResult, NativeError};

#[napi]
impl NativeSocket {
  /// The key `sendOneFast` finds this socket by (the constructor hands it over too, in its
  /// options array), or -1 when the socket is closed or the thread's table is full (then use
  /// `sendOne`).
  #[napi]
  pub fn send_key(&self) -> i64 {
    if let Some(k) = self.send_key.get() {
      return i64::from(k);
    }
    if self.inner.is_closed() {
      return -1;
    }
    let key =
      keys::insert(keys::Keyed { slot: self.inner.clone(), shared: self.shared.clone(), claimed: true });
    self.send_key.set(key);
    key.map_or(-1, i64::from)
  }
}

/// `sendOneFast(key, data, address, port)`: as `sendOne(data, address, port)` on the socket
/// `key` names. Returns 1 or 0; throws the errors `sendOne` throws.
// SAFETY (contract): N-API calls it on the JS thread with a live env and callback info.
pub(super) unsafe extern "C" fn send_one_fast(
  env: sys::napi_env,
  info: sys::napi_callback_info,
) -> sys::napi_value {
  // SAFETY: per the contract.
  let Some(argv) = (unsafe { keyed::args::<4>(env, info) }) else { return null_mut() };
  let mut address = [0u8; 64];
  // SAFETY: the values come from this call's arguments (missing ones read as undefined).
  let r = unsafe { send_args(env, &argv, &mut address) };
  // SAFETY: per the contract.
  unsafe { keyed::finish(env, r) }
}

/// Reads the arguments and sends.
///
/// # Safety
/// On the JS thread of `env`, with `argv` this call's arguments.
unsafe fn send_args(env: sys::napi_env, argv: &[sys::napi_value; 4], buf: &mut [u8; 64]) -> NResult<u32> {
  // SAFETY: (all three) values of this call, converted on its thread.
  let key = unsafe { u32::from_napi_value(env, argv[0]) }.map_err(NativeError::Napi)?;
  // SAFETY: as above; the slice lives while the call does (JS cannot run meanwhile).
  let data = unsafe { <&[u8]>::from_napi_value(env, argv[1]) }.map_err(NativeError::Napi)?;
  // SAFETY: as above.
  let port = unsafe { u32::from_napi_value(env, argv[3]) }.map_err(NativeError::Napi)?;
  // SAFETY: as above.
  let address = unsafe { read_address(env, argv[2], buf) }?;
  let slot = keys::slot(key).ok_or_else(closed)?;
  slot.with(|o| send_one_to(o, data, address.as_deref(), port)).unwrap_or_else(|| Err(closed()))
}

/// The address argument: None for null or undefined (the connected peer), else its text, read
/// into `buf` when it fits (every IP address does).
///
/// # Safety
/// On the JS thread of `env`; `v` a value of the current call.
pub(super) unsafe fn read_address<'a>(
  env: sys::napi_env,
  v: sys::napi_value,
  buf: &'a mut [u8; 64],
) -> NResult<Option<Cow<'a, str>>> {
  let mut kind = 0;
  // SAFETY: per the contract.
  unsafe { sys::napi_typeof(env, v, &mut kind) };
  if kind == sys::ValueType::napi_null || kind == sys::ValueType::napi_undefined {
    return Ok(None);
  }
  if kind != sys::ValueType::napi_string {
    return Err(invalid_arg("address", "must be a string or null"));
  }
  let mut len = 0usize;
  // SAFETY: writes at most `buf.len()` bytes (NUL included) into `buf`.
  unsafe { sys::napi_get_value_string_utf8(env, v, buf.as_mut_ptr() as *mut c_char, buf.len(), &mut len) };
  if len + 1 < buf.len() {
    let text = std::str::from_utf8(&buf[..len]).map_err(|_| invalid_arg("address", "is not valid text"))?;
    return Ok(Some(Cow::Borrowed(text)));
  }
  // Longer than any IP address: read it whole (the send then refuses it by name).
  // SAFETY: with a null buffer, N-API reports the length only.
  unsafe { sys::napi_get_value_string_utf8(env, v, null_mut(), 0, &mut len) };
  let mut long = vec![0u8; len + 1];
  // SAFETY: `long` has room for the text and its NUL.
  unsafe { sys::napi_get_value_string_utf8(env, v, long.as_mut_ptr() as *mut c_char, long.len(), &mut len) };
  long.truncate(len);
  String::from_utf8(long)
    .map(|s| Some(Cow::Owned(s)))
    .map_err(|_| invalid_arg("address", "is not valid text"))
}

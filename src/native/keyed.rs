//! Opening and closing a socket as plain N-API functions, the socket named by its key (see
//! `keys`): `openSocket(address, options, connectAddress, steering, dispatch)` returns the key,
//! `closeSocket(key, out)` closes it, `setReading(key, on)` starts or pauses its reading (what
//! a socket that receives needs besides). A napi-rs class object costs, per socket, its wrap (a
//! reference, a type tag, napi-rs's reference map) and, at close, its unwrap and borrow
//! bookkeeping, plus the weak handle the garbage collector processes later: ~13 % of a
//! socket-per-request program's time per socket (`perf`, create + bind + close). The class
//! object (`NativeSocket.fromKey(key)`, in `mod.rs`) is made only when JS first needs another method of it
//! (`lib/native.ts`), which most short-lived sockets never do.
//!
//! Ownership: the thread's key table holds the socket from `openSocket` until `closeSocket`
//! (or the environment's teardown, which closes every socket JS left open). Once a class object
//! owns it, that object's rules apply as well: closed when it is garbage-collected, which is
//! how an unreferenced socket JS dropped is closed (JS makes the class object when it unrefs a
//! socket).
//!
//! The functions are registered on the module's exports here with `sendOneFast`; unit-test
//! builds leave that out, hence the `dead_code` allowance under test.
#![cfg_attr(test, allow(dead_code))]

use std::ptr::null_mut;

use napi::bindgen_prelude::*;
use napi::sys;
use napi_derive::napi;

use super::keys::{self, Keyed};
use super::{close_slot, open, packed_options, send_fast, stats};
use crate::error::{closed, os_error, NResult, NativeError, OsError};
use crate::steering::SteeringOptions;

/// Adds the plain functions to the module's exports: `openSocket`, `closeSocket`,
/// `setReading`, `sendOneFast`.
#[napi(module_exports)]
pub fn register(mut exports: Object, env: Env) -> Result<()> {
  add(&mut exports, &env, c"openSocket", open_socket)?;
  add(&mut exports, &env, c"closeSocket", close_socket)?;
  add(&mut exports, &env, c"setReading", set_reading)?;
  add(&mut exports, &env, c"sendOneFast", send_fast::send_one_fast)
}

type Callback = unsafe extern "C" fn(sys::napi_env, sys::napi_callback_info) -> sys::napi_value;

/// Exports `f` as `name`.
fn add(exports: &mut Object, env: &Env, name: &std::ffi::CStr, f: Callback) -> Result<()> {
  let mut v = null_mut();
  // SAFETY: creates a function on this env's thread; the callback matches N-API's signature.
  let status = unsafe {
    sys::napi_create_function(
      env.raw(),
      name.as_ptr(),
      name.count_bytes() as isize,
      Some(f),
      null_mut(),
      &mut v,
    )
  };
  if status != sys::Status::napi_ok {
    return Err(napi::Error::from_reason(format!("napi_create_function({}) failed", name.to_string_lossy())));
  }
  let key = name.to_str().map_err(|_| napi::Error::from_reason("export name"))?;
  // SAFETY: `v` is the function just made on this env.
  exports.set_named_property(key, unsafe { Unknown::from_raw_unchecked(env.raw(), v) })
}

/// The call's first `N` arguments (missing ones read as undefined), or None.
///
/// # Safety
/// On the JS thread of `env`, inside the call `info` describes.
pub(super) unsafe fn args<const N: usize>(
  env: sys::napi_env,
  info: sys::napi_callback_info,
) -> Option<[sys::napi_value; N]> {
  let mut argc = N;
  let mut argv = [null_mut(); N];
  // SAFETY: `argv` has room for `argc` values.
  let status =
    unsafe { sys::napi_get_cb_info(env, info, &mut argc, argv.as_mut_ptr(), null_mut(), null_mut()) };
  (status == sys::Status::napi_ok).then_some(argv)
}

/// Returns `r`'s number to JS, or throws its error (the structured errors of `crate::error`).
///
/// # Safety
/// On the JS thread of `env`, inside a call from JS.
pub(super) unsafe fn finish(env: sys::napi_env, r: NResult<u32>) -> sys::napi_value {
  match r {
    Ok(n) => {
      let mut v = null_mut();
      // SAFETY: a number on this env.
      unsafe { sys::napi_create_uint32(env, n, &mut v) };
      v
    }
    Err(e) => {
      let err = e.into_napi(&Env::from(env));
      // SAFETY: on this env's thread, inside a call from JS.
      unsafe { napi::JsError::from(err).throw_into(env) };
      null_mut()
    }
  }
}

/// Runs `f` on the call's first `N` arguments, then returns its number or throws its error.
///
/// # Safety
/// On the JS thread of `env`, inside the call `info` describes; `f` must need no more.
unsafe fn call<const N: usize>(
  env: sys::napi_env,
  info: sys::napi_callback_info,
  f: unsafe fn(sys::napi_env, &[sys::napi_value; N]) -> NResult<u32>,
) -> sys::napi_value {
  // SAFETY: per this function's contract.
  let Some(argv) = (unsafe { args::<N>(env, info) }) else { return null_mut() };
  // SAFETY: the values are this call's arguments, read on its thread.
  let r = unsafe { f(env, &argv) };
  // SAFETY: per this function's contract.
  unsafe { finish(env, r) }
}

/// `openSocket(address, options, connectAddress, steering, dispatch)`: opens a socket as the
/// `NativeSocket` constructor does (same arguments, same errors) and returns its key.
// SAFETY (contract): N-API calls it on the JS thread with a live env and callback info.
unsafe extern "C" fn open_socket(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
  // SAFETY: per the contract; `open_args` reads this call's arguments on its thread.
  unsafe { call(env, info, open_args) }
}

/// Reads `openSocket`'s arguments, opens the socket and gives it a key.
///
/// # Safety
/// On the JS thread of `env`, with `argv` this call's arguments.
unsafe fn open_args(env: sys::napi_env, argv: &[sys::napi_value; 5]) -> NResult<u32> {
  let napi = NativeError::Napi;
  // SAFETY: (each) a value of this call, converted on its thread; the array is read before any
  // JS can run.
  let address = unsafe { String::from_napi_value(env, argv[0]) }.map_err(napi)?;
  // SAFETY: as above.
  let options = unsafe { Float64ArraySlice::from_napi_value(env, argv[1]) }.map_err(napi)?;
  // SAFETY: as above.
  let connect = unsafe { Option::<String>::from_napi_value(env, argv[2]) }.map_err(napi)?;
  // SAFETY: as above.
  let steering = unsafe { Option::<SteeringOptions>::from_napi_value(env, argv[3]) }.map_err(napi)?;
  // SAFETY: as above.
  let dispatch = unsafe { Function::<(), ()>::from_napi_value(env, argv[4]) }.map_err(napi)?;
  let o = packed_options::unpack(address, options.as_ref(), connect, steering)?;
  let (slot, shared) = open(&Env::from(env), o, &dispatch)?;
  keys::insert(Keyed { slot: slot.clone(), shared, claimed: false }).ok_or_else(|| {
    slot.close();
    os_error(
      OsError { errno: libc::EMFILE, syscall: "socket" },
      "udp-mmsg's table of this thread's sockets is full",
    )
  })
}

/// `closeSocket(key, out)`: closes the socket `key` names (idempotent: a closed socket's key
/// does nothing) and writes its final counters into the Float64Array `out`, in the order of
/// `statsSlots()`. Returns how many it wrote: 0 when the key named no open socket.
// SAFETY (contract): N-API calls it on the JS thread with a live env and callback info.
unsafe extern "C" fn close_socket(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
  // SAFETY: per the contract; `close_args` reads this call's arguments on its thread.
  unsafe { call(env, info, close_args) }
}

/// Reads `closeSocket`'s arguments and closes.
///
/// # Safety
/// On the JS thread of `env`, with `argv` this call's arguments.
unsafe fn close_args(env: sys::napi_env, argv: &[sys::napi_value; 2]) -> NResult<u32> {
  // SAFETY: a value of this call, converted on its thread.
  let key = unsafe { u32::from_napi_value(env, argv[0]) }.map_err(NativeError::Napi)?;
  // SAFETY: as above; JS cannot run while this call writes the array.
  let mut out = unsafe { Float64ArraySlice::from_napi_value(env, argv[1]) }.map_err(NativeError::Napi)?;
  let Some(Keyed { slot, shared, .. }) = keys::take(key) else { return Ok(0) };
  close_slot(&slot);
  let counts = stats::final_slots(&shared.counters);
  // SAFETY: JS cannot run during this call, so nothing else touches the array meanwhile.
  let dst = unsafe { out.as_mut() };
  let n = counts.len().min(dst.len());
  dst[..n].copy_from_slice(&counts[..n]);
  Ok(n as u32)
}

/// `setReading(key, on)`: as the class's `setReading(on)` on the socket `key` names; throws the
/// closed-socket error for a key no open socket has. Returns 0.
// SAFETY (contract): N-API calls it on the JS thread with a live env and callback info.
unsafe extern "C" fn set_reading(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
  // SAFETY: per the contract; `reading_args` reads this call's arguments on its thread.
  unsafe { call(env, info, reading_args) }
}

/// Reads `setReading`'s arguments and applies them.
///
/// # Safety
/// On the JS thread of `env`, with `argv` this call's arguments.
unsafe fn reading_args(env: sys::napi_env, argv: &[sys::napi_value; 2]) -> NResult<u32> {
  // SAFETY: a value of this call, converted on its thread.
  let key = unsafe { u32::from_napi_value(env, argv[0]) }.map_err(NativeError::Napi)?;
  // SAFETY: as above.
  let on = unsafe { bool::from_napi_value(env, argv[1]) }.map_err(NativeError::Napi)?;
  let slot = keys::slot(key).ok_or_else(closed)?;
  slot.with(|o| o.set_reading(on)).ok_or_else(closed)?;
  Ok(0)
}

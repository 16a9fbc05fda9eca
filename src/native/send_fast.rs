//! `sendOneFast(key, data, address, port)`: the send of one datagram (a server's answer to one
//! query), called as a plain N-API function instead of a napi-rs class method. The class
//! method's wrapper cost ~3 µs of a request/response server's ~55 µs per query (`perf`,
//! loopback): unwrapping `this` and checking its type tag, napi-rs's bookkeeping of native
//! borrows, and a `String` allocated for the address. Here the socket is found by a number
//! (`sendKey()`, which the constructor also writes into its options array) in a per-thread
//! table, and the address is read into a buffer on the stack.
//!
//! The table holds a socket's slot (the same one its class holds) from its construction until
//! it closes, and a key names one slot and its generation: a key of a closed socket is refused
//! (the closed-socket error) even when another socket reuses its place. A key is only a
//! number, never a pointer, so a wrong one is refused, not followed. Each thread (worker) has
//! its own table; a key from another thread is not found there.
//!
//! The N-API function is registered by `#[napi(module_exports)]`, which unit-test builds leave
//! out, hence the `dead_code` allowance under test.
#![cfg_attr(test, allow(dead_code))]

use std::borrow::Cow;
use std::cell::RefCell;
use std::ffi::c_char;
use std::ptr::null_mut;

use napi::bindgen_prelude::{Env, FromNapiValue, JsObjectValue, Object, Result, Unknown};
use napi::sys;
use napi_derive::napi;

use super::send::send_one_to;
use super::{NativeSocket, Open};
use crate::cleanup::Slot;
use crate::error::{closed, invalid_arg, NResult, NativeError};

/// Bits of a key that give the table index; the rest is the slot's generation.
const INDEX_BITS: u32 = 20;
const INDEX_MASK: u32 = (1 << INDEX_BITS) - 1;
const GENERATIONS: u32 = 1 << (32 - INDEX_BITS);

struct Entry<T> {
  generation: u32,
  slot: Option<T>,
}

/// The sockets of one thread by key (generic only so it is unit-tested without sockets).
struct Table<T> {
  entries: Vec<Entry<T>>,
  free: Vec<u32>,
}

impl<T: Clone> Table<T> {
  const fn new() -> Self {
    Table { entries: Vec::new(), free: Vec::new() }
  }

  /// A key for `slot`; None when the table is full (the caller then sends the usual way).
  fn insert(&mut self, slot: T) -> Option<u32> {
    let index = match self.free.pop() {
      Some(i) => i,
      None => {
        let i = u32::try_from(self.entries.len()).ok().filter(|i| *i <= INDEX_MASK)?;
        self.entries.push(Entry { generation: 0, slot: None });
        i
      }
    };
    let e = &mut self.entries[index as usize];
    e.slot = Some(slot);
    Some(index | (e.generation << INDEX_BITS))
  }

  fn get(&self, key: u32) -> Option<T> {
    let e = self.entries.get((key & INDEX_MASK) as usize)?;
    if e.generation == key >> INDEX_BITS {
      e.slot.clone()
    } else {
      None
    }
  }

  fn remove(&mut self, key: u32) {
    let index = key & INDEX_MASK;
    if let Some(e) = self.entries.get_mut(index as usize) {
      if e.generation == key >> INDEX_BITS && e.slot.take().is_some() {
        e.generation = (e.generation + 1) % GENERATIONS;
        self.free.push(index);
      }
    }
  }
}

thread_local! {
  static TABLE: RefCell<Table<Slot<Open>>> = const { RefCell::new(Table::new()) };
}

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
    let key = TABLE.try_with(|t| t.try_borrow_mut().ok()?.insert(self.inner.clone())).ok().flatten();
    self.send_key.set(key);
    key.map_or(-1, i64::from)
  }
}

/// Takes a closing socket out of the table (its key is refused from now on).
pub(super) fn forget(key: Option<u32>) {
  if let Some(k) = key {
    let _ = TABLE.try_with(|t| {
      if let Ok(mut t) = t.try_borrow_mut() {
        t.remove(k);
      }
    });
  }
}

/// Adds `sendOneFast` to the module's exports.
#[napi(module_exports)]
pub fn register_send_fast(mut exports: Object, env: Env) -> Result<()> {
  let mut f = null_mut();
  let name = c"sendOneFast";
  // SAFETY: creates a function on this env's thread; the callback matches N-API's signature.
  let status = unsafe {
    sys::napi_create_function(
      env.raw(),
      name.as_ptr(),
      name.count_bytes() as isize,
      Some(send_one_fast),
      null_mut(),
      &mut f,
    )
  };
  if status != sys::Status::napi_ok {
    return Err(napi::Error::from_reason("napi_create_function(sendOneFast) failed"));
  }
  // SAFETY: `f` is the function just made on this env.
  exports.set_named_property("sendOneFast", unsafe { Unknown::from_raw_unchecked(env.raw(), f) })
}

/// `sendOneFast(key, data, address, port)`: as `sendOne(data, address, port)` on the socket
/// `key` names. Returns 1 or 0; throws the errors `sendOne` throws.
// SAFETY (contract): N-API calls it on the JS thread with a live env and callback info.
unsafe extern "C" fn send_one_fast(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
  let mut argc = 4usize;
  let mut argv = [null_mut(); 4];
  // SAFETY: `argv` has room for `argc` values.
  let status =
    unsafe { sys::napi_get_cb_info(env, info, &mut argc, argv.as_mut_ptr(), null_mut(), null_mut()) };
  if status != sys::Status::napi_ok {
    return null_mut();
  }
  let mut address = [0u8; 64];
  // SAFETY: the values come from this call's arguments (missing ones read as undefined).
  match unsafe { send_args(env, &argv, &mut address) } {
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
  let slot = TABLE.try_with(|t| t.try_borrow().ok()?.get(key)).ok().flatten().ok_or_else(closed)?;
  slot.with(|o| send_one_to(o, data, address.as_deref(), port)).unwrap_or_else(|| Err(closed()))
}

/// The address argument: None for null or undefined (the connected peer), else its text, read
/// into `buf` when it fits (every IP address does).
///
/// # Safety
/// On the JS thread of `env`; `v` a value of the current call.
unsafe fn read_address<'a>(
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

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn keys_are_refused_once_removed_even_when_the_place_is_reused() {
    let mut t = Table::new();
    let a = t.insert(1).expect("room");
    assert!(t.get(a).is_some());
    t.remove(a);
    assert!(t.get(a).is_none(), "removed");
    let b = t.insert(2).expect("room");
    assert_eq!(b & INDEX_MASK, a & INDEX_MASK, "the place is reused");
    assert_ne!(a, b);
    assert!(t.get(a).is_none(), "the old key stays refused");
    assert_eq!(t.get(b), Some(2));
    t.remove(a); // a stale key removes nothing
    assert_eq!(t.get(b), Some(2));
    assert!(t.get(u32::MAX).is_none());
  }
}

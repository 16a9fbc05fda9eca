//! A landing buffer per environment for small batches. A batch of a few datagrams (a query, a
//! ping) used to reach JS as a new V8-owned copy (`napi_create_buffer_copy`: a backing store,
//! an `ArrayBuffer`, a `Uint8Array` given `Buffer`'s prototype), ~3 µs of a request/response
//! server's ~50 µs per query under `perf`. Now its bytes are copied into one `Uint8Array` the
//! environment keeps, and the dispatch function copies them out at once into a `Buffer` from
//! Node's pool (`Buffer.allocUnsafe`, ~0.1 µs for a query), before any handler runs: the
//! landing buffer never reaches user code, and the next batch can overwrite it.
//!
//! Made on first use in each environment (the main thread's, each worker's), released by an
//! environment cleanup hook.

use std::cell::RefCell;
use std::ffi::c_void;
use std::ptr::null_mut;

use napi::sys;

/// Bytes of the landing buffer: batches up to this size land there.
pub const LANDING_BYTES: usize = 16 * 1024;

struct Landing {
  env: sys::napi_env,
  reference: sys::napi_ref,
  data: *mut u8,
}

thread_local! {
  static LANDINGS: RefCell<Vec<Landing>> = const { RefCell::new(Vec::new()) };
}

/// Copies `bytes` into `env`'s landing buffer (made on first use) and returns that buffer;
/// None when `bytes` is larger or N-API failed (the caller then hands over a copy of its own).
///
/// # Safety
/// On `env`'s JS thread, inside an open handle scope.
pub unsafe fn land(env: sys::napi_env, bytes: &[u8]) -> Option<sys::napi_value> {
  if bytes.len() > LANDING_BYTES {
    return None;
  }
  let found =
    LANDINGS.try_with(|l| l.borrow().iter().find(|x| x.env == env).map(|x| (x.reference, x.data))).ok()?;
  let (reference, data) = match found {
    Some(f) => f,
    // SAFETY: the caller's contract.
    None => unsafe { make(env) }?,
  };
  let mut value = null_mut();
  // SAFETY: a strong reference this module made on `env`; the value lives in the caller's scope.
  if unsafe { sys::napi_get_reference_value(env, reference, &mut value) } != sys::Status::napi_ok
    || value.is_null()
  {
    return None;
  }
  // SAFETY: `data` is the landing buffer's backing store, LANDING_BYTES long and kept alive by
  // the strong reference (no code detaches it: only the dispatch function sees it).
  unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), data, bytes.len()) };
  Some(value)
}

/// Makes `env`'s landing buffer and registers its release.
///
/// # Safety
/// As `land`.
unsafe fn make(env: sys::napi_env) -> Option<(sys::napi_ref, *mut u8)> {
  let ok = |s: sys::napi_status| (s == sys::Status::napi_ok).then_some(());
  let mut data = null_mut();
  let mut buffer = null_mut();
  let mut view = null_mut();
  let mut reference = null_mut();
  // SAFETY: (all calls) on `env`'s thread; every out-pointer is a live local.
  unsafe {
    ok(sys::napi_create_arraybuffer(env, LANDING_BYTES, &mut data, &mut buffer))?;
    ok(sys::napi_create_typedarray(
      env,
      sys::TypedarrayType::uint8_array,
      LANDING_BYTES,
      buffer,
      0,
      &mut view,
    ))?;
    ok(sys::napi_create_reference(env, view, 1, &mut reference))?;
    if sys::napi_add_env_cleanup_hook(env, Some(release), env.cast()) != sys::Status::napi_ok {
      sys::napi_delete_reference(env, reference);
      return None;
    }
  }
  let data = data.cast::<u8>();
  LANDINGS.try_with(|l| l.borrow_mut().push(Landing { env, reference, data })).ok()?;
  Some((reference, data))
}

// SAFETY (contract): Node calls it once, on the environment's thread, as it tears down.
unsafe extern "C" fn release(arg: *mut c_void) {
  let env = arg as sys::napi_env;
  let gone = LANDINGS
    .try_with(|l| {
      let mut l = l.borrow_mut();
      let at = l.iter().position(|x| x.env == env)?;
      Some(l.swap_remove(at))
    })
    .ok()
    .flatten();
  if let Some(x) = gone {
    // SAFETY: the reference was made on `env`, which is still alive during its cleanup hooks.
    unsafe { sys::napi_delete_reference(env, x.reference) };
  }
}

//! One async environment-cleanup hook per environment (the main thread's, each worker's) for
//! all the watchers opened on it, instead of one per watcher: registering a hook with Node
//! (`napi_add_async_cleanup_hook`: a hash-set insert and four allocations in Node) was about
//! a microsecond of every socket's creation. When the environment tears down (a worker exits
//! with sockets still open), every watcher still registered is told to close, and the hook is
//! completed once the last of them has closed its handles, so the environment waits for their
//! close callbacks before it closes its loop, as it did for the per-watcher hooks.
//!
//! Each environment runs on one thread, so the registry is per thread (an environment's entry
//! is keyed by its `napi_env`; a thread normally hosts one).

use std::cell::RefCell;
use std::collections::HashSet;
use std::ffi::c_void;
use std::ptr::null_mut;

use napi::sys;

/// Closes one registered item (a watcher) because its environment tears down.
pub(super) type Close = unsafe fn(*mut c_void);

struct EnvEntry {
  env: sys::napi_env,
  hook: sys::napi_async_cleanup_hook_handle,
  close: Close,
  live: HashSet<usize>,
  tearing_down: bool,
}

thread_local! {
  static ENVS: RefCell<Vec<EnvEntry>> = const { RefCell::new(Vec::new()) };
}

/// Tracks `item` until `unregister`; `close` is called on it if `env` tears down first.
/// Registers the environment's hook on first use. Returns false when the item is not tracked
/// (the hook could not be registered, or the environment is already tearing down).
///
/// # Safety
/// Call on `env`'s JS thread; `item` stays valid until `unregister(env, item)`, and `close`
/// may be called on it until then.
pub(super) unsafe fn register(env: sys::napi_env, item: *mut c_void, close: Close) -> bool {
  ENVS
    .try_with(|cell| {
      let Ok(mut envs) = cell.try_borrow_mut() else { return false };
      if let Some(e) = envs.iter_mut().find(|e| e.env == env) {
        return !e.tearing_down && e.live.insert(item as usize);
      }
      let mut hook = null_mut();
      // SAFETY: on `env`'s thread; the data is the env itself, looked up again when called.
      let status =
        unsafe { sys::napi_add_async_cleanup_hook(env, Some(on_env_teardown), env.cast(), &mut hook) };
      if status != sys::Status::napi_ok {
        return false;
      }
      let mut live = HashSet::new();
      live.insert(item as usize);
      envs.push(EnvEntry { env, hook, close, live, tearing_down: false });
      true
    })
    .unwrap_or(false)
}

/// Stops tracking `item` (its handles are all closed). Completes the environment's hook when
/// this was the last item of an environment that is tearing down.
pub(super) fn unregister(env: sys::napi_env, item: *mut c_void) {
  let done = ENVS
    .try_with(|cell| {
      let mut envs = cell.try_borrow_mut().ok()?;
      let at = envs.iter().position(|e| e.env == env)?;
      let e = &mut envs[at];
      e.live.remove(&(item as usize));
      if e.tearing_down && e.live.is_empty() {
        Some(envs.swap_remove(at).hook)
      } else {
        None
      }
    })
    .ok()
    .flatten();
  if let Some(hook) = done {
    // SAFETY: the hook this registry registered for `env`, completed once (its entry is gone).
    unsafe { sys::napi_remove_async_cleanup_hook(hook) };
  }
}

// SAFETY (contract): N-API calls it once, on the environment's thread, with the env as data.
unsafe extern "C" fn on_env_teardown(_hook: sys::napi_async_cleanup_hook_handle, data: *mut c_void) {
  let env = data as sys::napi_env;
  // The items are taken out of the registry's borrow before any is closed: closing runs the
  // owner's teardown, which must be free to reach the registry.
  let found = ENVS
    .try_with(|cell| {
      let mut envs = cell.try_borrow_mut().ok()?;
      let e = envs.iter_mut().find(|e| e.env == env)?;
      e.tearing_down = true;
      Some((e.live.iter().copied().collect::<Vec<_>>(), e.close))
    })
    .ok()
    .flatten();
  let Some((items, close)) = found else { return };
  for item in items {
    // SAFETY: registered items stay valid until they unregister, which happens in a handle
    // close callback (never during this call).
    unsafe { close(item as *mut c_void) };
  }
  // Nothing was open (or nothing is left): complete the hook now.
  unregister(env, null_mut());
}

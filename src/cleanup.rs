//! Environment cleanup hooks: when a worker thread (or the process) tears down its Node
//! environment, sockets JS never closed are shut down (I/O thread joined, fd closed).
//!
//! Registered through the raw N-API call so that the socket owns the hook's data and frees it
//! when it closes; napi-rs's `Env::add_env_cleanup_hook` leaks that data (232 bytes per socket
//! here, found by the valgrind leak test).

use std::cell::RefCell;
use std::ffi::c_void;
use std::rc::Rc;

use napi::sys;

/// Something a cleanup hook can shut down.
pub trait Shutdown {
  /// Releases the resources (idempotent through the `Option` it lives in).
  fn shutdown(&mut self);
}

/// The slot a socket and its hook share: `None` once closed.
pub type Slot<T> = Rc<RefCell<Option<T>>>;

/// A registered hook; [`CleanupHook::remove`] must be called (on the JS thread) to free it.
pub struct CleanupHook<T: Shutdown> {
  env: sys::napi_env,
  data: *mut Slot<T>,
}

impl<T: Shutdown> CleanupHook<T> {
  /// Registers a hook that takes `slot`'s value and shuts it down. None if N-API refused.
  pub fn register(env: &napi::Env, slot: Slot<T>) -> Option<Self> {
    let env = env.raw();
    let data = Box::into_raw(Box::new(slot));
    // SAFETY: `env` is the live environment of the calling JS thread; `data` stays valid until
    // `remove` (it is only freed there, after the hook is unregistered).
    let status = unsafe { sys::napi_add_env_cleanup_hook(env, Some(Self::run), data.cast()) };
    if status == sys::Status::napi_ok {
      Some(CleanupHook { env, data })
    } else {
      // SAFETY: `data` came from Box::into_raw above and was not registered.
      drop(unsafe { Box::from_raw(data) });
      None
    }
  }

  // SAFETY: only N-API calls this, with the `data` pointer given at registration.
  unsafe extern "C" fn run(arg: *mut c_void) {
    // SAFETY: `arg` is the `data` pointer registered above; it is freed only after the hook is
    // removed, and N-API calls hooks on the JS thread that owns the socket.
    let slot = unsafe { &*(arg as *const Slot<T>) };
    let taken = slot.try_borrow_mut().ok().and_then(|mut g| g.take());
    if let Some(mut value) = taken {
      value.shutdown();
    }
  }

  /// Unregisters the hook (harmless if it already ran) and frees its data.
  pub fn remove(self) {
    // SAFETY: same env, function and argument as registered; called on the JS thread.
    unsafe { sys::napi_remove_env_cleanup_hook(self.env, Some(Self::run), self.data.cast()) };
    // SAFETY: `data` came from Box::into_raw in `register`, and with the hook removed nothing
    // else refers to it.
    drop(unsafe { Box::from_raw(self.data) });
  }
}

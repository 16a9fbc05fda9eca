//! The few libuv calls the sockets need, resolved at run time from the Node process that
//! loaded the addon (Node exports its libuv; `dlsym(RTLD_DEFAULT, ...)` finds it), so that the
//! crate links without libuv and its unit tests run without Node.
//!
//! Handles are allocated with the size libuv reports (`uv_handle_size`), never with a struct
//! layout written here, and are freed by their close callback.

use std::ffi::{c_int, c_void, CStr};
use std::sync::OnceLock;

/// `uv_loop_t`, opaque.
pub type Loop = napi::sys::uv_loop_s;
/// Any `uv_handle_t`, opaque.
#[repr(C)]
pub struct Handle {
  _opaque: [u8; 0],
}

/// `UV_READABLE` of `uv_poll_event`.
pub const READABLE: c_int = 1;
/// `UV_WRITABLE` of `uv_poll_event`.
pub const WRITABLE: c_int = 2;
/// `UV_PRIORITIZED` of `uv_poll_event` (`POLLPRI`, which a UDP socket never raises): watching
/// only for it still reports `POLLERR`, which epoll always does.
pub const PRIORITIZED: c_int = 4;
/// `uv_handle_type` values (stable across libuv 1.x).
const UV_ASYNC: c_int = 1;
const UV_POLL: c_int = 8;
const UV_PREPARE: c_int = 9;
const UV_TIMER: c_int = 13;

/// Poll callback: `(handle, status, events)`; status < 0 when the fd reported an error.
pub type PollCb = unsafe extern "C" fn(*mut Handle, c_int, c_int);
/// Timer and async callback.
pub type HandleCb = unsafe extern "C" fn(*mut Handle);

/// The libuv entry points, found once.
pub struct Api {
  handle_size: unsafe extern "C" fn(c_int) -> usize,
  poll_init: unsafe extern "C" fn(*mut Loop, *mut Handle, c_int) -> c_int,
  /// `uv_poll_start(handle, events, cb)`.
  pub poll_start: unsafe extern "C" fn(*mut Handle, c_int, PollCb) -> c_int,
  /// `uv_poll_stop(handle)`.
  pub poll_stop: unsafe extern "C" fn(*mut Handle) -> c_int,
  timer_init: unsafe extern "C" fn(*mut Loop, *mut Handle) -> c_int,
  /// `uv_timer_start(handle, cb, timeout_ms, repeat_ms)`.
  pub timer_start: unsafe extern "C" fn(*mut Handle, HandleCb, u64, u64) -> c_int,
  /// `uv_timer_stop(handle)`.
  pub timer_stop: unsafe extern "C" fn(*mut Handle) -> c_int,
  async_init: unsafe extern "C" fn(*mut Loop, *mut Handle, HandleCb) -> c_int,
  prepare_init: unsafe extern "C" fn(*mut Loop, *mut Handle) -> c_int,
  /// `uv_prepare_start(handle, cb)`.
  pub prepare_start: unsafe extern "C" fn(*mut Handle, HandleCb) -> c_int,
  /// `uv_prepare_stop(handle)`.
  pub prepare_stop: unsafe extern "C" fn(*mut Handle) -> c_int,
  close: unsafe extern "C" fn(*mut Handle, HandleCb),
  /// `uv_ref(handle)`.
  pub ref_: unsafe extern "C" fn(*mut Handle),
  /// `uv_unref(handle)`.
  pub unref: unsafe extern "C" fn(*mut Handle),
  set_data: unsafe extern "C" fn(*mut Handle, *mut c_void),
  get_data: unsafe extern "C" fn(*const Handle) -> *mut c_void,
}

/// Looks `name` up among the process's global symbols.
fn sym(name: &CStr) -> Option<*mut c_void> {
  // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name only reads the symbol tables.
  let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
  (!p.is_null()).then_some(p)
}

macro_rules! load {
  ($($field:ident = $name:literal),* $(,)?) => {
    #[allow(clippy::missing_transmute_annotations)] // each target type is the field's type
    Some(Api {
      // SAFETY: each symbol is libuv's function of that name, whose C signature (libuv 1.x,
      // ABI-stable) is the field's type.
      $($field: unsafe { std::mem::transmute::<*mut c_void, _>(sym($name)?) },)*
    })
  };
}

/// libuv's functions, or None when this process does not export them (not Node).
pub fn api() -> Option<&'static Api> {
  static API: OnceLock<Option<Api>> = OnceLock::new();
  API
    .get_or_init(|| {
      load!(
        handle_size = c"uv_handle_size",
        poll_init = c"uv_poll_init",
        poll_start = c"uv_poll_start",
        poll_stop = c"uv_poll_stop",
        timer_init = c"uv_timer_init",
        timer_start = c"uv_timer_start",
        timer_stop = c"uv_timer_stop",
        async_init = c"uv_async_init",
        prepare_init = c"uv_prepare_init",
        prepare_start = c"uv_prepare_start",
        prepare_stop = c"uv_prepare_stop",
        close = c"uv_close",
        ref_ = c"uv_ref",
        unref = c"uv_unref",
        set_data = c"uv_handle_set_data",
        get_data = c"uv_handle_get_data",
      )
    })
    .as_ref()
}

/// What a new handle is.
pub enum Kind {
  /// `uv_poll_t` on a socket fd.
  Poll(c_int),
  /// `uv_timer_t`.
  Timer,
  /// `uv_async_t` (never sent: an active handle that keeps the loop alive while referenced).
  KeepAlive,
  /// `uv_prepare_t`: runs right before the loop polls.
  Prepare,
}

// SAFETY (contract): never called (the keep-alive async handle is never sent); no-op.
unsafe extern "C" fn never(_: *mut Handle) {}

impl Api {
  /// Allocates and initializes a handle of `kind` on `lp`, with `data` as its user data.
  /// Returns the libuv error (negative) on failure, with nothing left allocated.
  ///
  /// # Safety
  /// `lp` must be the live loop of the calling thread. The handle must be closed with
  /// [`Api::close`], whose callback frees it.
  pub unsafe fn open(&self, lp: *mut Loop, kind: Kind, data: *mut c_void) -> Result<*mut Handle, c_int> {
    let t = match kind {
      Kind::Poll(_) => UV_POLL,
      Kind::Timer => UV_TIMER,
      Kind::KeepAlive => UV_ASYNC,
      Kind::Prepare => UV_PREPARE,
    };
    // SAFETY: uv_handle_size is a pure function of the type.
    let size = unsafe { (self.handle_size)(t) };
    // SAFETY: calloc of a non-zero size; the result is checked.
    let h = unsafe { libc::calloc(1, size.max(1)) } as *mut Handle;
    if h.is_null() {
      return Err(-libc::ENOMEM);
    }
    // SAFETY: `h` is zeroed memory of the size libuv asked for; `lp` is live (caller).
    let rc = unsafe {
      match kind {
        Kind::Poll(fd) => (self.poll_init)(lp, h, fd),
        Kind::Timer => (self.timer_init)(lp, h),
        Kind::KeepAlive => (self.async_init)(lp, h, never),
        Kind::Prepare => (self.prepare_init)(lp, h),
      }
    };
    if rc != 0 {
      // SAFETY: the init failed, so libuv does not know the handle; it is ours to free.
      unsafe { libc::free(h as *mut c_void) };
      return Err(rc);
    }
    // SAFETY: `h` is an initialized handle.
    unsafe { (self.set_data)(h, data) };
    Ok(h)
  }

  /// The user data of `h`.
  ///
  /// # Safety
  /// `h` must be a live handle made by [`Api::open`].
  pub unsafe fn data(&self, h: *mut Handle) -> *mut c_void {
    // SAFETY: per the contract.
    unsafe { (self.get_data)(h) }
  }

  /// Closes `h`; `cb` runs on a later loop iteration and must free it with [`free`].
  ///
  /// # Safety
  /// `h` must be a live handle made by [`Api::open`], not already closing.
  pub unsafe fn close(&self, h: *mut Handle, cb: HandleCb) {
    // SAFETY: per the contract.
    unsafe { (self.close)(h, cb) }
  }
}

/// Frees a handle's memory (from its close callback).
///
/// # Safety
/// `h` must come from [`Api::open`] and its close callback must be running.
pub unsafe fn free(h: *mut Handle) {
  // SAFETY: the memory came from calloc in `open`, and libuv is done with the handle.
  unsafe { libc::free(h as *mut c_void) }
}

/// Milliseconds for a libuv timer: rounded up, at least 1 (0 would fire on the same turn).
pub fn millis(d: std::time::Duration) -> u64 {
  (d.as_micros().div_ceil(1000) as u64).max(1)
}

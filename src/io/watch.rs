//! The libuv glue: a poll handle on the socket's fd in the JS thread's own event loop, the
//! coalescing window, an async handle that keeps the loop alive while the socket is open and
//! referenced (as a bound `node:dgram` socket does), and the call into JS for each event
//! (`napi_make_callback`, so `process.nextTick` callbacks and promise jobs queued by a handler
//! run before the next event, exactly as after a `node:dgram` 'message').
//!
//! Lifetime: a [`Watcher`] is heap-allocated and pointed to by its handles' data. `close`
//! stops everything at once (no system call touches the fd afterwards, so the owner may close
//! it right away) and closes the handles; the last close callback frees the watcher. An async
//! cleanup hook (one per environment, `teardown`) closes a watcher JS never closed when its
//! environment tears down (a worker exits), and the environment waits for the close callbacks
//! before it closes its loop.
//!
//! Over ~400 lines on purpose: the watcher's ownership rules (start, close, the two conditions
//! for freeing) and the unsafe libuv/N-API callbacks that rely on them are one argument, and
//! reading them apart is how a use-after-free gets in.

use super::teardown;
use std::cell::{Cell, RefCell};
use std::ffi::{c_int, c_void};
use std::ptr::{null_mut, NonNull};
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;

use napi::bindgen_prelude::Function;
use napi::sys;
use napi::JsValue;

use super::window::Window;
use super::{Delivery, Event, Next, Reader, Ready, Shared};
use crate::error::{os_error, NResult, OsError};
use crate::native::dispatch::event_args;
use crate::stats::Counters;
use crate::uv::{self, Api, Handle, Kind, Loop};

/// One socket's watch on the event loop.
pub struct Watcher {
  api: &'static Api,
  lp: *mut Loop,
  env: sys::napi_env,
  shared: Arc<Shared>,
  reader: RefCell<Reader>,
  /// The JS dispatch function and its async context, released once no call is on the stack.
  callback: Cell<sys::napi_ref>,
  context: Cell<sys::napi_async_context>,
  /// The poll handle on the fd, made right before the loop first polls (see `on_prepare`).
  poll: Cell<*mut Handle>,
  keep: *mut Handle,
  /// Runs once, before the loop's next poll phase, to make and start `poll`.
  arm: *mut Handle,
  window: RefCell<Window>,
  /// Events the poll handle currently watches (0: stopped).
  polled: Cell<c_int>,
  /// A window or backoff is running: no reading until it fires.
  waiting: Cell<bool>,
  /// JS calls of this watcher on the stack.
  depth: Cell<u32>,
  closed: Cell<bool>,
  /// Handles not yet through their close callback.
  handles: Cell<u32>,
  /// The `Watch` still points here: the memory waits for it as well as for the handles.
  held: Cell<bool>,
  /// Tracked by its environment's teardown (`teardown::register`) until its handles close.
  registered: Cell<Option<teardown::Ticket>>,
  /// What the owner wants done when the environment tears down with the socket still open
  /// (close it, fd and all), before the watcher closes its handles; see `set_teardown`.
  teardown: RefCell<Option<Box<dyn FnOnce()>>>,
}

/// Batches of at most this many bytes reach JS as a copy (through the landing buffer, see
/// `call_js`).
const COPY_MAX: usize = crate::native::landing::LANDING_BYTES;

/// What the JS-facing class holds: the watcher, closed when dropped.
pub struct Watch(NonNull<Watcher>);

impl Watch {
  /// Watches `shared`'s fd on `env`'s event loop (paused until reading is turned on), calling
  /// `callback` with each event's arguments (`dispatch::event_args`).
  pub fn start(
    env: &napi::Env,
    shared: Arc<Shared>,
    reader: Reader,
    callback: &Function<'_, (), ()>,
  ) -> NResult<Self> {
    let callback = callback.raw();
    let fail = |errno: i32, call: &'static str| os_error(OsError { errno, syscall: call }, "");
    let api = uv::api().ok_or_else(|| fail(libc::ENOSYS, "dlsym(uv_poll_init)"))?;
    let raw = env.raw();
    let lp = env.get_uv_event_loop().map_err(|_| fail(libc::EINVAL, "napi_get_uv_event_loop"))?;
    let mut callback_ref = null_mut();
    // SAFETY: `callback` is a live JS value of this env; the reference is deleted in `release_js`.
    if unsafe { sys::napi_create_reference(raw, callback, 1, &mut callback_ref) } != sys::Status::napi_ok {
      return Err(fail(libc::ENOMEM, "napi_create_reference"));
    }
    let mut context = null_mut();
    let mut name = null_mut();
    // SAFETY: creates a string and an async context on this env's JS thread.
    unsafe {
      sys::napi_create_string_utf8(raw, c"UDPMMSG".as_ptr(), 7, &mut name);
      sys::napi_async_init(raw, null_mut(), name, &mut context);
    }
    let w = Box::into_raw(Box::new(Watcher {
      api,
      lp,
      env: raw,
      shared,
      reader: RefCell::new(reader),
      callback: Cell::new(callback_ref),
      context: Cell::new(context),
      poll: Cell::new(null_mut()),
      keep: null_mut(),
      arm: null_mut(),
      // SAFETY: this thread's live loop; `window_fired` takes the watcher pointers armed.
      window: RefCell::new(unsafe { Window::new(api, lp, window_fired) }),
      polled: Cell::new(0),
      waiting: Cell::new(false),
      depth: Cell::new(0),
      closed: Cell::new(false),
      handles: Cell::new(0),
      held: Cell::new(true),
      registered: Cell::new(None),
      teardown: RefCell::new(None),
    }));
    // SAFETY: `w` is a live, uniquely owned allocation until handles point at it below.
    let this = unsafe { &mut *w };
    // The poll handle is made later, right before the loop next polls (`on_prepare`): nothing
    // can be heard before then anyway, and a socket closed within the turn that opened it (a
    // socket per request, create + bind + close) never pays uv_poll_init's system calls (an
    // epoll add and delete to check the fd, an ioctl) nor the epoll delete of each
    // uv_poll_start made before the loop polled.
    // SAFETY: `lp` is this thread's live loop; `w` outlives the handles (freed by the last
    // close callback).
    let opened = unsafe { api.open(lp, Kind::KeepAlive, w.cast()) }
      .map_err(|rc| (rc, "uv_async_init"))
      .and_then(|k| {
        this.keep = k;
        this.handles.set(1);
        // SAFETY: as above.
        unsafe { api.open(lp, Kind::Prepare, w.cast()) }.map_err(|rc| (rc, "uv_prepare_init"))
      })
      .and_then(|a| {
        this.arm = a;
        this.handles.set(2);
        // SAFETY: a live prepare handle; it must not keep the loop alive by itself.
        unsafe {
          (api.unref)(a);
          match (api.prepare_start)(a, on_prepare) {
            0 => Ok(()),
            rc => Err((rc, "uv_prepare_start")),
          }
        }
      });
    if let Err((rc, call)) = opened {
      let watch = Watch(NonNull::from(this));
      drop(watch); // closes what was opened; frees `w` (at once when nothing was)
      return Err(fail(-rc, call));
    }
    // SAFETY: on the env's thread; `w` stays valid until it unregisters (when its last handle
    // closes), and `close_for_teardown` is the function for a watcher.
    this.registered.set(unsafe { teardown::register(raw, w.cast(), close_for_teardown) });
    Ok(Watch(NonNull::from(this)))
  }

  fn w(&self) -> &Watcher {
    // SAFETY: the watcher is freed only once its handles are all closed *and* this `Watch` is
    // dropped (`held`), so it is alive for as long as `self` is.
    unsafe { self.0.as_ref() }
  }

  /// Re-reads what JS wants (reading, writability) and watches the fd accordingly.
  pub fn update(&self) {
    self.w().update();
  }

  /// `f` runs if the environment tears down while the watch is open (a worker exits with the
  /// socket never closed): the environment's teardown closes the owner through `f`, then the
  /// watcher (see `teardown`: one cleanup hook per environment, not per socket).
  pub fn set_teardown(&self, f: Box<dyn FnOnce()>) {
    *self.w().teardown.borrow_mut() = Some(f);
  }

  /// Refs or unrefs the socket's hold on the event loop.
  pub fn set_ref(&self, on: bool) {
    let w = self.w();
    if !w.closed.get() && !w.keep.is_null() {
      // SAFETY: a live handle (not closing: `closed` is false).
      unsafe {
        if on {
          (w.api.ref_)(w.keep)
        } else {
          (w.api.unref)(w.keep)
        }
      }
    }
  }
}

impl Drop for Watch {
  fn drop(&mut self) {
    let w = self.w();
    w.close();
    w.held.set(false);
    if w.handles.get() == 0 {
      // SAFETY: every handle is closed and this was the last pointer to the watcher.
      unsafe { free_watcher(self.0.as_ptr()) };
    }
  }
}

impl Watcher {
  fn update(&self) {
    let poll = self.poll.get();
    if self.closed.get() || poll.is_null() {
      return;
    }
    let s = &self.shared;
    let mut want = 0;
    if s.reading.load(SeqCst) && !self.waiting.get() {
      want |= uv::READABLE;
    }
    if s.want_writable.load(SeqCst) {
      want |= uv::WRITABLE;
    }
    if want == 0 {
      // Not reading: still hear about errors (an ICMP error queued with IP_RECVERR, a pending
      // SO_ERROR), as while reading; `Reader::on_ready` reports them.
      want = uv::PRIORITIZED;
    }
    if want == self.polled.get() {
      return;
    }
    // SAFETY: a live poll handle; `on_poll` matches the callback type.
    let rc = unsafe { (self.api.poll_start)(poll, want, on_poll) };
    self.polled.set(if rc == 0 { want } else { 0 });
  }

  /// One wake-up: the reader's work, then what to wait for.
  fn ready(&self, ready: Ready) {
    if self.closed.get() {
      return;
    }
    // A handler that spins the loop from inside a callback (a nested uv_run) must not re-enter
    // the reader; level-triggered poll brings the wake-up back once the outer one is done.
    let Ok(mut reader) = self.reader.try_borrow_mut() else { return };
    let next = reader.on_ready(&self.shared, ready, &mut |e| self.deliver(e));
    drop(reader);
    match next {
      None => return,
      Some(Next::Poll) => self.waiting.set(false),
      Some(Next::Wait(d)) => {
        let me = self as *const Watcher as *mut c_void;
        // SAFETY: this thread's loop; the watcher outlives its window handles.
        let made = unsafe { self.window.borrow_mut().arm(self.api, self.lp, me, on_window_timer, d) };
        if let Some(n) = made {
          self.handles.set(self.handles.get() + n);
        }
        self.waiting.set(made.is_some());
      }
    }
    self.update();
  }

  /// Hands one event to JS. Closed when the socket was closed before or by the handler.
  fn deliver(&self, event: Event) -> Delivery {
    if self.closed.get() {
      return Delivery::Closed;
    }
    self.depth.set(self.depth.get() + 1);
    // SAFETY: on the JS thread of `env`, outside any JS call (a loop callback), with the
    // callback reference and context live (released only at depth 0).
    let ok = unsafe { self.call_js(event) };
    if !ok {
      Counters::add(&self.shared.counters.events_dropped, 1);
    }
    self.depth.set(self.depth.get() - 1);
    if self.closed.get() {
      if self.depth.get() == 0 {
        self.release_js();
      }
      return Delivery::Closed;
    }
    Delivery::Queued
  }

  /// Calls the dispatch function with `event` through `napi_make_callback`. An exception from
  /// it is raised as an uncaught exception, as Node does for a throwing 'message' listener.
  // SAFETY (contract): call only on `env`'s JS thread, from a loop callback (no JS on the
  // stack), while the callback reference and async context are live.
  unsafe fn call_js(&self, event: Event) -> bool {
    let env = self.env;
    // A small batch is copied (into the environment's landing buffer, which the dispatch
    // function copies out of into memory V8 owns, freed by the GC by itself); a large one is
    // handed over without a copy, as an external buffer whose finalizer frees it (a finalizer
    // costs an allocation and a callback on a later turn: a burst of them after each
    // collection showed as latency spikes and heap fragmentation with many small batches).
    let copy = matches!(&event, Event::Batch(b) if b.bytes.len() <= COPY_MAX);
    let mut scope = null_mut();
    // SAFETY: (all calls below) the caller's contract; values live in this handle scope.
    unsafe {
      if sys::napi_open_handle_scope(env, &mut scope) != sys::Status::napi_ok {
        return false;
      }
      let mut func = null_mut();
      let mut recv = null_mut();
      let mut argv = [null_mut(); 6];
      let ok = sys::napi_get_reference_value(env, self.callback.get(), &mut func) == sys::Status::napi_ok
        && !func.is_null()
        && sys::napi_get_global(env, &mut recv) == sys::Status::napi_ok;
      let argc = if ok { event_args(env, event, copy, &mut argv) } else { None };
      if let Some(argc) = argc {
        let mut result = null_mut();
        let status =
          sys::napi_make_callback(env, self.context.get(), recv, func, argc, argv.as_ptr(), &mut result);
        if status == sys::Status::napi_pending_exception {
          let mut exception = null_mut();
          sys::napi_get_and_clear_last_exception(env, &mut exception);
          sys::napi_fatal_exception(env, exception);
        }
      }
      sys::napi_close_handle_scope(env, scope);
      argc.is_some()
    }
  }

  /// Deletes the callback reference and the async context (never while a call is running).
  fn release_js(&self) {
    let callback = self.callback.replace(null_mut());
    let context = self.context.replace(null_mut());
    // SAFETY: on the JS thread; each is released once (replaced by null).
    unsafe {
      if !callback.is_null() {
        sys::napi_delete_reference(self.env, callback);
      }
      if !context.is_null() {
        sys::napi_async_destroy(self.env, context);
      }
    }
  }

  /// Stops all work now and closes the handles; the last close callback frees `self`.
  fn close(&self) {
    if self.closed.replace(true) {
      return;
    }
    self.shared.stop.store(true, SeqCst);
    if let Ok(mut r) = self.reader.try_borrow_mut() {
      *r = Reader::new(r.spec); // frees the slab now
    }
    if self.depth.get() == 0 {
      self.release_js();
    }
    let api = self.api;
    // SAFETY: handles made by `start`/the window, closed once (guarded by `closed`); the
    // watcher stays allocated until their callbacks have all run.
    unsafe {
      for h in [self.poll.get(), self.keep, self.arm] {
        if !h.is_null() {
          api.close(h, on_closed);
        }
      }
      let me = self as *const Watcher as *mut c_void;
      self.window.borrow_mut().close(api, me, on_closed);
    }
  }
}

/// Leaves the environment's teardown registry: all handles are closed, so an environment
/// teardown has nothing left to wait for (the last watcher of a tearing-down environment
/// completes its hook).
fn handles_closed(w: &Watcher) {
  if let Some(ticket) = w.registered.take() {
    teardown::unregister(w.env, ticket, w as *const Watcher as *mut c_void);
  }
}

/// Frees the watcher.
///
/// # Safety
/// `w` came from `Box::into_raw` in `start`; its handles are closed and no `Watch` is left.
unsafe fn free_watcher(w: *mut Watcher) {
  // SAFETY: per the contract.
  let boxed = unsafe { Box::from_raw(w) };
  handles_closed(&boxed);
  drop(boxed);
}

/// The watcher a handle belongs to.
///
/// # Safety
/// `h` is a live handle made by `start` or the window (its data is the watcher).
unsafe fn watcher<'a>(h: *mut Handle) -> Option<&'a Watcher> {
  let api = uv::api()?;
  // SAFETY: per the contract, the data is a live watcher.
  unsafe { (api.data(h) as *const Watcher).as_ref() }
}

// SAFETY (contract): libuv calls it with a live poll handle made by `Watch::start`.
unsafe extern "C" fn on_poll(h: *mut Handle, status: c_int, events: c_int) {
  // SAFETY: libuv calls this with our live poll handle.
  let Some(w) = (unsafe { watcher(h) }) else { return };
  if status < 0 {
    // libuv stops a poll handle that reported an error (POLLERR); `update` restarts it.
    w.polled.set(0);
  }
  // POLLERR arrives as status < 0 when the fd was watched for reading or writing (libuv then
  // stops the handle), and as a `UV_PRIORITIZED` event when only that was watched (not reading).
  w.ready(Ready {
    readable: events & uv::READABLE != 0,
    writable: events & uv::WRITABLE != 0,
    error: status < 0 || events & uv::PRIORITIZED != 0,
  });
}

// SAFETY (contract): libuv calls it with the live prepare handle made by `Watch::start`.
unsafe extern "C" fn on_prepare(h: *mut Handle) {
  // SAFETY: libuv calls this with our live prepare handle.
  let Some(w) = (unsafe { watcher(h) }) else { return };
  // SAFETY: the live prepare handle; it has done its one job.
  unsafe { (w.api.prepare_stop)(h) };
  if w.closed.get() || !w.poll.get().is_null() {
    return;
  }
  if let Ok(mut r) = w.reader.try_borrow_mut() {
    r.arm(w.shared.fd());
  }
  let me = w as *const Watcher as *mut c_void;
  // SAFETY: this thread's live loop; the watcher outlives its handles.
  match unsafe { w.api.open(w.lp, Kind::Poll(w.shared.fd()), me) } {
    Ok(p) => {
      w.poll.set(p);
      w.handles.set(w.handles.get() + 1);
      // SAFETY: a live poll handle; it must not keep the loop alive by itself (the
      // keep-alive does). Then watch what JS wants: paused, errors are still heard.
      unsafe { (w.api.unref)(p) };
      w.update();
    }
    // The fd cannot be watched (never seen with a socket this package opened): say so.
    Err(rc) => {
      w.deliver(Event::Error(OsError { errno: -rc, syscall: "uv_poll_init" }));
    }
  }
}

/// The window ended: read (if reading) and decide again.
fn window_ended(w: &Watcher) {
  w.waiting.set(false);
  w.ready(Ready { readable: true, ..Ready::default() });
}

/// The thread's shared window timer fired for watcher `data`.
fn window_fired(data: *mut c_void) {
  // SAFETY: `data` was armed by a live watcher, which removes itself from the shared timer
  // when it closes; one closed during this same firing is still allocated (see `window`).
  if let Some(w) = unsafe { (data as *const Watcher).as_ref() } {
    window_ended(w);
  }
}

// SAFETY (contract): libuv calls it with a live window timer whose data is the watcher.
unsafe extern "C" fn on_window_timer(h: *mut Handle) {
  // SAFETY: libuv calls this with the window's live timer handle.
  let Some(w) = (unsafe { watcher(h) }) else { return };
  window_ended(w);
}

// SAFETY (contract): libuv calls it once per closed handle made here, the handle then ours.
unsafe extern "C" fn on_closed(h: *mut Handle) {
  // SAFETY: libuv calls this once per handle, after which the handle is ours to free.
  let w = unsafe { watcher(h) }.map(|w| w as *const Watcher as *mut Watcher);
  // SAFETY: libuv is done with `h`.
  unsafe { uv::free(h) };
  let Some(w) = w else { return };
  // SAFETY: the watcher lives until its last handle is closed.
  let left = unsafe { &*w }.handles.get().saturating_sub(1);
  // SAFETY: as above.
  unsafe { &*w }.handles.set(left);
  if left == 0 {
    // SAFETY: as above.
    handles_closed(unsafe { &*w });
    // SAFETY: as above.
    if !unsafe { &*w }.held.get() {
      // SAFETY: the last handle referring to the watcher, and its `Watch` is gone.
      unsafe { free_watcher(w) };
    }
  }
}

// SAFETY (contract): the teardown registry calls it on the JS thread with a registered
// watcher, which stays allocated until it unregisters (in its last handle's close callback).
unsafe fn close_for_teardown(data: *mut c_void) {
  // SAFETY: per the contract.
  let w = unsafe { &*(data as *const Watcher) };
  // The owner closes first (its fd with it): that drops the `Watch`, which closes the watcher;
  // the watcher stays allocated until its handles' close callbacks have run (it is still
  // registered, so at least one handle is open).
  let owner = w.teardown.borrow_mut().take();
  if let Some(close_owner) = owner {
    close_owner();
  }
  // Closing completes the teardown: the last close callback unregisters it.
  w.close();
}

//! The coalescing window and the error backoff: a one-shot wake-up of a watcher after a delay.
//! libuv timers count whole milliseconds, far too coarse for a 200 µs window, so on Linux all
//! the sockets of a thread share one `timerfd` (nanosecond resolution) watched by one poll
//! handle. It is made on the first wait (a thread whose sockets never see a backlog never makes
//! it) and closed with the thread's last socket, so sockets cost no extra descriptor each.
//! Elsewhere, or if the timerfd cannot be made, each watcher gets a libuv timer (rounded up to
//! a millisecond) on first use.

use std::cell::RefCell;
use std::ffi::c_void;
#[cfg(target_os = "linux")]
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use crate::uv::{self, Api, Handle, Kind, Loop};

/// One watcher's window: registered with the thread's shared timer, or its own libuv timer.
pub(super) struct Window {
  shared: bool,
  timer: Option<*mut Handle>,
}

/// What a fired window calls: the watcher (as the opaque pointer given to `arm`).
pub(super) type Fired = fn(*mut c_void);

/// The thread's shared timer: its users, the timerfd and its poll handle (made on first use),
/// and the watchers waiting on it.
#[cfg(target_os = "linux")]
struct Shared {
  lp: *mut Loop,
  timer: Option<(OwnedFd, *mut Handle)>,
  users: usize,
  fired: Fired,
  waiting: Vec<(Instant, *mut c_void)>,
  armed_for: Option<Instant>,
}

#[cfg(target_os = "linux")]
thread_local! {
  static SHARED: RefCell<Option<Shared>> = const { RefCell::new(None) };
}

impl Window {
  /// Registers a new watcher on `lp` (with the thread's shared timer when there is one).
  ///
  /// # Safety
  /// `lp` is the live loop of this thread; `fired` must accept every `data` later armed.
  pub(super) unsafe fn new(api: &'static Api, lp: *mut Loop, fired: Fired) -> Self {
    #[cfg(target_os = "linux")]
    {
      // SAFETY: the caller's contract.
      let shared = unsafe { acquire(api, lp, fired) };
      Window { shared, timer: None }
    }
    #[cfg(not(target_os = "linux"))]
    {
      let _ = (api, lp, fired);
      Window { shared: false, timer: None }
    }
  }

  /// Calls back `data` once, `d` from now. Returns how many handles were made for this watcher
  /// (the caller counts them for closing), or None if no timer could be had at all.
  ///
  /// # Safety
  /// `lp` is the live loop of this thread; `data` stays valid until fired or `close`d.
  pub(super) unsafe fn arm(
    &mut self,
    api: &Api,
    lp: *mut Loop,
    data: *mut c_void,
    timer_cb: uv::HandleCb,
    d: Duration,
  ) -> Option<u32> {
    #[cfg(target_os = "linux")]
    if self.shared && arm_shared(api, data, d) {
      return Some(0);
    }
    let mut made = 0;
    if self.timer.is_none() {
      // SAFETY: the caller's contract.
      let t = unsafe { api.open(lp, Kind::Timer, data) }.ok()?;
      // SAFETY: a live handle; the window must not keep the loop alive by itself.
      unsafe { (api.unref)(t) };
      self.timer = Some(t);
      made = 1;
    }
    let t = self.timer?;
    // SAFETY: `t` is a live timer handle.
    (unsafe { (api.timer_start)(t, timer_cb, uv::millis(d), 0) } == 0).then_some(made)
  }

  /// Forgets `data`'s pending wake-up, leaves the shared timer (closing it with its last
  /// user), and closes this watcher's own timer (`cb` frees it).
  ///
  /// # Safety
  /// The watcher's handles must be live and not already closing.
  pub(super) unsafe fn close(&mut self, api: &Api, data: *mut c_void, cb: uv::HandleCb) {
    #[cfg(target_os = "linux")]
    if std::mem::take(&mut self.shared) {
      release(api, data);
    }
    let _ = data;
    if let Some(t) = self.timer.take() {
      // SAFETY: per the contract.
      unsafe { api.close(t, cb) };
    }
  }
}

/// Joins this thread's shared timer. False if it cannot serve this loop.
///
/// # Safety
/// As for [`Window::new`].
#[cfg(target_os = "linux")]
unsafe fn acquire(_api: &Api, lp: *mut Loop, fired: Fired) -> bool {
  SHARED.with(|cell| {
    let mut slot = cell.borrow_mut();
    match slot.as_mut() {
      Some(s) if s.lp != lp => false,
      Some(s) => {
        s.users += 1;
        true
      }
      None => {
        *slot = Some(Shared { lp, timer: None, users: 1, fired, waiting: Vec::new(), armed_for: None });
        true
      }
    }
  })
}

/// A non-blocking timerfd and an unreferenced poll handle on it, on `lp`.
#[cfg(target_os = "linux")]
fn make_timer(api: &Api, lp: *mut Loop) -> Option<(OwnedFd, *mut Handle)> {
  // SAFETY: no memory arguments; the result is checked.
  let raw = unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_NONBLOCK | libc::TFD_CLOEXEC) };
  if raw < 0 {
    return None;
  }
  // SAFETY: a fresh descriptor nothing else owns.
  let fd = unsafe { OwnedFd::from_raw_fd(raw) };
  // SAFETY: `lp` is this thread's live loop (the users' contract); the handle's data is unused
  // (the state is thread-local).
  let poll = unsafe { api.open(lp, Kind::Poll(raw), std::ptr::null_mut()) }.ok()?;
  // SAFETY: a live handle; the timer must not keep the loop alive by itself.
  unsafe { (api.unref)(poll) };
  Some((fd, poll))
}

/// Adds a wake-up of `data` at now + `d` and arms the timerfd for the earliest one.
#[cfg(target_os = "linux")]
fn arm_shared(api: &Api, data: *mut c_void, d: Duration) -> bool {
  SHARED.with(|cell| {
    let mut slot = cell.borrow_mut();
    let Some(s) = slot.as_mut() else { return false };
    if s.timer.is_none() {
      s.timer = make_timer(api, s.lp);
      if s.timer.is_none() {
        return false;
      }
    }
    let at = Instant::now() + d;
    s.waiting.retain(|&(_, w)| w != data);
    s.waiting.push((at, data));
    rearm(api, s)
  })
}

/// Points the timerfd at the earliest wake-up (or disarms it when none is left).
#[cfg(target_os = "linux")]
fn rearm(api: &Api, s: &mut Shared) -> bool {
  let Some((fd, poll)) = &s.timer else { return false };
  let Some(next) = s.waiting.iter().map(|&(at, _)| at).min() else {
    s.armed_for = None;
    // SAFETY: a live poll handle.
    unsafe { (api.poll_stop)(*poll) };
    return true;
  };
  if s.armed_for == Some(next) {
    return true;
  }
  let d = next.saturating_duration_since(Instant::now()).max(Duration::from_nanos(1));
  let spec = libc::itimerspec {
    it_interval: libc::timespec { tv_sec: 0, tv_nsec: 0 },
    it_value: libc::timespec {
      tv_sec: d.as_secs() as libc::time_t,
      tv_nsec: d.subsec_nanos() as libc::c_long,
    },
  };
  // SAFETY: a live timerfd and a live itimerspec (non-zero: zero would disarm); no old value.
  if unsafe { libc::timerfd_settime(fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) } != 0 {
    return false;
  }
  s.armed_for = Some(next);
  // SAFETY: a live poll handle; `on_timerfd` matches the callback type.
  unsafe { (api.poll_start)(*poll, uv::READABLE, on_timerfd) == 0 }
}

/// The timerfd fired: wake every watcher whose time has come, then re-arm for the rest.
#[cfg(target_os = "linux")]
// SAFETY (contract): libuv calls it on the loop thread with the shared timer's poll handle.
unsafe extern "C" fn on_timerfd(_h: *mut Handle, _status: std::ffi::c_int, _events: std::ffi::c_int) {
  let Some(api) = uv::api() else { return };
  let due = SHARED.with(|cell| {
    let mut slot = cell.borrow_mut();
    let s = slot.as_mut()?;
    let (fd, _) = s.timer.as_ref()?;
    let mut n = 0u64;
    // SAFETY: reads 8 bytes into a live u64 (EAGAIN when nothing expired is harmless).
    unsafe { libc::read(fd.as_raw_fd(), &mut n as *mut u64 as *mut c_void, 8) };
    let now = Instant::now();
    let (due, rest): (Vec<_>, Vec<_>) = s.waiting.drain(..).partition(|&(at, _)| at <= now);
    s.waiting = rest;
    s.armed_for = None;
    rearm(api, s);
    Some((s.fired, due))
  });
  // Called with the state released: a watcher's callback may arm again or close sockets.
  // A watcher closed by an earlier callback here is still allocated (freed by its close
  // callbacks, on a later loop phase) and ignores the call.
  if let Some((fired, due)) = due {
    for (_, data) in due {
      fired(data);
    }
  }
}

/// Removes `data`'s wake-up; the last user closes the shared timer.
#[cfg(target_os = "linux")]
fn release(api: &Api, data: *mut c_void) {
  SHARED.with(|cell| {
    let mut slot = cell.borrow_mut();
    let Some(s) = slot.as_mut() else { return };
    s.waiting.retain(|&(_, w)| w != data);
    s.users = s.users.saturating_sub(1);
    if s.users == 0 {
      if let Some((_, poll)) = slot.take().and_then(|s| s.timer) {
        // SAFETY: the live shared poll handle, closed once (the state is gone after this); its
        // fd may be closed right after uv_close (libuv's rule), which dropping it here does.
        unsafe { api.close(poll, free_handle) };
      }
    }
  });
}

#[cfg(target_os = "linux")]
// SAFETY (contract): libuv calls it once, from the close of the shared poll handle.
unsafe extern "C" fn free_handle(h: *mut Handle) {
  // SAFETY: the close callback of the shared poll handle: libuv is done with it.
  unsafe { uv::free(h) };
}

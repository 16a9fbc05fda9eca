//! The per-socket I/O thread. It waits with `poll` on the socket and a wake-up fd, receives
//! whole batches without blocking (`recvmmsg` + `MSG_DONTWAIT` until `EAGAIN` or the batch
//! is full), and hands them to a sink (the JS thread's queue). It never blocks on the JS
//! thread: a credit window bounds how many batches may wait in the queue, and when it is
//! used up the thread stops reading (the kernel buffer absorbs the burst) until JS returns
//! credit through [`Shared::return_credit`].
//!
//! One concern per file: this one holds the shared state and the poll loop (`run`); `drain`
//! receives and coalesces batches; `errors` reports the error queue and `SO_ERROR`.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::*};
use std::sync::Arc;
use std::time::Duration;

use socket2::Socket;

use crate::batch::RawBatch;
use crate::error::OsError;
use crate::recv::{RecvMode, RecvSlab};
use crate::stats::Counters;
use crate::wake::Waker;

mod drain;
mod errors;
#[cfg(test)]
mod tests;

use drain::{drain, Drained};
use errors::{report_error_queue, take_socket_error};

/// What the I/O thread tells JS.
pub enum Event {
  /// Received datagrams.
  Batch(RawBatch),
  /// A receive error (ICMP error, pending socket error, error-queue entry).
  Error(OsError),
  /// The send buffer has room again (asked for with [`Shared::request_writable`]).
  Writable,
}

/// Result of offering an event to the sink.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
  /// The event is on its way to JS.
  Queued,
  /// JS is gone (socket closed, environment torn down): the thread must exit.
  Closed,
}

/// Most error events waiting for JS at once.
pub const MAX_ERRORS_IN_FLIGHT: u32 = 64;

/// Errored wake-ups in a row after which the loop pauses [`ERROR_BACKOFF`] per wake-up.
const MAX_CONSECUTIVE_ERRORS: u32 = 8;
/// The pause after too many errored wake-ups in a row (a close interrupts it).
const ERROR_BACKOFF: Duration = Duration::from_millis(10);

/// State shared by the JS thread and the I/O thread.
pub struct Shared {
  /// The socket. Owned here (and by the JS side), so the fd stays open as long as the I/O
  /// thread can use it: a thread that outlives its JS object never polls a reused fd number.
  pub socket: Arc<Socket>,
  /// Interrupts the thread's poll.
  pub waker: Waker,
  /// `recvmmsg` or one `recvmsg` per datagram.
  pub mode: RecvMode,
  /// Most datagrams per delivered batch.
  pub batch_size: usize,
  /// How long a partial batch may wait for more datagrams (0: deliver at once).
  pub coalesce: Duration,
  /// Most batches allowed in the JS queue at once.
  pub max_in_flight: u32,
  /// JS wants datagrams.
  pub reading: AtomicBool,
  /// JS waits for room in the send buffer.
  pub want_writable: AtomicBool,
  /// The thread must exit.
  pub stop: AtomicBool,
  in_flight: AtomicU32,
  waiting_credit: AtomicBool,
  errors_in_flight: AtomicU32,
  /// Times the loop paused after [`MAX_CONSECUTIVE_ERRORS`] errored wake-ups in a row.
  pub backoffs: AtomicU64,
  /// The socket's counters.
  pub counters: Counters,
}

impl Shared {
  /// State for a socket whose thread starts paused.
  pub fn new(
    socket: Arc<Socket>,
    waker: Waker,
    mode: RecvMode,
    batch_size: usize,
    coalesce: Duration,
    max_in_flight: u32,
  ) -> Self {
    Shared {
      socket,
      waker,
      mode,
      batch_size,
      coalesce,
      max_in_flight: max_in_flight.max(1),
      reading: AtomicBool::new(false),
      want_writable: AtomicBool::new(false),
      stop: AtomicBool::new(false),
      in_flight: AtomicU32::new(0),
      waiting_credit: AtomicBool::new(false),
      errors_in_flight: AtomicU32::new(0),
      backoffs: AtomicU64::new(0),
      counters: Counters::default(),
    }
  }

  /// The socket's fd, valid as long as `self` is.
  pub fn fd(&self) -> RawFd {
    self.socket.as_raw_fd()
  }

  /// Called on the JS thread when a batch has been taken off the queue.
  pub fn return_credit(&self) {
    let left = self.in_flight.fetch_sub(1, SeqCst).saturating_sub(1);
    if left <= self.max_in_flight / 2 && self.waiting_credit.swap(false, SeqCst) {
      self.waker.wake();
    }
  }

  /// Called on the JS thread when an error event has been handled.
  pub fn error_handled(&self) {
    self.errors_in_flight.fetch_sub(1, SeqCst);
  }

  /// Starts or pauses reading from the socket.
  pub fn set_reading(&self, on: bool) {
    if self.reading.swap(on, SeqCst) != on {
      self.waker.wake();
    }
  }

  /// Asks for one `Writable` event when the send buffer has room.
  pub fn request_writable(&self) {
    if !self.want_writable.swap(true, SeqCst) {
      self.waker.wake();
    }
  }

  /// Asks the thread to exit.
  pub fn request_stop(&self) {
    self.stop.store(true, SeqCst);
    self.waker.wake();
  }

  /// Sleeps up to `d`, returning early when woken (close, pause, a send waiting).
  fn sleep(&self, d: Duration) {
    let mut fds = [libc::pollfd { fd: self.waker.fd(), events: libc::POLLIN, revents: 0 }];
    #[cfg(target_os = "linux")]
    {
      let ts =
        libc::timespec { tv_sec: d.as_secs() as libc::time_t, tv_nsec: d.subsec_nanos() as libc::c_long };
      // SAFETY: one live pollfd, a live timespec and no signal mask.
      unsafe { libc::ppoll(fds.as_mut_ptr(), 1, &ts, std::ptr::null()) };
    }
    #[cfg(not(target_os = "linux"))]
    {
      let ms = d.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
      // SAFETY: one live pollfd.
      unsafe { libc::poll(fds.as_mut_ptr(), 1, ms) };
    }
    // A wake-up consumed here is not lost: the loop re-reads every flag before polling again.
    if fds[0].revents != 0 {
      self.waker.drain();
    }
  }

  fn has_credit(&self) -> bool {
    self.in_flight.load(SeqCst) < self.max_in_flight
  }
}

/// Runs the I/O loop until stopped or the sink closes.
pub fn run(shared: Arc<Shared>, mut slab: RecvSlab, mut sink: impl FnMut(Event) -> Delivery) {
  let mut consecutive_errors = 0u32;
  let syscall = if shared.mode == RecvMode::Batched { "recvmmsg" } else { "recvmsg" };
  while !shared.stop.load(SeqCst) {
    let reading = shared.reading.load(SeqCst);
    let mut can_read = reading && shared.has_credit();
    if reading && !can_read {
      // Publish that we wait for credit, then re-check so a return in between is not lost.
      shared.waiting_credit.store(true, SeqCst);
      can_read = shared.has_credit();
      if can_read {
        shared.waiting_credit.store(false, SeqCst);
      }
    }
    let want_write = shared.want_writable.load(SeqCst);
    let mut events: libc::c_short = 0;
    if can_read {
      events |= libc::POLLIN;
    }
    if want_write {
      events |= libc::POLLOUT;
    }
    let mut fds = [
      libc::pollfd { fd: shared.waker.fd(), events: libc::POLLIN, revents: 0 },
      libc::pollfd { fd: shared.fd(), events, revents: 0 },
    ];
    // SAFETY: `fds` is a live array of two pollfds; -1 waits until an event or a wake-up.
    let rc = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
    // Whether this wake-up met an error; errors in a row slow the loop down, anything else
    // resets the count (also while reading is paused).
    let mut errored = false;
    if rc < 0 {
      let e = io::Error::last_os_error();
      if e.kind() != io::ErrorKind::Interrupted {
        errored = true;
        if !offer(&shared, &mut sink, Event::Error(OsError::from_io(&e, "poll"))) {
          return;
        }
      }
    } else {
      if fds[0].revents != 0 {
        shared.waker.drain();
      }
      let rev = fds[1].revents;
      if rev & libc::POLLERR != 0 {
        // With IP_RECVERR/IPV6_RECVERR on, ICMP errors wait on the error queue and keep POLLERR
        // raised until read. Read the queue first: that also clears the pending socket error
        // the same ICMP error set, so the receive below does not report it a second time.
        match report_error_queue(&shared, &mut sink, None, syscall) {
          Some(reported) => errored |= reported,
          None => return,
        }
      }
      if want_write && rev & (libc::POLLOUT | libc::POLLERR) != 0 {
        shared.want_writable.store(false, SeqCst);
        if !offer(&shared, &mut sink, Event::Writable) {
          return;
        }
      }
      if can_read && rev & (libc::POLLIN | libc::POLLERR | libc::POLLHUP) != 0 {
        match drain(&shared, &mut slab, &mut sink, syscall) {
          Drained::Ok => {}
          Drained::Errored => errored = true,
          Drained::Closed => return,
        }
      } else if rev & libc::POLLERR != 0 {
        // A pending socket error (e.g. ICMP port unreachable on a connected socket) while we
        // are not reading: poll would report it forever, so fetch (and clear) it now.
        if let Some(errno) = take_socket_error(shared.fd()) {
          match report_error_queue(&shared, &mut sink, Some(errno), syscall) {
            Some(reported) => errored |= reported,
            None => return,
          }
        }
      }
    }
    consecutive_errors = if errored { consecutive_errors.saturating_add(1) } else { 0 };
    if consecutive_errors > MAX_CONSECUTIVE_ERRORS {
      // A persistent error: keep the loop alive but do not spin.
      shared.backoffs.fetch_add(1, Relaxed);
      shared.sleep(ERROR_BACKOFF);
    }
  }
}

/// Offers an event to the sink. The JS queue is unbounded, so batches are bounded by the
/// credit window and errors by [`MAX_ERRORS_IN_FLIGHT`] (further errors while JS has not
/// caught up are counted in `eventsDropped`, never silently). Returns false when the thread
/// must exit.
fn offer(shared: &Shared, sink: &mut impl FnMut(Event) -> Delivery, event: Event) -> bool {
  if matches!(event, Event::Error(_)) {
    if shared.errors_in_flight.load(SeqCst) >= MAX_ERRORS_IN_FLIGHT {
      Counters::add(&shared.counters.events_dropped, 1);
      return true;
    }
    shared.errors_in_flight.fetch_add(1, SeqCst);
  }
  sink(event) == Delivery::Queued
}

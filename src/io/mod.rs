//! Receiving on the JS thread's own event loop. Each socket's fd is watched by a libuv poll
//! handle (`watch`); when it is readable the loop thread receives whole batches without
//! blocking (`recvmmsg` + `MSG_DONTWAIT`) and hands each to JS at once. No thread per socket,
//! no hand-off: a lone datagram reaches JS as fast as with `node:dgram`.
//!
//! Adaptive coalescing: when a wake-up found a backlog (two datagrams or more), the socket
//! stops polling for `coalesce` so the next read gathers a fuller batch; a wake-up that finds
//! one datagram (or none) goes back to immediate delivery, and so does one whose handlers sent
//! on the socket (a request/response server). Ping-pong traffic, lone datagrams and answered
//! requests never wait; sustained receive-only traffic is read in batches.
//!
//! One concern per file: this one holds the state shared with the JS-facing class and the
//! decision logic of one wake-up ([`Reader::on_ready`], free of libuv so it is unit-tested);
//! `drain` receives batches; `errors` reports the error queue and `SO_ERROR`; `watch` is the
//! libuv glue (handles, timers, calling JS); `window` the sub-millisecond coalescing timer.

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::*};
use std::time::Duration;

use crate::batch::RawBatch;
use crate::error::OsError;
use crate::recv::{RecvMode, RecvSlab};
use crate::stats::Counters;

mod drain;
mod errors;
mod teardown;
#[cfg(all(test, target_os = "linux"))]
mod tests;
pub mod watch;
mod window;

use drain::{drain, Drained};
use errors::{report_error_queue, take_socket_error};

/// What the socket tells JS.
pub enum Event {
  /// Received datagrams.
  Batch(RawBatch),
  /// A receive error (ICMP error, pending socket error, error-queue entry).
  Error(OsError),
  /// The send buffer has room again (asked for with `request_writable`).
  Writable,
}

/// Result of offering an event to JS.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
  /// JS has handled the event.
  Queued,
  /// The socket was closed (possibly by the handler itself): stop touching the fd.
  Closed,
}

/// Errored wake-ups in a row after which reading pauses [`ERROR_BACKOFF`] per wake-up.
pub const MAX_CONSECUTIVE_ERRORS: u32 = 8;
/// The pause after too many errored wake-ups in a row.
pub const ERROR_BACKOFF: Duration = Duration::from_millis(10);
/// Most batches received in one wake-up before yielding to the rest of the event loop.
pub const MAX_BATCHES_PER_WAKE: usize = 8;

/// How the receive slab is made when first needed (never for a socket that receives nothing).
#[derive(Clone, Copy)]
pub struct SlabSpec {
  /// Slots (the most datagrams one receive returns).
  pub batch: usize,
  /// Largest datagram delivered whole.
  pub limit: usize,
  /// GRO on: slots hold coalesced receives.
  pub gro: bool,
  /// Batches report the kernel drop counter.
  pub drop_counter: bool,
}

/// State shared by the JS-facing class and the loop callbacks (both on the JS thread).
pub struct Shared {
  fd: RawFd,
  /// `recvmmsg` or one `recvmsg` per datagram.
  pub mode: RecvMode,
  /// How long to wait for a fuller batch after a wake-up that found a backlog (0: never).
  pub coalesce: Duration,
  /// JS wants datagrams.
  pub reading: AtomicBool,
  /// JS waits for room in the send buffer.
  pub want_writable: AtomicBool,
  /// The socket is closed: no system call may touch `fd` any more.
  pub stop: AtomicBool,
  /// Times reading paused after [`MAX_CONSECUTIVE_ERRORS`] errored wake-ups in a row.
  pub backoffs: AtomicU64,
  /// The socket's counters.
  pub counters: Counters,
}

impl Shared {
  /// State for socket `fd` (owned elsewhere; see `stop`), not reading yet.
  pub fn new(fd: RawFd, mode: RecvMode, coalesce: Duration) -> Self {
    Shared {
      fd,
      mode,
      coalesce,
      reading: AtomicBool::new(false),
      want_writable: AtomicBool::new(false),
      stop: AtomicBool::new(false),
      backoffs: AtomicU64::new(0),
      counters: Counters::default(),
    }
  }

  /// The socket's fd (valid while `stop` is false).
  pub fn fd(&self) -> RawFd {
    self.fd
  }

  fn syscall(&self) -> &'static str {
    if self.mode == RecvMode::Batched {
      "recvmmsg"
    } else {
      "recvmsg"
    }
  }
}

/// What the fd reported.
#[derive(Clone, Copy, Default, Debug)]
pub struct Ready {
  /// Datagrams (or a pending error) to read — or a coalescing window ended.
  pub readable: bool,
  /// Room in the send buffer.
  pub writable: bool,
  /// `POLLERR`: the error queue or `SO_ERROR` holds something.
  pub error: bool,
}

/// What to do before reading again.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
  /// Watch the fd as usual.
  Poll,
  /// Do not read for this long (coalescing window, or error backoff), then read.
  Wait(Duration),
}

/// The receiving side of one socket: its slab (made on first use) and error streak.
pub struct Reader {
  spec: SlabSpec,
  slab: Option<RecvSlab>,
  consecutive_errors: u32,
}

impl Reader {
  /// A reader whose slab is made on the first receive.
  pub fn new(spec: SlabSpec) -> Self {
    Reader { spec, slab: None, consecutive_errors: 0 }
  }

  /// Called once, right before the fd is first watched: asks for the kernel's drop counter
  /// with every datagram (`SO_RXQ_OVFL`; the counter is cumulative since the socket was made,
  /// so asking late loses no count). Batches report it only if that worked.
  pub fn arm(&mut self, fd: RawFd) {
    if self.spec.drop_counter && !enable_drop_counter(fd) {
      self.spec.drop_counter = false;
    }
  }

  fn slab(&mut self) -> &mut RecvSlab {
    let spec = self.spec;
    self.slab.get_or_insert_with(|| {
      let mut s = crate::recv::spare::take(spec.batch, spec.limit, spec.gro);
      s.drop_counter = spec.drop_counter;
      s
    })
  }

  /// Handles one wake-up: error queue, writability, then the datagrams. Returns None when the
  /// socket was closed meanwhile (by a handler), otherwise how to wait for the next read.
  pub fn on_ready(
    &mut self,
    shared: &Shared,
    ready: Ready,
    sink: &mut impl FnMut(Event) -> Delivery,
  ) -> Option<Next> {
    if shared.stop.load(SeqCst) {
      return None;
    }
    let syscall = shared.syscall();
    let mut errored = false;
    if ready.error {
      // With IP_RECVERR/IPV6_RECVERR on, ICMP errors wait on the error queue and keep POLLERR
      // raised until read. Read the queue first: that also clears the pending socket error
      // the same ICMP error set, so the receive below does not report it a second time.
      errored |= report_error_queue(shared, sink, None, syscall)?;
    }
    if ready.writable && shared.want_writable.swap(false, SeqCst) && sink(Event::Writable) == Delivery::Closed
    {
      return None;
    }
    let mut next = Next::Poll;
    if shared.reading.load(SeqCst) && (ready.readable || ready.error) {
      let sent_before = shared.counters.datagrams_sent.load(Relaxed);
      let (end, backlog) = drain(shared, self.slab(), sink, syscall);
      // A server that answered what it just received (request/response: DNS, CoAP, echo) gets
      // its next requests as a reaction to those answers: holding them back would only add
      // latency, so only a receive-only backlog (ingestion) waits for a fuller batch.
      let answered = shared.counters.datagrams_sent.load(Relaxed) != sent_before;
      match end {
        Drained::Ok => {}
        Drained::Errored => errored = true,
        Drained::Closed => return None,
      }
      if backlog && !answered && !shared.coalesce.is_zero() {
        next = Next::Wait(shared.coalesce);
      }
    } else if ready.error {
      // A pending socket error (e.g. ICMP port unreachable on a connected socket) while not
      // reading: poll would report it forever, so fetch (and clear) it now.
      if let Some(errno) = take_socket_error(shared.fd()) {
        errored |= report_error_queue(shared, sink, Some(errno), syscall)?;
      }
    }
    self.consecutive_errors = if errored { self.consecutive_errors.saturating_add(1) } else { 0 };
    if self.consecutive_errors > MAX_CONSECUTIVE_ERRORS {
      // A persistent error: keep the socket alive but do not spin the event loop on it.
      shared.backoffs.fetch_add(1, Relaxed);
      next = Next::Wait(ERROR_BACKOFF);
    }
    Some(next)
  }
}

impl Drop for Reader {
  /// The slab becomes the thread's spare, for the next socket (see `recv::spare`).
  fn drop(&mut self) {
    if let Some(slab) = self.slab.take() {
      crate::recv::spare::give(slab);
    }
  }
}

/// Sets `SO_RXQ_OVFL` on `fd`; false when it cannot be had.
#[cfg(target_os = "linux")]
fn enable_drop_counter(fd: RawFd) -> bool {
  let on: libc::c_int = 1;
  // SAFETY: passes a pointer to a live c_int and its exact size; `fd` is the socket's open fd.
  let rc = unsafe {
    libc::setsockopt(
      fd,
      libc::SOL_SOCKET,
      crate::linux::SO_RXQ_OVFL,
      &on as *const libc::c_int as *const libc::c_void,
      std::mem::size_of::<libc::c_int>() as libc::socklen_t,
    )
  };
  rc == 0
}

#[cfg(not(target_os = "linux"))]
fn enable_drop_counter(_fd: RawFd) -> bool {
  false
}

/// The errno of an I/O error (EIO when it has none).
fn errno_of(e: &io::Error) -> i32 {
  e.raw_os_error().unwrap_or(libc::EIO)
}

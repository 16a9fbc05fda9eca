//! The per-socket I/O thread. It waits with `poll` on the socket and a wake-up fd, receives
//! whole batches without blocking (`recvmmsg` + `MSG_DONTWAIT` until `EAGAIN` or the batch
//! is full), and hands them to a sink (the JS thread's queue). It never blocks on the JS
//! thread: a credit window bounds how many batches may wait in the queue, and when it is
//! used up the thread stops reading (the kernel buffer absorbs the burst) until JS returns
//! credit through [`Shared::return_credit`].

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::*};
use std::sync::Arc;
use std::time::{Duration, Instant};

use socket2::Socket;

use crate::batch::{MetaLayout, RawBatch, FLAG_TRUNCATED};
use crate::error::OsError;
use crate::errqueue;
use crate::recv::{RecvMode, RecvSlab};
use crate::stats::Counters;
use crate::wake::Waker;

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

/// Drains the error queue (bounded), reporting each error entry once and counting the other
/// entries. `failed` is the errno a receive (or `SO_ERROR`) just returned: an ICMP error with
/// `IP_RECVERR` on is both queued and parked as the socket's pending error, so it is reported
/// only when no queued entry carries the same errno. Returns whether anything was reported,
/// or None when the thread must exit.
fn report_error_queue(
  shared: &Shared,
  sink: &mut impl FnMut(Event) -> Delivery,
  failed: Option<i32>,
  syscall: &'static str,
) -> Option<bool> {
  let found = errqueue::drain(shared.fd());
  Counters::add(&shared.counters.error_queue_notices, found.notices);
  let mut reported = false;
  if let Some(errno) = failed.filter(|e| !found.errors.contains(e)) {
    Counters::add(&shared.counters.recv_errors, 1);
    reported = true;
    if !offer(shared, sink, Event::Error(OsError { errno, syscall })) {
      return None;
    }
  }
  for errno in found.errors {
    Counters::add(&shared.counters.recv_errors, 1);
    reported = true;
    if !offer(shared, sink, Event::Error(OsError { errno, syscall: "recvmsg(MSG_ERRQUEUE)" })) {
      return None;
    }
  }
  Some(reported)
}

/// How a [`drain`] ended.
enum Drained {
  /// The socket is empty, credit ran out or reading was paused; no error.
  Ok,
  /// A receive error was reported.
  Errored,
  /// The sink closed: the thread must exit.
  Closed,
}

/// Receives batches until the socket is empty, credit runs out or reading is paused.
///
/// Coalescing: when a receive returns fewer datagrams than the batch holds, the thread sleeps
/// for what is left of `shared.coalesce` (measured from the first datagram of the batch) and
/// then fills the rest of the same batch, so a slow trickle costs one wake-up per window
/// instead of one per few datagrams. Full batches never wait; a close interrupts the sleep.
fn drain(
  shared: &Shared,
  slab: &mut RecvSlab,
  sink: &mut impl FnMut(Event) -> Delivery,
  syscall: &'static str,
) -> Drained {
  let fd = shared.fd();
  let cap = shared.batch_size.min(slab.capacity());
  while shared.reading.load(Relaxed) && !shared.stop.load(Relaxed) && shared.has_credit() {
    let mut n = 0usize;
    let mut started: Option<Instant> = None;
    let mut error: Option<io::Error> = None;
    loop {
      let r = slab.receive(fd, shared.mode, n, cap - n);
      Counters::add(&shared.counters.recv_syscalls, slab.last_syscalls);
      match r {
        Ok(k) => {
          n += k;
          if n >= cap {
            break;
          }
        }
        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
          if n == 0 {
            return Drained::Ok;
          }
        }
        Err(e) => {
          // Possibly an error parked by the kernel after an earlier partial batch, or an
          // ICMP error: deliver what we have, then report it; the loop stays alive.
          error = Some(e);
          break;
        }
      }
      if shared.coalesce.is_zero() || shared.stop.load(Relaxed) {
        break;
      }
      let first = *started.get_or_insert_with(Instant::now);
      let elapsed = first.elapsed();
      if elapsed >= shared.coalesce {
        break;
      }
      shared.sleep(shared.coalesce - elapsed);
    }
    if n > 0 {
      let batch = slab.take(n);
      let c = &shared.counters;
      let count = batch.count as usize;
      let flags = MetaLayout { count }.flags();
      Counters::add(&c.datagrams_received, count as u64);
      Counters::add(&c.bytes_received, (batch.bytes.len() - batch.meta_len) as u64);
      Counters::add(&c.batches_received, 1);
      Counters::add(&c.gro_receives, batch.gro_slots as u64);
      Counters::add(&c.control_truncated, batch.control_truncated as u64);
      let cut = batch.meta()[flags..flags + count].iter().filter(|&&f| f & FLAG_TRUNCATED != 0).count();
      Counters::add(&c.truncated, cut as u64);
      if let Some(d) = batch.kernel_drops {
        Counters::raise(&c.kernel_drops, d);
      }
      shared.in_flight.fetch_add(1, SeqCst);
      if !offer(shared, sink, Event::Batch(batch)) {
        return Drained::Closed;
      }
    }
    if let Some(e) = error {
      let errno = e.raw_os_error().unwrap_or(libc::EIO);
      return match report_error_queue(shared, sink, Some(errno), syscall) {
        Some(true) => Drained::Errored,
        Some(false) => Drained::Ok,
        None => Drained::Closed,
      };
    }
    if n < cap {
      // Drained (or the window closed on a partial batch): back to poll.
      return Drained::Ok;
    }
  }
  Drained::Ok
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

/// Reads and clears `SO_ERROR`.
fn take_socket_error(fd: RawFd) -> Option<i32> {
  let mut err: libc::c_int = 0;
  let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
  // SAFETY: passes a live c_int and its size; the kernel writes at most `len` bytes.
  let rc = unsafe {
    libc::getsockopt(
      fd,
      libc::SOL_SOCKET,
      libc::SO_ERROR,
      &mut err as *mut libc::c_int as *mut libc::c_void,
      &mut len,
    )
  };
  (rc == 0 && err != 0).then_some(err)
}

#[cfg(test)]
mod tests {
  use super::*;
  use std::net::UdpSocket;
  use std::sync::mpsc;
  use std::thread::JoinHandle;

  /// What a test sees of the loop's events.
  #[derive(Debug, PartialEq, Eq)]
  enum Seen {
    Batch(u32),
    Error(i32),
    Writable,
  }

  /// Starts the I/O loop (paused) on `sock`; its events arrive on the returned channel.
  fn start(sock: UdpSocket) -> (Arc<Shared>, JoinHandle<()>, mpsc::Receiver<Seen>) {
    sock.set_nonblocking(true).unwrap();
    let socket = Arc::new(Socket::from(sock));
    let shared =
      Arc::new(Shared::new(socket, Waker::new().unwrap(), RecvMode::Batched, 8, Duration::ZERO, 4));
    let (tx, rx) = mpsc::channel();
    let thread_shared = shared.clone();
    let thread = std::thread::spawn(move || {
      run(thread_shared, RecvSlab::new(8, 64), move |e| {
        let seen = match e {
          Event::Batch(b) => Seen::Batch(b.count),
          Event::Error(e) => Seen::Error(e.errno),
          Event::Writable => Seen::Writable,
        };
        if tx.send(seen).is_ok() {
          Delivery::Queued
        } else {
          Delivery::Closed
        }
      })
    });
    (shared, thread, rx)
  }

  fn next(rx: &mpsc::Receiver<Seen>) -> Seen {
    rx.recv_timeout(Duration::from_secs(10)).expect("an event from the I/O thread")
  }

  /// A loopback port nobody listens on.
  fn dead_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
  }

  fn stop(shared: Arc<Shared>, thread: JoinHandle<()>) {
    shared.request_stop();
    thread.join().unwrap();
  }

  #[test]
  fn the_thread_owns_the_fd_it_polls() {
    // Regression: the thread used to poll a raw fd number that the JS side owned; had the
    // JS side closed it without stopping the thread, the thread would have polled whatever
    // the kernel gave that number next. Now the thread's share keeps the socket open.
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = sock.local_addr().unwrap().port();
    let (shared, thread, rx) = start(sock);
    let fd = shared.fd();
    let weak = Arc::downgrade(&shared.socket);
    let loop_share = Arc::clone(&shared);
    drop(shared);
    // Only the thread's share is left (the test's `loop_share` is the same Arc): the fd is the
    // same open socket.
    assert!(weak.upgrade().is_some());
    let again = loop_share.socket.local_addr().unwrap().as_socket().unwrap().port();
    assert_eq!(again, port);
    // SAFETY: F_GETFD on a descriptor number reads its flags; no memory is passed.
    assert_ne!(unsafe { libc::fcntl(fd, libc::F_GETFD) }, -1, "the fd is still open");
    let other = UdpSocket::bind("127.0.0.1:0").unwrap();
    assert_ne!(other.local_addr().unwrap().port(), port);
    // The loop still receives on its own socket.
    loop_share.set_reading(true);
    other.send_to(b"hello", ("127.0.0.1", port)).unwrap();
    assert_eq!(next(&rx), Seen::Batch(1));
    stop(loop_share, thread);
    assert!(weak.upgrade().is_none(), "the socket is released with the last share");
  }

  #[test]
  fn a_clean_wake_up_resets_the_error_count_while_paused() {
    // Regression: errors met while reading was paused were never forgotten, so after nine of
    // them every later wake-up (a send waiting for room, a resume) slept 10 ms.
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.connect(("127.0.0.1", dead_port())).unwrap();
    let (shared, thread, rx) = start(sock);
    for _ in 0..=MAX_CONSECUTIVE_ERRORS + 1 {
      shared.socket.send(b"to nobody").unwrap();
      assert_eq!(next(&rx), Seen::Error(libc::ECONNREFUSED));
    }
    // The Writable event comes from an iteration after the last errored one, so the count
    // read here includes every backoff the errors caused.
    shared.request_writable();
    assert_eq!(next(&rx), Seen::Writable);
    let before = shared.backoffs.load(SeqCst);
    assert!(before >= 1, "ten errors in a row back off");
    for _ in 0..3 {
      shared.request_writable();
      assert_eq!(next(&rx), Seen::Writable);
    }
    assert_eq!(shared.backoffs.load(SeqCst), before, "wake-ups without an error do not back off");
    stop(shared, thread);
  }

  #[test]
  fn an_icmp_error_with_ip_recverr_is_reported_once() {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = sock.local_addr().unwrap().port();
    let (shared, thread, rx) = start(sock);
    crate::socket::set_int(&shared.socket, libc::IPPROTO_IP, libc::IP_RECVERR, 1, "IP_RECVERR").unwrap();
    shared.set_reading(true);
    let dead = std::net::SocketAddr::from(([127, 0, 0, 1], dead_port()));
    shared.socket.send_to(b"to nobody", &dead.into()).unwrap();
    assert_eq!(next(&rx), Seen::Error(libc::ECONNREFUSED));
    // A datagram after it: the loop has been through poll and recvmmsg again since.
    let other = UdpSocket::bind("127.0.0.1:0").unwrap();
    other.send_to(b"after", ("127.0.0.1", port)).unwrap();
    assert_eq!(next(&rx), Seen::Batch(1), "no second report of the same ICMP error");
    assert_eq!(shared.counters.recv_errors.load(std::sync::atomic::Ordering::Relaxed), 1);
    stop(shared, thread);
  }
}

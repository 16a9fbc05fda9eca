//! Tests of the I/O thread: fd ownership, wake-ups while paused, ICMP error reporting.

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
  let shared = Arc::new(Shared::new(socket, Waker::new().unwrap(), RecvMode::Batched, 8, Duration::ZERO, 4));
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

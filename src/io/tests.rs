//! Tests of one wake-up's logic (`Reader::on_ready`) on real loopback sockets, without libuv:
//! lone datagrams are delivered at once, backlogs ask for a coalescing window, errors are
//! reported once and back off when they persist, a close from a handler stops everything.

use super::*;
use std::net::UdpSocket;
use std::os::fd::AsRawFd;

/// What a test sees of the events.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
  Batch(u32),
  Error(i32),
  Writable,
}

const WINDOW: Duration = Duration::from_micros(200);

fn reader(batch: usize) -> Reader {
  Reader::new(SlabSpec { batch, limit: 2048, gro: false, drop_counter: false })
}

/// A bound receiver (non-blocking), its state with reading on, and its port.
fn receiver(coalesce: Duration) -> (UdpSocket, Shared, u16) {
  let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
  sock.set_nonblocking(true).unwrap();
  let port = sock.local_addr().unwrap().port();
  let shared = Shared::new(sock.as_raw_fd(), RecvMode::Batched, coalesce);
  shared.reading.store(true, SeqCst);
  (sock, shared, port)
}

/// A loopback port nobody listens on.
fn dead_port() -> u16 {
  UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Runs one wake-up, collecting what JS would have seen.
fn wake(r: &mut Reader, s: &Shared, ready: Ready) -> (Option<Next>, Vec<Seen>) {
  let mut seen = Vec::new();
  let next = r.on_ready(s, ready, &mut |e| {
    seen.push(match e {
      Event::Batch(b) => Seen::Batch(b.count),
      Event::Error(e) => Seen::Error(e.errno),
      Event::Writable => Seen::Writable,
    });
    Delivery::Queued
  });
  (next, seen)
}

const READABLE: Ready = Ready { readable: true, writable: false, error: false };

/// Sends `n` datagrams to `port` and waits until the receiver has them queued.
fn send(n: usize, port: u16, rx: &UdpSocket) {
  let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
  for i in 0..n {
    tx.send_to(format!("d{i}").as_bytes(), ("127.0.0.1", port)).unwrap();
  }
  // Loopback delivers synchronously into the receive queue; peek confirms one is there.
  rx.set_nonblocking(false).unwrap();
  let mut b = [0u8; 8];
  rx.peek(&mut b).unwrap();
  rx.set_nonblocking(true).unwrap();
}

/// Turns IP_RECVERR on.
fn recverr(sock: &UdpSocket) {
  let on: libc::c_int = 1;
  // SAFETY: passes a live c_int and its size.
  let rc = unsafe {
    libc::setsockopt(
      sock.as_raw_fd(),
      libc::IPPROTO_IP,
      libc::IP_RECVERR,
      &on as *const libc::c_int as *const libc::c_void,
      std::mem::size_of::<libc::c_int>() as libc::socklen_t,
    )
  };
  assert_eq!(rc, 0);
}

#[test]
fn the_slab_is_made_only_when_the_first_datagram_is_read() {
  let (rx, s, port) = receiver(WINDOW);
  let mut r = reader(8);
  assert!(r.slab.is_none(), "a socket that receives nothing has no slab");
  s.reading.store(false, SeqCst);
  let (_, seen) = wake(&mut r, &s, Ready { writable: true, ..Ready::default() });
  assert!(seen.is_empty());
  assert!(r.slab.is_none(), "nor does one that only waits for writability");
  s.reading.store(true, SeqCst);
  send(1, port, &rx);
  wake(&mut r, &s, READABLE);
  assert!(r.slab.is_some());
}

#[test]
fn a_lone_datagram_is_delivered_at_once_and_asks_for_no_window() {
  let (rx, s, port) = receiver(WINDOW);
  let mut r = reader(8);
  send(1, port, &rx);
  let (next, seen) = wake(&mut r, &s, READABLE);
  assert_eq!(seen, [Seen::Batch(1)]);
  assert_eq!(next, Some(Next::Poll), "no backlog: the next datagram is read as soon as it comes");
}

#[test]
fn a_backlog_is_delivered_at_once_then_the_socket_waits_one_window() {
  let (rx, s, port) = receiver(WINDOW);
  let mut r = reader(8);
  send(5, port, &rx);
  let (next, seen) = wake(&mut r, &s, READABLE);
  assert_eq!(seen, [Seen::Batch(5)], "what is queued is not held back");
  assert_eq!(next, Some(Next::Wait(WINDOW)), "traffic faster than one per wake-up: gather the next batch");
  // The window ends with nothing new: back to immediate delivery.
  let (next, seen) = wake(&mut r, &s, READABLE);
  assert!(seen.is_empty());
  assert_eq!(next, Some(Next::Poll));
}

#[test]
fn a_backlog_the_handler_answered_does_not_wait() {
  let (rx, s, port) = receiver(WINDOW);
  let mut r = reader(8);
  send(5, port, &rx);
  let next = r.on_ready(&s, READABLE, &mut |e| {
    if let Event::Batch(b) = e {
      // What a request/response server does: answer from the same socket.
      Counters::add(&s.counters.datagrams_sent, b.count as u64);
    }
    Delivery::Queued
  });
  assert_eq!(next, Some(Next::Poll), "a responder's next requests are read as soon as they come");
}

#[test]
fn without_a_coalescing_window_a_backlog_does_not_wait() {
  let (rx, s, port) = receiver(Duration::ZERO);
  let mut r = reader(8);
  send(5, port, &rx);
  assert_eq!(wake(&mut r, &s, READABLE), (Some(Next::Poll), vec![Seen::Batch(5)]));
}

#[test]
fn full_batches_are_read_back_to_back_up_to_the_per_wake_limit() {
  let (rx, s, port) = receiver(WINDOW);
  let mut r = reader(4);
  send(4 * MAX_BATCHES_PER_WAKE + 3, port, &rx);
  let (next, seen) = wake(&mut r, &s, READABLE);
  assert_eq!(seen.len(), MAX_BATCHES_PER_WAKE);
  assert!(seen.iter().all(|x| *x == Seen::Batch(4)));
  assert_eq!(next, Some(Next::Poll), "stopped at the limit with more queued: straight back through poll");
  let (_, seen) = wake(&mut r, &s, READABLE);
  assert_eq!(seen, [Seen::Batch(3)]);
}

#[test]
fn a_close_from_a_handler_stops_the_wake_up() {
  let (rx, s, port) = receiver(WINDOW);
  let mut r = reader(2);
  send(6, port, &rx);
  let mut calls = 0;
  let next = r.on_ready(&s, READABLE, &mut |_| {
    calls += 1;
    s.stop.store(true, SeqCst);
    Delivery::Closed
  });
  assert_eq!(next, None);
  assert_eq!(calls, 1, "no batch after the close");
  assert_eq!(wake(&mut r, &s, READABLE), (None, vec![]), "a stopped socket is never read again");
}

#[test]
fn paused_reading_leaves_datagrams_queued() {
  let (rx, s, port) = receiver(WINDOW);
  let mut r = reader(8);
  send(2, port, &rx);
  s.reading.store(false, SeqCst);
  assert_eq!(wake(&mut r, &s, READABLE), (Some(Next::Poll), vec![]));
  s.reading.store(true, SeqCst);
  assert_eq!(wake(&mut r, &s, READABLE).1, [Seen::Batch(2)]);
}

#[test]
fn writability_is_reported_once_per_request() {
  let (_rx, s, _) = receiver(WINDOW);
  let mut r = reader(8);
  let w = Ready { writable: true, ..Ready::default() };
  assert_eq!(wake(&mut r, &s, w).1, [], "not asked for");
  s.want_writable.store(true, SeqCst);
  assert_eq!(wake(&mut r, &s, w).1, [Seen::Writable]);
  assert_eq!(wake(&mut r, &s, w).1, [], "once");
}

#[test]
fn an_icmp_error_with_ip_recverr_is_reported_once() {
  let (rx, s, port) = receiver(WINDOW);
  recverr(&rx);
  let mut r = reader(8);
  rx.send_to(b"to nobody", ("127.0.0.1", dead_port())).unwrap();
  let err = Ready { error: true, ..Ready::default() };
  assert_eq!(wake(&mut r, &s, err).1, [Seen::Error(libc::ECONNREFUSED)]);
  send(1, port, &rx);
  assert_eq!(wake(&mut r, &s, READABLE).1, [Seen::Batch(1)], "no second report of the same error");
  assert_eq!(s.counters.recv_errors.load(Relaxed), 1);
}

#[test]
fn an_error_while_paused_is_still_reported() {
  let (rx, s, _) = receiver(WINDOW);
  rx.connect(("127.0.0.1", dead_port())).unwrap();
  s.reading.store(false, SeqCst);
  let mut r = reader(8);
  rx.send(b"to nobody").unwrap();
  let err = Ready { error: true, ..Ready::default() };
  assert_eq!(wake(&mut r, &s, err).1, [Seen::Error(libc::ECONNREFUSED)]);
}

#[test]
fn persistent_errors_back_off_and_a_clean_wake_up_resets_the_count() {
  let (rx, s, _) = receiver(WINDOW);
  rx.connect(("127.0.0.1", dead_port())).unwrap();
  let mut r = reader(8);
  let err = Ready { error: true, ..Ready::default() };
  let mut nexts = Vec::new();
  for _ in 0..=MAX_CONSECUTIVE_ERRORS + 1 {
    rx.send(b"to nobody").unwrap();
    let (next, seen) = wake(&mut r, &s, err);
    assert_eq!(seen, [Seen::Error(libc::ECONNREFUSED)]);
    nexts.push(next);
  }
  assert_eq!(nexts.last(), Some(&Some(Next::Wait(ERROR_BACKOFF))), "errors in a row back off");
  assert_eq!(nexts[0], Some(Next::Poll));
  assert!(s.backoffs.load(Relaxed) >= 1);
  s.want_writable.store(true, SeqCst);
  let (next, _) = wake(&mut r, &s, Ready { writable: true, ..Ready::default() });
  assert_eq!(next, Some(Next::Poll), "a clean wake-up resets the streak");
}

//! Receiving: drains the socket into batches, counts them and hands each to JS.

use std::io;
use std::sync::atomic::Ordering::*;

use super::errors::report_error_queue;
use super::{errno_of, Delivery, Event, Shared, MAX_BATCHES_PER_WAKE};
use crate::batch::FLAG_TRUNCATED;
use crate::recv::RecvSlab;
use crate::stats::Counters;

/// How a [`drain`] ended.
pub(super) enum Drained {
  /// The socket is empty, reading was paused, or enough batches were read for one wake-up.
  Ok,
  /// A receive error was reported.
  Errored,
  /// The socket was closed: the fd must not be touched again.
  Closed,
}

/// Receives up to [`MAX_BATCHES_PER_WAKE`] batches, each delivered as soon as it is read,
/// until the socket is empty or reading is paused. Also returns whether this wake-up found a
/// backlog worth coalescing: at least two datagrams, and the socket drained (a wake-up that
/// stopped at the batch limit comes straight back through poll instead).
pub(super) fn drain(
  shared: &Shared,
  slab: &mut RecvSlab,
  sink: &mut impl FnMut(Event) -> Delivery,
  syscall: &'static str,
) -> (Drained, bool) {
  let cap = slab.capacity();
  let mut total = 0usize;
  for _ in 0..MAX_BATCHES_PER_WAKE {
    if !shared.reading.load(Relaxed) || shared.stop.load(Relaxed) {
      return (Drained::Ok, false);
    }
    let r = loop {
      let r = slab.receive(shared.fd(), shared.mode, 0, cap);
      Counters::add(&shared.counters.recv_syscalls, slab.last_syscalls);
      match r {
        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
        r => break r,
      }
    };
    let n = match r {
      Ok(n) => n,
      Err(e) if e.kind() == io::ErrorKind::WouldBlock => return (Drained::Ok, total >= 2),
      Err(e) => {
        // An ICMP error, or an error parked by the kernel after an earlier partial batch:
        // report it; the socket stays open.
        return match report_error_queue(shared, sink, Some(errno_of(&e)), syscall) {
          Some(true) => (Drained::Errored, false),
          Some(false) => (Drained::Ok, false),
          None => (Drained::Closed, false),
        };
      }
    };
    total += n;
    if n > 0 && deliver(shared, slab, n, sink) == Delivery::Closed {
      return (Drained::Closed, false);
    }
    if n < cap {
      return (Drained::Ok, total >= 2);
    }
  }
  (Drained::Ok, false)
}

/// Compacts the `n` received slots into a batch, counts it and hands it to JS.
fn deliver(
  shared: &Shared,
  slab: &mut RecvSlab,
  n: usize,
  sink: &mut impl FnMut(Event) -> Delivery,
) -> Delivery {
  let batch = slab.take(n);
  let c = &shared.counters;
  let count = batch.count as usize;
  let flags = batch.layout().flags();
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
  sink(Event::Batch(batch))
}

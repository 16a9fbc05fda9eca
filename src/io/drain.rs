//! Receiving: drains the socket into batches (coalescing partial ones for up to
//! `Shared::coalesce`), counts them, and offers them to the sink.

use std::io;
use std::sync::atomic::Ordering::*;
use std::time::Instant;

use super::errors::report_error_queue;
use super::{offer, Delivery, Event, Shared};
use crate::batch::{MetaLayout, FLAG_TRUNCATED};
use crate::recv::RecvSlab;
use crate::stats::Counters;

/// How a [`drain`] ended.
pub(super) enum Drained {
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
pub(super) fn drain(
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

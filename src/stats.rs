//! Counters shared by the I/O thread and the JS thread. Relaxed atomics: each counter is
//! exact, but a snapshot is not taken atomically across counters.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Live counters of one socket.
#[derive(Default)]
pub struct Counters {
  pub datagrams_received: AtomicU64,
  pub bytes_received: AtomicU64,
  pub batches_received: AtomicU64,
  pub truncated: AtomicU64,
  /// Receives the kernel had coalesced with GRO (each split back into its datagrams).
  pub gro_receives: AtomicU64,
  /// Sends that carried several datagrams as one GSO super-datagram.
  pub gso_sends: AtomicU64,
  /// Times GSO failed on this socket and was turned off (the datagrams were resent without).
  pub gso_fallbacks: AtomicU64,
  pub recv_syscalls: AtomicU64,
  pub recv_errors: AtomicU64,
  /// Kernel's cumulative count of datagrams dropped for this socket (buffer full).
  pub kernel_drops: AtomicU64,
  pub datagrams_sent: AtomicU64,
  pub bytes_sent: AtomicU64,
  pub send_syscalls: AtomicU64,
  pub send_retries: AtomicU64,
  pub send_errors: AtomicU64,
  /// Events (errors) that could not be queued to JS because its queue was full.
  pub events_dropped: AtomicU64,
}

impl Counters {
  pub fn add(c: &AtomicU64, v: u64) {
    c.fetch_add(v, Relaxed);
  }
  pub fn get(c: &AtomicU64) -> u64 {
    c.load(Relaxed)
  }
  /// Raises `c` to `v` if `v` is larger (for cumulative kernel readings).
  pub fn raise(c: &AtomicU64, v: u64) {
    c.fetch_max(v, Relaxed);
  }
}

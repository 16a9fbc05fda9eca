//! Counters of one socket, kept on the JS thread (atomics so the types stay Sync). Relaxed atomics: each counter is
//! exact, but a snapshot is not taken atomically across counters.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Live counters of one socket.
#[derive(Default)]
pub struct Counters {
  /// Datagrams delivered to JS (after GRO splitting).
  pub datagrams_received: AtomicU64,
  /// Payload bytes delivered to JS.
  pub bytes_received: AtomicU64,
  /// Batches delivered to JS.
  pub batches_received: AtomicU64,
  /// Datagrams cut to the slot size.
  pub truncated: AtomicU64,
  /// Datagrams whose control data the kernel cut (`MSG_CTRUNC`): delivered without any of it.
  pub control_truncated: AtomicU64,
  /// Receives the kernel had coalesced with GRO (each split back into its datagrams).
  pub gro_receives: AtomicU64,
  /// Sends that carried several datagrams as one GSO super-datagram.
  pub gso_sends: AtomicU64,
  /// Times GSO failed on this socket and was turned off (the datagrams were resent without).
  pub gso_fallbacks: AtomicU64,
  /// Receive system calls made.
  pub recv_syscalls: AtomicU64,
  /// Receive errors reported to JS (or dropped and counted in `events_dropped`).
  pub recv_errors: AtomicU64,
  /// Error-queue entries that were not errors (transmit timestamps, zerocopy completions).
  pub error_queue_notices: AtomicU64,
  /// Kernel's cumulative count of datagrams dropped for this socket (buffer full).
  pub kernel_drops: AtomicU64,
  /// Datagrams handed to the kernel.
  pub datagrams_sent: AtomicU64,
  /// Payload bytes handed to the kernel.
  pub bytes_sent: AtomicU64,
  /// Send system calls made.
  pub send_syscalls: AtomicU64,
  /// Sends that found the send buffer full.
  pub send_retries: AtomicU64,
  /// Sends that failed with an errno error.
  pub send_errors: AtomicU64,
  /// Events (errors) that could not be queued to JS because its queue was full.
  pub events_dropped: AtomicU64,
}

impl Counters {
  /// Adds `v` to `c`.
  pub fn add(c: &AtomicU64, v: u64) {
    c.fetch_add(v, Relaxed);
  }
  /// Raises `c` to `v` if `v` is larger (for cumulative kernel readings).
  pub fn raise(c: &AtomicU64, v: u64) {
    c.fetch_max(v, Relaxed);
  }
}

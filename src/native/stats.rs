//! Counters: what `stats()` returns, and the kernel facts read for it (`SO_MEMINFO`).

use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;

use napi_derive::napi;
use socket2::Socket;

use super::NativeSocket;
use crate::stats::Counters;

/// Counters of one socket (cumulative since it was opened).
#[napi(object)]
pub struct NativeStats {
  /// Datagrams delivered to JS (after GRO splitting).
  pub datagrams_received: f64,
  /// Payload bytes delivered to JS.
  pub bytes_received: f64,
  /// Batches delivered to JS.
  pub batches_received: f64,
  /// Datagrams that arrived cut to `maxDatagramSize`.
  pub truncated: f64,
  /// Receive system calls made (`recvmmsg`, or `recvmsg` on the portable path).
  pub recv_syscalls: f64,
  /// Receive errors reported (ICMP errors, errors parked after a partial batch, error queue).
  pub recv_errors: f64,
  /// The kernel's count of datagrams dropped for this socket because its buffer was full.
  pub kernel_drops: f64,
  /// Datagrams handed to the kernel.
  pub datagrams_sent: f64,
  /// Payload bytes handed to the kernel.
  pub bytes_sent: f64,
  /// Send system calls made (`sendmmsg`, or `sendmsg` on the portable path).
  pub send_syscalls: f64,
  /// Times a send found the send buffer full and waited for room.
  pub send_retries: f64,
  /// Sends that failed with an errno error.
  pub send_errors: f64,
  /// Receive errors not queued to JS because 64 were already waiting.
  pub events_dropped: f64,
  /// Bytes waiting in the kernel receive queue now (Linux, `SO_MEMINFO`).
  pub recv_queue_bytes: f64,
  /// Receives the kernel had coalesced with GRO and that were split back into datagrams.
  pub gro_receives: f64,
  /// Datagrams whose control data the kernel cut (`MSG_CTRUNC`, too many receive options
  /// enabled with `setSocketOption`): they are delivered without local address, timestamp
  /// or TOS rather than with part of them.
  pub control_truncated: f64,
  /// Entries on the socket error queue that were not errors (transmit timestamps, zerocopy
  /// completions): read and discarded, never reported as errors.
  pub error_queue_notices: f64,
  /// GSO sends (one system call entry carrying several datagrams).
  pub gso_sends: f64,
  /// Times the kernel refused a GSO send that then went through as plain sends: a segment over
  /// the path MTU (later runs keep below it) or no GSO on the path (GSO turns off).
  pub gso_fallbacks: f64,
}

/// The counters in the order `closeSocket` writes them (`NativeStats` fields, camelCase),
/// exported as `statsSlots()` so `lib/native.ts` reads them without a copy of this list.
pub const STATS_SLOTS: [&str; 19] = [
  "datagramsReceived",
  "bytesReceived",
  "batchesReceived",
  "truncated",
  "recvSyscalls",
  "recvErrors",
  "kernelDrops",
  "datagramsSent",
  "bytesSent",
  "sendSyscalls",
  "sendRetries",
  "sendErrors",
  "eventsDropped",
  "recvQueueBytes",
  "groReceives",
  "controlTruncated",
  "errorQueueNotices",
  "gsoSends",
  "gsoFallbacks",
];

/// The names of the counters `closeSocket` writes, in order.
#[napi]
pub fn stats_slots() -> Vec<String> {
  STATS_SLOTS.iter().map(|s| s.to_string()).collect()
}

#[napi]
impl NativeSocket {
  /// Counters since the socket was opened; after close, the final counts (nothing queued).
  #[napi]
  pub fn stats(&self) -> NativeStats {
    self
      .open_with(|o| {
        let meminfo = read_meminfo(&o.socket);
        if let Some(m) = &meminfo {
          Counters::raise(&o.shared.counters.kernel_drops, m.drops);
        }
        Ok(NativeStats::from_counters(&o.shared.counters, meminfo))
      })
      .unwrap_or_else(|_| NativeStats::from_counters(&self.shared.counters, None))
  }
}

/// Reads the kernel's drop counter one last time before the socket closes.
pub(super) fn final_drops(socket: &socket2::Socket, counters: &Counters) {
  if let Some(m) = read_meminfo(socket) {
    Counters::raise(&counters.kernel_drops, m.drops);
  }
}

/// What `SO_MEMINFO` tells: the kernel's drop counter and the bytes queued for reading.
struct MemInfo {
  drops: u64,
  queued: u64,
}

#[cfg(target_os = "linux")]
/// Reads `SO_MEMINFO`; None where the kernel does not provide it.
fn read_meminfo(s: &Socket) -> Option<MemInfo> {
  let mut v = [0u32; 16];
  let mut len = std::mem::size_of_val(&v) as libc::socklen_t;
  // SAFETY: passes a live u32 array and its size; the kernel writes at most `len` bytes.
  let rc = unsafe {
    libc::getsockopt(
      s.as_raw_fd(),
      libc::SOL_SOCKET,
      crate::linux::SO_MEMINFO,
      v.as_mut_ptr() as *mut libc::c_void,
      &mut len,
    )
  };
  let have = len as usize / 4;
  (rc == 0 && have > crate::linux::SK_MEMINFO_DROPS).then(|| MemInfo {
    drops: v[crate::linux::SK_MEMINFO_DROPS] as u64,
    queued: v[crate::linux::SK_MEMINFO_RMEM_ALLOC] as u64,
  })
}

#[cfg(not(target_os = "linux"))]
/// Reads `SO_MEMINFO`; None where the kernel does not provide it.
fn read_meminfo(_s: &Socket) -> Option<MemInfo> {
  None
}

/// The final counts of `c` (nothing queued once closed), in the order of [`STATS_SLOTS`].
pub(super) fn final_slots(c: &Counters) -> [f64; STATS_SLOTS.len()] {
  let s = NativeStats::from_counters(c, None);
  [
    s.datagrams_received,
    s.bytes_received,
    s.batches_received,
    s.truncated,
    s.recv_syscalls,
    s.recv_errors,
    s.kernel_drops,
    s.datagrams_sent,
    s.bytes_sent,
    s.send_syscalls,
    s.send_retries,
    s.send_errors,
    s.events_dropped,
    s.recv_queue_bytes,
    s.gro_receives,
    s.control_truncated,
    s.error_queue_notices,
    s.gso_sends,
    s.gso_fallbacks,
  ]
}

impl NativeStats {
  /// The counters `c` (and the queue length from `m`) as JS numbers.
  fn from_counters(c: &Counters, m: Option<MemInfo>) -> Self {
    let g = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed) as f64;
    NativeStats {
      datagrams_received: g(&c.datagrams_received),
      bytes_received: g(&c.bytes_received),
      batches_received: g(&c.batches_received),
      truncated: g(&c.truncated),
      recv_syscalls: g(&c.recv_syscalls),
      recv_errors: g(&c.recv_errors),
      kernel_drops: g(&c.kernel_drops),
      datagrams_sent: g(&c.datagrams_sent),
      bytes_sent: g(&c.bytes_sent),
      send_syscalls: g(&c.send_syscalls),
      send_retries: g(&c.send_retries),
      send_errors: g(&c.send_errors),
      events_dropped: g(&c.events_dropped),
      gro_receives: g(&c.gro_receives),
      control_truncated: g(&c.control_truncated),
      error_queue_notices: g(&c.error_queue_notices),
      gso_sends: g(&c.gso_sends),
      gso_fallbacks: g(&c.gso_fallbacks),
      recv_queue_bytes: m.map_or(0.0, |m| m.queued as f64),
    }
  }
}

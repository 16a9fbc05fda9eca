//! Events on their way to JS: the [`NativeEvent`] object the JS callback receives (made by
//! [`to_native_event`] and passed by `crate::io::watch`), and the constants JS needs to read
//! them (event kinds, and the batch metadata layout of `crate::batch`, exported so that
//! `lib/batch.ts` holds no copy of it).

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::batch::{self, MetaLayout};
use crate::io::Event;

/// `NativeEvent.kind` of a received batch: `data` is the metadata then the payloads (see
/// `batchLayout()`), `count` the datagrams in it.
#[napi]
pub const EVENT_BATCH: u32 = 0;
/// `NativeEvent.kind` of a receive error: `errno` and `syscall` say which.
#[napi]
pub const EVENT_ERROR: u32 = 1;
/// `NativeEvent.kind` sent once after `requestWritable()` when the send buffer has room.
#[napi]
pub const EVENT_WRITABLE: u32 = 2;

/// One event of the socket, as the dispatch callback receives it (one per batch, not per
/// datagram). Fields that do not apply to the kind are null / 0.
#[napi(object)]
pub struct NativeEvent {
  /// `EVENT_BATCH`, `EVENT_ERROR` or `EVENT_WRITABLE`.
  pub kind: u32,
  /// For a batch: its metadata then its payloads, in one buffer (see `batchLayout()`).
  pub data: Option<Buffer>,
  /// For a batch: the number of datagrams in it.
  pub count: u32,
  /// For a batch: the kernel's cumulative drop counter for the socket, or -1 when unknown.
  pub kernel_drops: f64,
  /// For an error: its errno (positive).
  pub errno: i32,
  /// For an error: the system call that failed.
  pub syscall: Option<String>,
}

/// Where each section of a batch's metadata starts, as a multiple of the batch's datagram
/// count `n` (section `s` of a batch of `n` datagrams starts at byte `s * n`), and the flag
/// bits of the `flags` section. Every section is aligned for its element type.
#[napi(object)]
pub struct BatchLayout {
  /// Metadata bytes per datagram; the payloads start at `bytesPerDatagram * n`.
  pub bytes_per_datagram: u32,
  /// Kernel receive times, u64 nanoseconds since the Unix epoch.
  pub timestamps: u32,
  /// Payload lengths, u32.
  pub lengths: u32,
  /// Payload offsets from the start of the payloads, u32.
  pub offsets: u32,
  /// IPv6 scope ids of the sources, u32.
  pub scopes: u32,
  /// Interface indexes the datagrams arrived on, u32.
  pub ifindexes: u32,
  /// Source ports, u16.
  pub ports: u32,
  /// Source address families, u8 (4 or 6).
  pub families: u32,
  /// Flag bits, u8 (`flagTruncated`, `flagLocal`, `flagTimestamp`, `flagTos`).
  pub flags: u32,
  /// TOS / traffic class bytes, u8.
  pub tos: u32,
  /// Local (destination) address families, u8 (4 or 6).
  pub local_families: u32,
  /// Source addresses, 16 bytes each (IPv4 in the first four).
  pub addresses: u32,
  /// Local (destination) addresses, 16 bytes each.
  pub local_addresses: u32,
  /// Flag: the datagram was longer than the receive slot and was cut.
  pub flag_truncated: u32,
  /// Flag: the local address and interface index are known.
  pub flag_local: u32,
  /// Flag: the receive timestamp is known.
  pub flag_timestamp: u32,
  /// Flag: the TOS / traffic class byte is known.
  pub flag_tos: u32,
}

/// The metadata layout of received batches (read it once; it never changes).
#[napi]
pub fn batch_layout() -> BatchLayout {
  // Offsets for one datagram are the multipliers.
  let one = MetaLayout { count: 1 };
  let u = |v: usize| v as u32;
  BatchLayout {
    bytes_per_datagram: u(batch::META_BYTES_PER_DATAGRAM),
    timestamps: u(one.timestamps()),
    lengths: u(one.lengths()),
    offsets: u(one.offsets()),
    scopes: u(one.scopes()),
    ifindexes: u(one.ifindexes()),
    ports: u(one.ports()),
    families: u(one.families()),
    flags: u(one.flags()),
    tos: u(one.tos()),
    local_families: u(one.local_families()),
    addresses: u(one.addresses()),
    local_addresses: u(one.local_addresses()),
    flag_truncated: batch::FLAG_TRUNCATED as u32,
    flag_local: batch::FLAG_LOCAL as u32,
    flag_timestamp: batch::FLAG_TIMESTAMP as u32,
    flag_tos: batch::FLAG_TOS as u32,
  }
}

/// Converts one event for the JS dispatch function.
pub fn to_native_event(event: Event) -> NativeEvent {
  let mut out =
    NativeEvent { kind: EVENT_WRITABLE, data: None, count: 0, kernel_drops: 0.0, errno: 0, syscall: None };
  match event {
    Event::Batch(b) => {
      out.kind = EVENT_BATCH;
      out.count = b.count;
      out.kernel_drops = b.kernel_drops.map_or(-1.0, |d| d as f64);
      // Empty when the caller took the bytes to copy them itself (see `crate::io::watch`).
      out.data = (!b.bytes.is_empty()).then(|| Buffer::from(b.bytes));
    }
    Event::Error(e) => {
      out.kind = EVENT_ERROR;
      out.errno = e.errno;
      out.syscall = Some(e.syscall.to_string());
    }
    Event::Writable => {}
  }
  out
}

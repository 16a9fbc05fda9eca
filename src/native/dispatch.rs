//! Events on their way to JS: the dispatch callback's arguments (made by [`event_args`] and
//! passed by `crate::io::watch`), and the constants JS needs to read
//! them (event kinds, and the batch metadata layout of `crate::batch`, exported so that
//! `lib/batch.ts` holds no copy of it).

use napi::bindgen_prelude::*;
use napi::sys;
use napi_derive::napi;

use crate::batch::{self, MetaLayout};
use crate::io::Event;

/// Dispatch `kind` of a received batch: `data` is the metadata (full layout) then the
/// payloads (see `batchLayout()`), `count` the datagrams in it.
#[napi]
pub const EVENT_BATCH: u32 = 0;
/// Dispatch `kind` of a received batch whose metadata has the compact layout (`compact*` in
/// `batchLayout()`); otherwise as `EVENT_BATCH`.
#[napi]
pub const EVENT_BATCH_COMPACT: u32 = 3;
/// Dispatch `kind` of a small received batch (full layout) that landed in the environment's
/// landing buffer (`landing`): `data` is that buffer, its first `errno` bytes the batch. The
/// dispatch function must copy them out before anything else runs.
#[napi]
pub const EVENT_BATCH_LANDED: u32 = 4;
/// As `EVENT_BATCH_LANDED`, for the compact metadata layout.
#[napi]
pub const EVENT_BATCH_COMPACT_LANDED: u32 = 5;
/// Dispatch `kind` of a receive error: `errno` and `syscall` say which.
#[napi]
pub const EVENT_ERROR: u32 = 1;
/// Dispatch `kind` sent once after `requestWritable()` when the send buffer has room.
#[napi]
pub const EVENT_WRITABLE: u32 = 2;

// The dispatch callback's parameter list (the constructor's `ts_arg_type` spells it). One call per
// event (a batch, not a datagram), its values positional rather than an object: an object
// with named properties cost a property-name lookup per field on every event.
// - `kind`: `EVENT_BATCH`, `EVENT_BATCH_COMPACT` (or their `_LANDED` forms), `EVENT_ERROR` or
//   `EVENT_WRITABLE`;
// - `data`: for a batch, its metadata then its payloads in one buffer (see `batchLayout()`);
//   for a landed batch, the landing buffer (the batch is its first `errno` bytes); otherwise
//   null;
// - `count`: for a batch, the number of datagrams in it; otherwise 0;
// - `kernelDrops`: for a batch, the kernel's cumulative drop counter for the socket, or -1
//   when unknown; otherwise -1;
// - `errno`, `syscall`: for an error, its errno (positive) and the system call that failed;
//   for a landed batch, `errno` is its length in bytes; absent for other kinds.

/// Where each section of a batch's metadata starts, as a multiple of the batch's datagram
/// count `n` (section `s` of a batch of `n` datagrams starts at byte `s * n`), and the flag
/// bits of the `flags` section. Every section is aligned for its element type. The `compact*`
/// fields describe the compact layout (`EVENT_BATCH_COMPACT`): IPv4 sources in 4 bytes each
/// and no timestamps, scope ids, interface indexes, TOS or local addresses.
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
  /// Compact layout: metadata bytes per datagram.
  pub compact_bytes_per_datagram: u32,
  /// Compact layout: payload lengths, u32.
  pub compact_lengths: u32,
  /// Compact layout: payload offsets, u32.
  pub compact_offsets: u32,
  /// Compact layout: source IPv4 addresses, 4 bytes each.
  pub compact_addresses: u32,
  /// Compact layout: source ports, u16.
  pub compact_ports: u32,
  /// Compact layout: source address families, u8.
  pub compact_families: u32,
  /// Compact layout: flag bits, u8.
  pub compact_flags: u32,
}

/// The metadata layout of received batches (read it once; it never changes).
#[napi]
pub fn batch_layout() -> BatchLayout {
  // Offsets for one datagram are the multipliers.
  let one = MetaLayout::full(1);
  let x = batch::ExtraSections::of_full(1);
  let c = MetaLayout::compact(1);
  let u = |v: usize| v as u32;
  BatchLayout {
    bytes_per_datagram: u(one.total()),
    timestamps: u(x.timestamps),
    lengths: u(one.lengths()),
    offsets: u(one.offsets()),
    scopes: u(x.scopes),
    ifindexes: u(x.ifindexes),
    ports: u(one.ports()),
    families: u(one.families()),
    flags: u(one.flags()),
    tos: u(x.tos),
    local_families: u(x.local_families),
    addresses: u(one.addresses()),
    local_addresses: u(x.local_addresses),
    flag_truncated: batch::FLAG_TRUNCATED as u32,
    flag_local: batch::FLAG_LOCAL as u32,
    flag_timestamp: batch::FLAG_TIMESTAMP as u32,
    flag_tos: batch::FLAG_TOS as u32,
    compact_bytes_per_datagram: u(c.total()),
    compact_lengths: u(c.lengths()),
    compact_offsets: u(c.offsets()),
    compact_addresses: u(c.addresses()),
    compact_ports: u(c.ports()),
    compact_families: u(c.families()),
    compact_flags: u(c.flags()),
  }
}

/// Builds the dispatch callback's arguments for `event` (listed above) in the
/// current handle scope; returns how many of `argv` were filled, or None when N-API failed.
/// A batch's bytes are copied when `copy` is set (into the environment's landing buffer, or
/// else into a V8-owned buffer of their own), else handed over as an external buffer.
///
/// # Safety
/// Call on `env`'s JS thread inside an open handle scope; the values live as long as it.
pub unsafe fn event_args(
  env: sys::napi_env,
  event: Event,
  copy: bool,
  argv: &mut [sys::napi_value; 6],
) -> Option<usize> {
  let ok = |s: sys::napi_status| (s == sys::Status::napi_ok).then_some(());
  // SAFETY: (all calls) the caller's contract; every out-pointer is a live local.
  unsafe {
    let (mut kind, count, drops) = match &event {
      Event::Batch(b) => (
        if b.compact { EVENT_BATCH_COMPACT } else { EVENT_BATCH },
        b.count,
        b.kernel_drops.map_or(-1.0, |d| d as f64),
      ),
      Event::Error(_) => (EVENT_ERROR, 0, -1.0),
      Event::Writable => (EVENT_WRITABLE, 0, -1.0),
    };
    ok(sys::napi_create_uint32(env, count, &mut argv[2]))?;
    ok(sys::napi_create_double(env, drops, &mut argv[3]))?;
    let argc = match event {
      Event::Batch(b) if copy => match super::landing::land(env, &b.bytes) {
        Some(landing) => {
          kind = if b.compact { EVENT_BATCH_COMPACT_LANDED } else { EVENT_BATCH_LANDED };
          argv[1] = landing;
          ok(sys::napi_create_uint32(env, b.bytes.len() as u32, &mut argv[4]))?;
          5
        }
        None => {
          let mut data = std::ptr::null_mut();
          ok(sys::napi_create_buffer_copy(
            env,
            b.bytes.len(),
            b.bytes.as_ptr().cast(),
            &mut data,
            &mut argv[1],
          ))?;
          4
        }
      },
      Event::Batch(b) => {
        argv[1] = Buffer::to_napi_value(env, Buffer::from(b.bytes)).ok()?;
        4
      }
      Event::Error(e) => {
        ok(sys::napi_get_null(env, &mut argv[1]))?;
        ok(sys::napi_create_int32(env, e.errno, &mut argv[4]))?;
        let name = e.syscall;
        ok(sys::napi_create_string_utf8(env, name.as_ptr().cast(), name.len() as isize, &mut argv[5]))?;
        6
      }
      Event::Writable => {
        ok(sys::napi_get_null(env, &mut argv[1]))?;
        4
      }
    };
    ok(sys::napi_create_uint32(env, kind, &mut argv[0]))?;
    Some(argc)
  }
}

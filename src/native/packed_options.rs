//! The constructor's options as they cross the boundary: the numbers and flags packed into one
//! `Float64Array`, in the order [`OPTION_SLOTS`] gives (exported as `optionSlots()`, so
//! `lib/native.ts` packs them without a copy of this list), the strings and the steering object
//! beside it. Reading ~25 named properties of an options object, one N-API call and one
//! property-name lookup each, was the largest single cost of creating a socket.
//!
//! Encoding of a slot: a number as itself, a flag as 1 or 0, an absent optional value as NaN.

use napi_derive::napi;

use super::options::NativeOptions;
use crate::error::{invalid_arg, NResult};
use crate::steering::SteeringOptions;

/// The packed slots, in order. Each is the `NativeOptions` field of the same (camelCase) name.
pub const OPTION_SLOTS: [&str; 24] = [
  "port",
  "ipv6",
  "ipv6Only",
  "reuseAddr",
  "reusePort",
  "broadcast",
  "recvBufferSize",
  "sendBufferSize",
  "forceBufferSize",
  "ttl",
  "batchSize",
  "maxDatagramSize",
  "maxPendingBatches",
  "coalesceMicros",
  "connectPort",
  "portable",
  "gso",
  "gro",
  "pktinfo",
  "timestamps",
  "recvTos",
  "tos",
  "fd",
  "reading",
];

/// The names of the packed option slots, in the order the constructor reads them.
#[napi]
pub fn option_slots() -> Vec<String> {
  OPTION_SLOTS.iter().map(|s| s.to_string()).collect()
}

/// Reads the slots in order, checking each against [`OPTION_SLOTS`] (a reader out of step
/// with the list is a bug caught by the unit test below, not a silent misread).
struct Slots<'a> {
  values: &'a [f64],
  next: usize,
}

impl Slots<'_> {
  fn take(&mut self, name: &'static str) -> NResult<Option<f64>> {
    let i = self.next;
    if OPTION_SLOTS.get(i) != Some(&name) {
      return Err(invalid_arg("options", format!("slot {i} read as {name}: the reader is out of step")));
    }
    self.next += 1;
    let v = self.values[i];
    if v.is_nan() {
      return Ok(None);
    }
    if !v.is_finite() || v.fract() != 0.0 {
      return Err(invalid_arg(name, format!("must be an integer, got {v}")));
    }
    Ok(Some(v))
  }

  fn opt_u32(&mut self, name: &'static str) -> NResult<Option<u32>> {
    match self.take(name)? {
      None => Ok(None),
      Some(v) if (0.0..=u32::MAX as f64).contains(&v) => Ok(Some(v as u32)),
      Some(v) => Err(invalid_arg(name, format!("must be 0..{}, got {v}", u32::MAX))),
    }
  }

  fn u32(&mut self, name: &'static str) -> NResult<u32> {
    self.opt_u32(name)?.ok_or_else(|| invalid_arg(name, "is required"))
  }

  fn opt_i32(&mut self, name: &'static str) -> NResult<Option<i32>> {
    match self.take(name)? {
      None => Ok(None),
      Some(v) if (i32::MIN as f64..=i32::MAX as f64).contains(&v) => Ok(Some(v as i32)),
      Some(v) => Err(invalid_arg(name, format!("must be a 32-bit integer, got {v}"))),
    }
  }

  fn opt_bool(&mut self, name: &'static str) -> NResult<Option<bool>> {
    match self.take(name)? {
      None => Ok(None),
      Some(v) if v == 0.0 || v == 1.0 => Ok(Some(v == 1.0)),
      Some(v) => Err(invalid_arg(name, format!("must be 0 or 1 (a flag), got {v}"))),
    }
  }

  fn bool(&mut self, name: &'static str) -> NResult<bool> {
    self.opt_bool(name)?.ok_or_else(|| invalid_arg(name, "is required"))
  }
}

/// The options the constructor was given, unpacked and range-checked.
pub fn unpack(
  address: String,
  values: &[f64],
  connect_address: Option<String>,
  steering: Option<SteeringOptions>,
) -> NResult<NativeOptions> {
  // One more slot is the constructor's output (the socket's send key), never read here.
  if values.len() != OPTION_SLOTS.len() && values.len() != OPTION_SLOTS.len() + 1 {
    return Err(invalid_arg(
      "options",
      format!(
        "must hold {} slots (see optionSlots()), or one more for the send key, got {}",
        OPTION_SLOTS.len(),
        values.len()
      ),
    ));
  }
  let mut s = Slots { values, next: 0 };
  Ok(NativeOptions {
    address,
    port: s.u32("port")?,
    ipv6: s.bool("ipv6")?,
    ipv6_only: s.opt_bool("ipv6Only")?,
    reuse_addr: s.bool("reuseAddr")?,
    reuse_port: s.bool("reusePort")?,
    broadcast: s.bool("broadcast")?,
    recv_buffer_size: s.opt_u32("recvBufferSize")?,
    send_buffer_size: s.opt_u32("sendBufferSize")?,
    force_buffer_size: s.bool("forceBufferSize")?,
    ttl: s.opt_u32("ttl")?,
    batch_size: s.u32("batchSize")?,
    max_datagram_size: s.u32("maxDatagramSize")?,
    max_pending_batches: s.u32("maxPendingBatches")?,
    coalesce_micros: s.u32("coalesceMicros")?,
    connect_address,
    connect_port: s.opt_u32("connectPort")?,
    portable: s.bool("portable")?,
    gso: s.u32("gso")?,
    gro: s.bool("gro")?,
    pktinfo: s.bool("pktinfo")?,
    timestamps: s.bool("timestamps")?,
    recv_tos: s.bool("recvTos")?,
    tos: s.opt_u32("tos")?,
    fd: s.opt_i32("fd")?,
    reading: s.opt_bool("reading")?,
    steering,
  })
}

#[cfg(test)]
mod tests {
  use super::*;

  fn defaults() -> Vec<f64> {
    let mut v = vec![0.0; OPTION_SLOTS.len()];
    for (i, name) in OPTION_SLOTS.iter().enumerate() {
      v[i] = match *name {
        "ipv6Only" | "recvBufferSize" | "sendBufferSize" | "ttl" | "connectPort" | "tos" | "fd"
        | "reading" => f64::NAN,
        "batchSize" => 256.0,
        "maxDatagramSize" => 65507.0,
        "maxPendingBatches" => 4.0,
        _ => 0.0,
      };
    }
    v
  }

  #[test]
  fn the_reader_follows_the_slot_list_and_reads_every_slot() {
    let mut v = defaults();
    v[OPTION_SLOTS.iter().position(|n| *n == "port").unwrap_or(0)] = 4242.0;
    v[OPTION_SLOTS.iter().position(|n| *n == "fd").unwrap_or(0)] = 7.0;
    let o = unpack("127.0.0.1".into(), &v, None, None).expect("unpacks");
    assert_eq!(o.port, 4242);
    assert_eq!(o.fd, Some(7));
    assert_eq!(o.batch_size, 256);
    assert_eq!(o.max_datagram_size, 65507);
    assert_eq!(o.ipv6_only, None);
  }

  #[test]
  fn bad_slots_are_argument_errors_naming_the_option() {
    let mut v = defaults();
    v[OPTION_SLOTS.iter().position(|n| *n == "batchSize").unwrap_or(0)] = -1.0;
    assert!(unpack("127.0.0.1".into(), &v, None, None).is_err());
    let mut v = defaults();
    v[OPTION_SLOTS.iter().position(|n| *n == "gro").unwrap_or(0)] = 2.0;
    assert!(unpack("127.0.0.1".into(), &v, None, None).is_err());
    let mut v = defaults();
    v[OPTION_SLOTS.iter().position(|n| *n == "port").unwrap_or(0)] = 1.5;
    assert!(unpack("127.0.0.1".into(), &v, None, None).is_err());
    assert!(unpack("127.0.0.1".into(), &v[..3], None, None).is_err());
  }
}

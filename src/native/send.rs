//! Send marshalling: turns the packed batch `lib/pack.ts` builds into what `send::send` takes
//! (addresses parsed once per table entry, not per datagram), and counts the outcome.

use std::os::fd::AsRawFd;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use socket2::SockAddr;

use super::connection::{entry_error, port};
use super::options::NativeSendError;
use super::{NativeSocket, Open};
use crate::addr;
use crate::error::{invalid_arg, NResult};
use crate::recv::RecvMode;
use crate::send::{self, Packed};
use crate::stats::Counters;

#[napi]
impl NativeSocket {
  /// Sends at most `max_count` datagrams from `start` of a packed batch without blocking; see
  /// `lib/pack.ts` for the format. Returns how many went (a number, not an object: this is
  /// the per-send hot path). Fewer than asked means the send buffer is full or an error
  /// stopped the call: `lastSendError()` then tells which.
  #[allow(clippy::too_many_arguments)]
  #[napi]
  pub fn send(
    &self,
    env: Env,
    data: &[u8],
    part_lens: &[u32],
    parts_per_msg: Option<&[u32]>,
    dest_index: Option<&[u32]>,
    dest_addresses: Vec<String>,
    dest_ports: Vec<u32>,
    start: u32,
    max_count: u32,
    source_index: Option<&[u32]>,
    sources: Option<Vec<String>>,
    tos: Option<&[i32]>,
  ) -> Result<u32> {
    self.with(&env, |o| {
      let mut source_ips = Vec::new();
      for (k, a) in sources.iter().flatten().enumerate() {
        // Entry k of the source / destination table: the JS layer names the message it came from.
        let (ip, _) = addr::parse_ip(a).map_err(|e| entry_error(e, "source", k))?;
        source_ips.push(match ip {
          std::net::IpAddr::V4(v4) if o.ipv6 => std::net::IpAddr::V6(v4.to_ipv6_mapped()),
          other => other,
        });
      }
      if dest_addresses.len() != dest_ports.len() {
        return Err(invalid_arg("destination", "addresses and ports differ in length"));
      }
      let mut dests = Vec::with_capacity(dest_addresses.len());
      for (k, (a, &p)) in dest_addresses.iter().zip(dest_ports.iter()).enumerate() {
        dests.push(destination(o, a, p, k)?);
      }
      let packed = Packed {
        data,
        part_lens,
        parts_per_msg,
        dest_index,
        dests: &dests,
        source_index,
        sources: &source_ips,
        tos,
      };
      packed.validate().map_err(|reason| invalid_arg("batch", reason))?;
      if start as usize > packed.count() {
        return Err(invalid_arg("start", "is past the end of the batch"));
      }
      send_packed(o, &packed, start as usize, max_count as usize)
    })
  }

  /// Sends one datagram of one part to `address`:`port` (or to the connected peer when the
  /// address is null), without blocking: what `send` does for a batch of one, with three
  /// arguments to convert instead of eleven (the path of a server answering one query at a
  /// time). Returns 1 or 0, as `send` does.
  #[napi]
  pub fn send_one(&self, env: Env, data: &[u8], address: Option<String>, port: u32) -> Result<u32> {
    self.with(&env, |o| send_one_to(o, data, address.as_deref(), port))
  }

  /// The error that stopped the last `send` before all it was asked to send, or null when it
  /// stopped because the send buffer was full (or sent everything).
  #[napi]
  pub fn last_send_error(&self, env: Env) -> Result<Option<NativeSendError>> {
    self.with(&env, |o| {
      Ok(o.last_send_error.map(|e| NativeSendError { errno: e.errno, syscall: e.syscall.to_string() }))
    })
  }
}

/// Sends `data` as one datagram to `address`:`port` (the connected peer when `address` is
/// None): `sendOne`'s work, shared with `sendOneFast` (`send_fast`).
pub(super) fn send_one_to(o: &mut Open, data: &[u8], address: Option<&str>, port: u32) -> NResult<u32> {
  let dest = match address {
    Some(a) => Some(destination(o, a, port, 0)?),
    None => None,
  };
  let lens = [u32::try_from(data.len()).map_err(|_| invalid_arg("data", "is larger than 4 GiB"))?];
  let packed = Packed {
    data,
    part_lens: &lens,
    parts_per_msg: None,
    dest_index: None,
    dests: dest.as_slice(),
    source_index: None,
    sources: &[],
    tos: None,
  };
  send_packed(o, &packed, 0, 1)
}

/// Entry `k` of a destination table as a socket address of the socket's family (an IPv4
/// address becomes IPv4-mapped on an IPv6 socket).
fn destination(o: &Open, address: &str, p: u32, k: usize) -> NResult<SockAddr> {
  let sa = addr::socket_addr(address, port(p, "port")?).map_err(|e| entry_error(e, "destination", k))?;
  Ok(SockAddr::from(if o.ipv6 { addr::to_v6_mapped(sa) } else { sa }))
}

/// Sends datagrams `start..start + max` of a checked batch and counts the outcome; returns
/// how many went (`lastSendError()` tells why fewer did). An unconnected socket needs a
/// destination: without one, an argument error and nothing sent.
fn send_packed(o: &mut Open, packed: &Packed<'_>, start: usize, max: usize) -> NResult<u32> {
  if packed.dests.is_empty() && !o.connected && packed.count() > start {
    return Err(invalid_arg("destination", "is required on an unconnected socket"));
  }
  let batched = o.shared.mode == RecvMode::Batched;
  let end = start.saturating_add(max);
  let out = send::send(o.socket.as_raw_fd(), packed, start, end, batched, &mut o.scratch);
  let c = &o.shared.counters;
  Counters::add(&c.datagrams_sent, out.sent as u64);
  Counters::add(&c.bytes_sent, out.bytes);
  Counters::add(&c.send_syscalls, out.syscalls);
  Counters::add(&c.gso_sends, out.gso_sends);
  Counters::add(&c.gso_fallbacks, out.gso_fallbacks);
  if out.would_block {
    Counters::add(&c.send_retries, 1);
  }
  if out.error.is_some() {
    Counters::add(&c.send_errors, 1);
  }
  o.last_send_error = out.error;
  Ok(out.sent as u32)
}

//! Send marshalling: turns the packed batch `lib/pack.ts` builds into what `send::send` takes
//! (addresses parsed once per table entry, not per datagram), and counts the outcome.

use std::os::fd::AsRawFd;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use socket2::SockAddr;

use super::connection::{entry_error, port};
use super::options::NativeSendError;
use super::NativeSocket;
use crate::addr;
use crate::error::invalid_arg;
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
        let sa = addr::socket_addr(a, port(p, "port")?).map_err(|e| entry_error(e, "destination", k))?;
        dests.push(SockAddr::from(if o.ipv6 { addr::to_v6_mapped(sa) } else { sa }));
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
      if dests.is_empty() && !o.connected && packed.count() > start as usize {
        return Err(invalid_arg("destination", "is required on an unconnected socket"));
      }
      let batched = o.shared.mode == RecvMode::Batched;
      let end = (start as usize).saturating_add(max_count as usize);
      let out = send::send(o.socket.as_raw_fd(), &packed, start as usize, end, batched, &mut o.scratch);
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
    })
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

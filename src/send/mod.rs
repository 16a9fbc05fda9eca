//! Batched send: many datagrams per `sendmmsg` call (Linux) or one `sendmsg` per datagram
//! (portable path). Datagrams arrive packed from JS: one byte buffer holding every part back
//! to back, the length of each part, how many parts each datagram has (scatter/gather), and
//! which entry of a small destination table each datagram goes to.
//!
//! One concern per file: this one holds the packed batch and the call loop (`send`: chunks,
//! would-block, errors, resending a refused GSO run); `gso` plans GSO runs and learns the
//! MTU ceiling from refusals; `syscall` builds headers and control messages and makes the
//! `sendmmsg`/`sendmsg` calls.

use std::os::fd::RawFd;

use socket2::SockAddr;

use crate::error::OsError;

mod gso;
mod syscall;
#[cfg(test)]
pub(crate) mod tests;

pub use gso::MAX_UDP_PAYLOAD;
use gso::{is_gso_refusal, learn_from_refusal, Refusal};
use syscall::{send_chunk_mmsg, send_chunk_portable, Entry};

/// Linux caps `vlen` and the iovec count of one message at UIO_MAXIOV.
pub const UIO_MAXIOV: usize = 1024;

/// Datagrams to send, borrowed from JS for the duration of one call.
pub struct Packed<'a> {
  /// Every part of every datagram, back to back.
  pub data: &'a [u8],
  /// Length of every part, in order.
  pub part_lens: &'a [u32],
  /// Parts per datagram; `None` means one part each.
  pub parts_per_msg: Option<&'a [u32]>,
  /// Index into `dests` for each datagram; `None` means every datagram goes to `dests[0]`
  /// (or to the connected peer when `dests` is empty).
  pub dest_index: Option<&'a [u32]>,
  /// The destination table (already converted to socket addresses).
  pub dests: &'a [SockAddr],
  /// Per datagram: index into `sources` + 1 of the source address to send from
  /// (`IP_PKTINFO`/`IPV6_PKTINFO`), 0 for the socket's default. `None`: all default.
  pub source_index: Option<&'a [u32]>,
  /// The source address table.
  pub sources: &'a [std::net::IpAddr],
  /// Per datagram: TOS / traffic class byte, or -1 for the socket's default. `None`: all default.
  pub tos: Option<&'a [i32]>,
}

impl Packed<'_> {
  /// Number of datagrams.
  pub fn count(&self) -> usize {
    self.parts_per_msg.map_or(self.part_lens.len(), |p| p.len())
  }

  /// Checks that the arrays agree with each other and with the data. Returns what is wrong.
  pub fn validate(&self) -> Result<(), &'static str> {
    let total: u64 = self.part_lens.iter().map(|&l| l as u64).sum();
    if total != self.data.len() as u64 {
      return Err("part lengths do not add up to the data length");
    }
    if let Some(p) = self.parts_per_msg {
      let parts: u64 = p.iter().map(|&c| c as u64).sum();
      if parts != self.part_lens.len() as u64 {
        return Err("parts per datagram do not add up to the number of parts");
      }
    }
    if let Some(d) = self.dest_index {
      if d.len() != self.count() {
        return Err("one destination index per datagram is required");
      }
      if d.iter().any(|&i| i as usize >= self.dests.len()) {
        return Err("destination index out of range");
      }
    }
    if let Some(s) = self.source_index {
      if s.len() != self.count() || s.iter().any(|&i| i as usize > self.sources.len()) {
        return Err("source indexes must be one per datagram and within the source table");
      }
    }
    if let Some(t) = self.tos {
      if t.len() != self.count() || t.iter().any(|&v| !(-1..=255).contains(&v)) {
        return Err("tos must be one value per datagram, -1..255");
      }
    }
    Ok(())
  }

  fn dest(&self, msg: usize) -> Option<&SockAddr> {
    match self.dest_index {
      Some(d) => self.dests.get(d[msg] as usize),
      None => self.dests.first(),
    }
  }

  fn parts(&self, msg: usize) -> usize {
    self.parts_per_msg.map_or(1, |p| p[msg] as usize)
  }
}

/// What one send call achieved.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SendOutcome {
  /// Datagrams handed to the kernel by this call.
  pub sent: usize,
  /// Bytes in those datagrams.
  pub bytes: u64,
  /// System calls made.
  pub syscalls: u64,
  /// Stopped because the send buffer is full (`EAGAIN`): wait for writability and resume.
  pub would_block: bool,
  /// Stopped at datagram `start + sent` because of this error.
  pub error: Option<OsError>,
  /// GSO super-datagrams sent (each carrying several datagrams).
  pub gso_sends: u64,
  /// Times GSO was refused and turned off for this socket during the call.
  pub gso_fallbacks: u64,
}

/// Reusable header, iovec and control storage for sends, and the socket's GSO state.
#[derive(Default)]
pub struct SendScratch {
  iovecs: Vec<libc::iovec>,
  #[cfg(target_os = "linux")]
  hdrs: Vec<libc::mmsghdr>,
  entries: Vec<Entry>,
  control: Vec<u8>,
  /// Send runs of same-size datagrams as GSO super-datagrams (turned off if the kernel refuses
  /// GSO where plain sends of the same datagrams go through).
  pub gso: bool,
  /// Largest GSO segment this socket sends, learned when the kernel refused a larger one with
  /// `EMSGSIZE` (a segment over the path MTU); larger datagrams go plainly (and are fragmented,
  /// as node:dgram's are). `None`: no ceiling known yet. One ceiling per socket: a socket that
  /// sends over several paths uses the smallest MTU seen refusing, which costs only speed.
  pub gso_max_segment: Option<usize>,
  /// Per call: the connected peer takes the IPv4 path (IPv4 or IPv4-mapped), so a per-datagram
  /// TOS without a destination goes as `IP_TOS` rather than `IPV6_TCLASS`.
  peer_v4: bool,
}

/// Where datagram `msg` starts: its first part index and byte offset.
#[derive(Clone, Copy)]
struct Cursor {
  /// Index of its first part.
  part: usize,
  /// Byte offset of its first part in the data.
  byte: usize,
}

/// Moves `c` from datagram `from` to datagram `to`.
fn advance(p: &Packed, mut c: Cursor, from: usize, to: usize) -> Cursor {
  for m in from..to {
    for _ in 0..p.parts(m) {
      c.byte += p.part_lens[c.part] as usize;
      c.part += 1;
    }
  }
  c
}

/// The send buffer is full (try again when writable).
fn is_would_block(errno: i32) -> bool {
  errno == libc::EAGAIN || errno == libc::EWOULDBLOCK
}

/// Sends datagrams `start..end` of `p` without blocking, as many per system call as allowed.
/// `p` must have passed [`Packed::validate`]; `end` is clamped to the datagram count.
pub fn send(
  fd: RawFd,
  p: &Packed,
  start: usize,
  end: usize,
  batched: bool,
  scratch: &mut SendScratch,
) -> SendOutcome {
  let n = p.count().min(end);
  let mut out = SendOutcome::default();
  let mut cursor = advance(p, Cursor { part: 0, byte: 0 }, 0, start);
  let mut i = start;
  // Datagrams before `plain_until` go without GSO: they belong to a run the kernel refused.
  let mut plain_until = start;
  // A GSO refusal whose plain resend has not been tried yet.
  let mut pending: Option<Refusal> = None;
  scratch.peer_v4 = p.tos.is_some()
    && p.dests.is_empty()
    && crate::socket::peer_of(fd).is_some_and(|a| crate::socket::is_v4_path(&a));
  while i < n {
    let result = if batched {
      send_chunk_mmsg(fd, p, i, n, cursor, scratch, plain_until)
    } else {
      send_chunk_portable(fd, p, i, (n - i).min(UIO_MAXIOV), cursor, scratch)
    };
    out.syscalls += result.syscalls;
    out.bytes += result.bytes;
    out.sent += result.sent;
    out.gso_sends += result.gso_sends;
    cursor = advance(p, cursor, i, i + result.sent);
    i += result.sent;
    if let Some(r) = pending {
      if result.sent > 0 {
        // A plain send of the refused run went where the GSO send did not: GSO was at fault.
        learn_from_refusal(fd, p, r, scratch);
        out.gso_fallbacks += 1;
        pending = None;
      } else if result.errno.is_some_and(|e| e != libc::EINTR && !is_would_block(e)) {
        // The plain send failed as well: the datagram itself is at fault (a bad source
        // address, say). Report that error below and leave GSO on.
        pending = None;
      }
    }
    match (result.errno, result.refused) {
      (None, _) => continue,
      (Some(e), _) if e == libc::EINTR => continue,
      (Some(e), _) if is_would_block(e) => {
        out.would_block = true;
        break;
      }
      (Some(e), Some((count, segment))) if scratch.gso && is_gso_refusal(e) => {
        // The kernel or device refused the GSO entry at datagram `i`: resend its datagrams
        // plainly in this same call; the outcome of that resend says whose fault it was.
        plain_until = i + count;
        pending = Some(Refusal { errno: e, msg: i, segment });
        continue;
      }
      (Some(e), _) => {
        out.error = Some(OsError { errno: e, syscall: if batched { "sendmmsg" } else { "sendmsg" } });
        break;
      }
    }
  }
  out
}

/// What one chunk (one `sendmmsg`, or up to UIO_MAXIOV `sendmsg`) achieved.
struct ChunkResult {
  /// Datagrams sent.
  sent: usize,
  /// Bytes in them.
  bytes: u64,
  /// System calls made.
  syscalls: u64,
  /// GSO entries among them.
  gso_sends: u64,
  /// Error that stopped the chunk before all of it was sent (with `sent` possibly > 0).
  errno: Option<i32>,
  /// The entry the error belongs to carried a GSO control message: (datagrams, segment size).
  refused: Option<(usize, usize)>,
}

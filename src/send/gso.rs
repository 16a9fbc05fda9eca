//! GSO run planning: which datagrams go together as one super-datagram, and the segment
//! ceiling (path MTU) learned when the kernel refuses a GSO send.

use std::os::fd::RawFd;

use super::{advance, Cursor, Packed, SendScratch, UIO_MAXIOV};

/// Errors with which a kernel or device may refuse a GSO send (pitfall 8): no checksum offload
/// (`EIO`), an unsupported path (`EINVAL`), a segment over the path MTU (`EMSGSIZE`), or no
/// support at all. The application can cause each of them too (a bad source address gives
/// `EINVAL`): only a plain resend that succeeds proves GSO was at fault.
pub(super) fn is_gso_refusal(errno: i32) -> bool {
  errno == libc::EIO
    || errno == libc::EINVAL
    || errno == libc::EMSGSIZE
    || errno == libc::EOPNOTSUPP
    || errno == libc::ENOPROTOOPT
}

/// A GSO entry the kernel refused, whose datagrams are being resent plainly.
#[derive(Clone, Copy)]
pub(super) struct Refusal {
  /// The error the GSO send got.
  pub(super) errno: i32,
  /// First datagram of the refused run.
  pub(super) msg: usize,
  /// Its segment size.
  pub(super) segment: usize,
}

/// Applies what a refusal taught, once a plain resend of the same datagrams succeeded:
/// `EMSGSIZE` means the segment was over the path MTU, so later runs keep below the MTU of
/// that path (GSO stays on); any other refusal means GSO does not work here, so it turns off.
/// The path is the datagram's destination, or the connected peer of `fd`.
pub(super) fn learn_from_refusal(fd: RawFd, p: &Packed, r: Refusal, scratch: &mut SendScratch) {
  if r.errno != libc::EMSGSIZE {
    scratch.gso = false;
    return;
  }
  let dest = p.dest(r.msg).cloned().or_else(|| crate::socket::peer_of(fd));
  let path = dest.as_ref().and_then(crate::socket::path_max_payload);
  // Never above the refused segment, whatever the lookup says, so every refusal lowers it.
  let ceiling = path.unwrap_or(usize::MAX).min(r.segment.saturating_sub(1));
  scratch.gso_max_segment = Some(scratch.gso_max_segment.map_or(ceiling, |c| c.min(ceiling)));
}

/// Largest payload of one UDP datagram (IPv4: 65535 - 20 - 8), and so of a GSO super-datagram.
pub const MAX_UDP_PAYLOAD: usize = 65507;

/// Bytes in datagram `msg` whose parts start at `c`.
pub(super) fn msg_len(p: &Packed, msg: usize, c: Cursor) -> usize {
  (0..p.parts(msg)).map(|k| p.part_lens[c.part + k] as usize).sum()
}

/// How many datagrams from `first` (before `end`) can go as one GSO super-datagram: same
/// destination, same size (the last may be shorter) of at most `max_segment` bytes, at most
/// 64 segments, 64 KiB in all and UIO_MAXIOV parts. Returns (datagrams, segment size); a run
/// of one goes without the GSO control message.
pub(super) fn gso_run(p: &Packed, first: usize, end: usize, c: Cursor, max_segment: usize) -> (usize, usize) {
  let seg = msg_len(p, first, c);
  if seg == 0 || seg > max_segment {
    return (1, 0);
  }
  let dest = p.dest_index.map(|d| d[first]);
  let mut c = advance(p, c, first, first + 1);
  let (mut count, mut total, mut parts) = (1usize, seg, p.parts(first));
  while first + count < end && count < crate::linux::UDP_MAX_SEGMENTS {
    let m = first + count;
    if p.dest_index.map(|d| d[m]) != dest
      || p.source_index.map(|s| s[m]) != p.source_index.map(|s| s[first])
      || p.tos.map(|t| t[m]) != p.tos.map(|t| t[first])
    {
      break;
    }
    let len = msg_len(p, m, c);
    if len == 0 || len > seg || total + len > MAX_UDP_PAYLOAD || parts + p.parts(m) > UIO_MAXIOV {
      break;
    }
    count += 1;
    total += len;
    parts += p.parts(m);
    c = advance(p, c, m, m + 1);
    if len < seg {
      break; // a shorter segment ends the run
    }
  }
  (count, seg)
}

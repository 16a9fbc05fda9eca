//! The common case of [`RecvSlab::take`]: every datagram from an IPv4 source, none cut, no
//! GRO, and no control data but the drop counter. That is what an ingestion socket at its
//! defaults receives. One quick pass checks the slots (lengths, flags, family, control
//! header), one writes the batch; the general pass (control messages parsed into a record per
//! slot, then a second pass over those records) cost ~5 % of a drain.
//! Anything else leaves the slab untouched and returns None, for the general pass.

use super::RecvSlab;
use crate::batch::{BatchBuilder, RawBatch};

impl RecvSlab {
  /// The batch of the first `n` received slots when they are all plain (see the module
  /// documentation); None, with nothing changed, when any is not.
  pub(super) fn take_plain(&mut self, n: usize) -> Option<RawBatch> {
    let mut bytes = 0usize;
    for i in 0..n {
      let r = self.results[i];
      let cut =
        r.flags & (libc::MSG_TRUNC | libc::MSG_CTRUNC) != 0 || r.len > self.limit || r.len > self.slot;
      if cut
        || v4_source(&self.names[i], r.namelen).is_none()
        || drops_only(self.ctrl(i), r.controllen).is_none()
      {
        return None;
      }
      bytes += r.len;
    }
    let mut b = BatchBuilder::new(n, bytes, true);
    for i in 0..n {
      let r = self.results[i];
      if let Some(Some(d)) = drops_only(self.ctrl(i), r.controllen) {
        self.drops.observe(d);
        self.saw_drops = true;
      }
      let (ip, port) = v4_source(&self.names[i], r.namelen).unwrap_or_default();
      let (head, tail) = self.bytes(i, 0, r.len);
      b.push_v4(head, tail, ip, port);
    }
    Some(b.finish((self.saw_drops || self.drop_counter).then(|| self.drops.total())))
  }
}

/// The IPv4 address (network order) and port of a datagram from an IPv4 source.
fn v4_source(name: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<([u8; 4], u16)> {
  if name.ss_family as libc::c_int != libc::AF_INET
    || (len as usize) < std::mem::size_of::<libc::sockaddr_in>()
  {
    return None;
  }
  // SAFETY: the family is AF_INET and the kernel wrote at least sizeof(sockaddr_in) bytes, so
  // reading the storage (larger, and aligned for it) as a sockaddr_in is valid.
  let sin = unsafe { &*(name as *const libc::sockaddr_storage as *const libc::sockaddr_in) };
  Some((sin.sin_addr.s_addr.to_ne_bytes(), u16::from_be(sin.sin_port)))
}

/// Some(None) for no control data, Some(Some(count)) for exactly one well-formed drop
/// counter, None for anything else.
#[cfg(target_os = "linux")]
fn drops_only(ctrl: &[u8], len: usize) -> Option<Option<u32>> {
  let mut all = crate::cmsg::parse(ctrl, len);
  match (all.next(), all.next()) {
    (None, _) => Some(None),
    (Some(c), None) if c.level == libc::SOL_SOCKET && c.kind == crate::linux::SO_RXQ_OVFL => {
      crate::cmsg::read_u32(c.data).map(Some)
    }
    _ => None,
  }
}

#[cfg(not(target_os = "linux"))]
fn drops_only(_ctrl: &[u8], len: usize) -> Option<Option<u32>> {
  (len == 0).then_some(None)
}

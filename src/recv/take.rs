//! Compacting the slots a receive filled into a [`RawBatch`]: control messages read, GRO
//! receives split back into datagrams, cut datagrams flagged (the one-pass common case is in
//! `plain`).

use super::control::read_control;
use super::RecvSlab;
use crate::addr::{decode_sockaddr, CompactAddr};
use crate::batch::{fits_compact, BatchBuilder, Extra, RawBatch, FLAG_TRUNCATED};

impl RecvSlab {
  /// Copies the first `n` received slots into a compact [`RawBatch`], reading each one's
  /// address and control messages with bounds checks and splitting GRO receives back into
  /// the datagrams they were made of. The batch gets the compact metadata layout when every
  /// source is IPv4 and no datagram carries per-datagram extras (see `crate::batch`).
  pub fn take(&mut self, n: usize) -> RawBatch {
    let n = n.min(self.batch);
    self.high_water = self.high_water.max(n);
    match self.take_plain(n) {
      Some(b) => b,
      None => self.take_general(n),
    }
  }

  /// [`take`](Self::take) for any slots: GRO receives, cut datagrams, IPv6 sources, extras.
  pub(super) fn take_general(&mut self, n: usize) -> RawBatch {
    // First pass: control messages, and how many datagrams / bytes each slot yields.
    let mut datagrams = 0usize;
    let mut bytes = 0usize;
    let mut gro_slots = 0u32;
    let mut control_truncated = 0u32;
    let mut compact = true;
    for i in 0..n {
      let r = self.results[i];
      let mut info = read_control(self.ctrl(i), r.controllen);
      let ctrunc = r.flags & libc::MSG_CTRUNC != 0;
      if ctrunc {
        // The kernel ran out of control space (options added with setSocketOption can ask for
        // more than a slot holds): what is missing is unknown, so none of the per-datagram
        // extras are presented. The drop counter (cumulative, checked for its full size) and
        // the GRO segment size (written before the IP-level messages, and checked for its full
        // size too) are still used.
        info.extra = Extra::default();
      }
      if let Some(d) = info.drops {
        self.drops.observe(d);
        self.saw_drops = true;
      }
      let len = r.len.min(self.slot);
      let seg = match info.gro_segment {
        Some(s) if s > 0 && s < len => {
          gro_slots += 1;
          s
        }
        _ => len.max(1),
      };
      let pieces = len.div_ceil(seg).max(1);
      datagrams += pieces;
      if ctrunc {
        control_truncated += pieces as u32;
      }
      bytes += (0..pieces).map(|k| (len - k * seg).min(seg).min(self.limit)).sum::<usize>();
      let from = decode_sockaddr(&self.names[i], r.namelen);
      compact &= fits_compact(&from, &info.extra);
      self.infos[i] = SlotInfo { extra: info.extra, seg, pieces, from };
    }
    let mut b = BatchBuilder::new(datagrams, bytes, compact);
    for i in 0..n {
      let r = self.results[i];
      let SlotInfo { mut extra, seg, pieces, from } = self.infos[i];
      let len = r.len.min(self.slot);
      let cut_by_kernel = r.flags & libc::MSG_TRUNC != 0 || r.len > self.slot;
      for k in 0..pieces {
        let start = k * seg;
        let piece = (len - start).min(seg);
        let kept = piece.min(self.limit);
        let last = k + 1 == pieces;
        extra.flags &= !FLAG_TRUNCATED;
        if kept < piece || (last && cut_by_kernel) {
          extra.flags |= FLAG_TRUNCATED;
        }
        let (head, tail) = self.bytes(i, start, kept);
        b.push_parts(head, tail, &from, &extra);
      }
    }
    let mut raw = b.finish((self.saw_drops || self.drop_counter).then(|| self.drops.total()));
    raw.gro_slots = gro_slots;
    raw.control_truncated = control_truncated;
    raw
  }
}

/// Per-slot results of the control-message pass of `take`.
#[derive(Clone, Copy, Default)]
pub(super) struct SlotInfo {
  extra: Extra,
  seg: usize,
  pieces: usize,
  from: CompactAddr,
}

//! Batched receive: a preallocated slab of datagram slots, filled by one `recvmmsg` call
//! (Linux) or by a loop of `recvmsg` calls (the portable path), then compacted into a
//! [`RawBatch`]. The slab is reused for every batch; only the compact copy is allocated.

use std::io;
use std::os::fd::RawFd;

use crate::addr::decode_sockaddr;
use crate::batch::{BatchBuilder, RawBatch, FLAG_TRUNCATED};
use crate::cmsg::{self, WrappingCounter};

/// Control buffer room per datagram: enough for `SO_RXQ_OVFL` and a few more small messages.
const CONTROL_PER_SLOT: usize = cmsg::space(4) * 4;

/// Which system calls to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvMode {
  /// `recvmmsg`: many datagrams per call (Linux).
  Batched,
  /// One `recvmsg` per datagram: the portable fallback.
  Portable,
}

/// The receive slab: `batch` slots of `slot` bytes, with their address and control space.
pub struct RecvSlab {
  batch: usize,
  slot: usize,
  buf: Vec<u8>,
  // SAFETY-relevant: these vectors are never resized after construction, so pointers into
  // them stay valid for the slab's lifetime; headers are re-pointed before every call anyway.
  names: Vec<libc::sockaddr_storage>,
  control: Vec<u8>,
  iovecs: Vec<libc::iovec>,
  #[cfg(target_os = "linux")]
  hdrs: Vec<libc::mmsghdr>,
  /// Per-slot results of the last receive: bytes, flags, address length, control length.
  results: Vec<SlotResult>,
  /// An error met after some datagrams were already received (portable path): reported by the
  /// next call, as the kernel does for `recvmmsg`.
  pending_error: Option<io::Error>,
  drops: WrappingCounter,
  saw_drops: bool,
}

// SAFETY: the raw pointers inside `iovecs`/`hdrs` only ever point into this slab's own heap
// buffers, which move with it; the slab is used by one thread at a time (it is moved into the
// I/O thread, never shared).
unsafe impl Send for RecvSlab {}

#[derive(Clone, Copy, Default)]
struct SlotResult {
  len: usize,
  flags: i32,
  namelen: libc::socklen_t,
  controllen: usize,
}

impl RecvSlab {
  /// Allocates a slab for `batch` datagrams of up to `slot` bytes each.
  pub fn new(batch: usize, slot: usize) -> Self {
    let batch = batch.max(1);
    // SAFETY: all-zero bytes are a valid sockaddr_storage, iovec and mmsghdr.
    let zero_name: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    RecvSlab {
      batch,
      slot,
      buf: vec![0u8; batch * slot.max(1)],
      names: vec![zero_name; batch],
      control: vec![0u8; batch * CONTROL_PER_SLOT],
      // SAFETY: see above.
      iovecs: vec![unsafe { std::mem::zeroed() }; batch],
      #[cfg(target_os = "linux")]
      // SAFETY: see above.
      hdrs: vec![unsafe { std::mem::zeroed() }; batch],
      results: vec![SlotResult::default(); batch],
      pending_error: None,
      drops: WrappingCounter::default(),
      saw_drops: false,
    }
  }

  /// Slots in the slab (the most datagrams one receive returns).
  pub fn capacity(&self) -> usize {
    self.batch
  }

  /// Points slot `i`'s iovec at its buffer and builds a zeroed msghdr for it, with the name
  /// and control lengths reset (the kernel overwrites them on every call).
  fn header(&mut self, i: usize) -> libc::msghdr {
    self.iovecs[i] = libc::iovec {
      // SAFETY: i < batch, so the slot lies inside `buf` (batch * slot bytes).
      iov_base: unsafe { self.buf.as_mut_ptr().add(i * self.slot) } as *mut libc::c_void,
      iov_len: self.slot,
    };
    // SAFETY: an all-zero msghdr is valid (musl has padding fields that must be zero).
    let mut h: libc::msghdr = unsafe { std::mem::zeroed() };
    h.msg_name = &mut self.names[i] as *mut libc::sockaddr_storage as *mut libc::c_void;
    h.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    h.msg_iov = &mut self.iovecs[i];
    h.msg_iovlen = 1;
    // SAFETY: i < batch, so the control slot lies inside `control`.
    h.msg_control = unsafe { self.control.as_mut_ptr().add(i * CONTROL_PER_SLOT) } as *mut libc::c_void;
    h.msg_controllen = CONTROL_PER_SLOT as _;
    h
  }

  /// Receives without blocking into slots `from..from + max` (clamped to the slab). Returns
  /// how many arrived (at least one), or an error (`WouldBlock` when nothing is queued).
  pub fn receive(&mut self, fd: RawFd, mode: RecvMode, from: usize, max: usize) -> io::Result<usize> {
    if from >= self.batch {
      return Ok(0);
    }
    let max = max.clamp(1, self.batch - from);
    if let Some(e) = self.pending_error.take() {
      return Err(e);
    }
    match mode {
      #[cfg(target_os = "linux")]
      RecvMode::Batched => self.receive_mmsg(fd, from, max),
      _ => self.receive_portable(fd, from, max),
    }
  }

  #[cfg(target_os = "linux")]
  fn receive_mmsg(&mut self, fd: RawFd, from: usize, max: usize) -> io::Result<usize> {
    for i in from..from + max {
      let h = self.header(i);
      self.hdrs[i] = libc::mmsghdr { msg_hdr: h, msg_len: 0 };
    }
    // SAFETY: `hdrs[from..from + max]` are valid mmsghdrs whose pointers reference live
    // buffers owned by `self` (name, iovec -> slot, control) of the advertised sizes; the
    // timeout is NULL (recvmmsg's own timeout is broken; we never block: MSG_DONTWAIT).
    let n = unsafe {
      libc::recvmmsg(
        fd,
        self.hdrs.as_mut_ptr().add(from),
        max as libc::c_uint,
        libc::MSG_DONTWAIT,
        std::ptr::null_mut(),
      )
    };
    if n < 0 {
      return Err(io::Error::last_os_error());
    }
    let n = n as usize;
    for i in from..from + n {
      let h = &self.hdrs[i];
      self.results[i] = SlotResult {
        len: h.msg_len as usize,
        flags: h.msg_hdr.msg_flags,
        namelen: h.msg_hdr.msg_namelen,
        #[allow(clippy::unnecessary_cast)] // socklen_t on musl and macOS
        controllen: h.msg_hdr.msg_controllen as usize,
      };
    }
    Ok(n)
  }

  fn receive_portable(&mut self, fd: RawFd, from: usize, max: usize) -> io::Result<usize> {
    let mut n = 0;
    while n < max {
      let mut h = self.header(from + n);
      // SAFETY: `h` references live buffers owned by `self` of the advertised sizes.
      let r = unsafe { libc::recvmsg(fd, &mut h, libc::MSG_DONTWAIT) };
      if r < 0 {
        let e = io::Error::last_os_error();
        if n == 0 {
          return Err(e);
        }
        if e.kind() != io::ErrorKind::WouldBlock {
          self.pending_error = Some(e);
        }
        break;
      }
      self.results[from + n] = SlotResult {
        len: r as usize,
        flags: h.msg_flags,
        namelen: h.msg_namelen,
        #[allow(clippy::unnecessary_cast)] // socklen_t on musl and macOS
        controllen: h.msg_controllen as usize,
      };
      n += 1;
    }
    Ok(n)
  }

  /// Copies the first `n` received datagrams into a compact [`RawBatch`], reading each
  /// datagram's address and control messages with bounds checks.
  pub fn take(&mut self, n: usize) -> RawBatch {
    let n = n.min(self.batch);
    let total: usize = self.results[..n].iter().map(|r| r.len.min(self.slot)).sum();
    let mut b = BatchBuilder::new(n, total);
    for i in 0..n {
      let r = self.results[i];
      let len = r.len.min(self.slot);
      let mut flags = 0u8;
      if r.flags & libc::MSG_TRUNC != 0 || r.len > self.slot {
        flags |= FLAG_TRUNCATED;
      }
      let ctrl = &self.control[i * CONTROL_PER_SLOT..(i + 1) * CONTROL_PER_SLOT];
      for c in cmsg::parse(ctrl, r.controllen) {
        #[cfg(target_os = "linux")]
        if c.level == libc::SOL_SOCKET && c.kind == crate::linux::SO_RXQ_OVFL {
          if let Some(v) = cmsg::read_u32(c.data) {
            self.drops.observe(v);
            self.saw_drops = true;
          }
        }
        let _ = c;
      }
      let from = decode_sockaddr(&self.names[i], r.namelen);
      let start = i * self.slot;
      b.push(&self.buf[start..start + len], &from, flags);
    }
    b.finish(self.saw_drops.then(|| self.drops.total()))
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::batch::MetaLayout;
  use std::net::UdpSocket;
  use std::os::fd::AsRawFd;

  fn pair() -> (UdpSocket, UdpSocket) {
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    rx.set_nonblocking(true).unwrap();
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    tx.connect(rx.local_addr().unwrap()).unwrap();
    (rx, tx)
  }

  fn check_mode(mode: RecvMode) {
    let (rx, tx) = pair();
    let mut slab = RecvSlab::new(4, 8);
    assert_eq!(slab.receive(rx.as_raw_fd(), mode, 0, 4).unwrap_err().kind(), io::ErrorKind::WouldBlock);
    for msg in [&b"one"[..], b"", b"twelve bytes", b"four"] {
      tx.send(msg).unwrap();
    }
    tx.send(b"fifth").unwrap();
    let n = slab.receive(rx.as_raw_fd(), mode, 0, 4).unwrap();
    assert_eq!(n, 4);
    let b = slab.take(n);
    assert_eq!(b.count, 4);
    assert_eq!(b.data(), b"onetwelve bfour");
    let l = MetaLayout { count: 4 };
    let len = |i: usize| u32::from_ne_bytes(b.meta()[4 * i..4 * i + 4].try_into().unwrap());
    assert_eq!([len(0), len(1), len(2), len(3)], [3, 0, 8, 4]);
    assert_eq!(b.meta()[l.flags() + 2], FLAG_TRUNCATED, "12 bytes into an 8-byte slot is truncated");
    assert_eq!(b.meta()[l.flags() + 3], 0);
    let port = u16::from_ne_bytes([b.meta()[l.ports()], b.meta()[l.ports() + 1]]);
    assert_eq!(port, tx.local_addr().unwrap().port());
    assert_eq!(slab.receive(rx.as_raw_fd(), mode, 0, 4).unwrap(), 1, "the fifth is still queued");
  }

  #[test]
  fn batched_receive_reports_lengths_truncation_and_sources() {
    #[cfg(target_os = "linux")]
    check_mode(RecvMode::Batched);
  }

  #[test]
  fn portable_receive_reports_lengths_truncation_and_sources() {
    check_mode(RecvMode::Portable);
  }
}

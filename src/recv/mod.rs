//! Batched receive: a preallocated slab of datagram slots, filled by one `recvmmsg` call
//! (Linux) or by a loop of `recvmsg` calls (the portable path), then compacted into a
//! [`RawBatch`](crate::batch::RawBatch). The slab is reused for every batch; only the compact
//! copy is allocated.
//!
//! One concern per file: this one holds the slab and the receive calls; `take` compacts what a
//! receive filled into a batch (`plain` is its common case, without per-slot records); `control` reads the
//! control messages of each datagram (drop counter, local address, timestamp, TOS, GRO).

use std::io;
use std::os::fd::RawFd;

use crate::cmsg::WrappingCounter;
mod control;
mod plain;
mod region;
pub mod spare;
mod take;
#[cfg(test)]
mod tests;

use region::Region;
use take::SlotInfo;

/// Control buffer room per datagram: drop counter, pktinfo (IPv4 or IPv6), timestamp, TOS,
/// GRO segment size, with room to spare.
const CONTROL_PER_SLOT: usize = 256;

/// Which system calls to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvMode {
  /// `recvmmsg`: many datagrams per call (Linux).
  Batched,
  /// One `recvmsg` per datagram: the portable fallback.
  Portable,
}

/// The receive slab: `batch` slots of `slot` bytes, with their address and control space.
///
/// A slot larger than [`HEAD`] (the default one holds the largest UDP payload) is two
/// buffers: its first `HEAD` bytes in a head area where the slots lie back to back, the rest
/// in a tail area of its own. Small datagrams then land a few per page, as in a slab sized
/// for them (one page per datagram with 64 KiB slots cost ~3-8 % of a drain of 64-byte
/// datagrams, in the kernel's copy and in `take`), and a large one still arrives whole.
pub struct RecvSlab {
  batch: usize,
  /// Bytes per slot (the largest GRO super-datagram when GRO is on).
  slot: usize,
  /// Bytes of each slot in the head area of `buf` (`slot` when slots are one buffer); the
  /// tail area (`slot - head` per slot) follows it.
  head: usize,
  /// Largest datagram handed to JS; longer ones are cut and flagged.
  limit: usize,
  buf: Region,
  // SAFETY-relevant: these vectors are never resized after construction, so pointers into
  // them stay valid for the slab's lifetime (moving the slab moves none of them), so a header
  // built once stays right until the kernel writes its lengths (see `stale`).
  names: Vec<libc::sockaddr_storage>,
  control: Vec<u8>,
  iovecs: Vec<libc::iovec>,
  #[cfg(target_os = "linux")]
  hdrs: Vec<libc::mmsghdr>,
  /// Slots whose header the kernel wrote since it was built (at first: all, never built),
  /// reset before the next call. Only these: resetting (or even checking) all `batch`
  /// headers per call cost more than the system call itself when one datagram arrives at a
  /// time. A call fills a contiguous run of slots, so one range says which.
  #[cfg(target_os = "linux")]
  stale: std::ops::Range<usize>,
  /// Every header has been built once: from then on the kernel writes only their lengths
  /// and flags (it reads the iovec arrays, never writes them), so a reset restores those.
  #[cfg(target_os = "linux")]
  built: bool,
  /// Per-slot results of the last receive: bytes, flags, address length, control length.
  results: Vec<SlotResult>,
  infos: Vec<SlotInfo>,
  /// An error met after some datagrams were already received (portable path): reported by the
  /// next call, as the kernel does for `recvmmsg`.
  pending_error: Option<io::Error>,
  drops: WrappingCounter,
  saw_drops: bool,
  /// The socket asked for the kernel's drop counter: batches report it even before any drop.
  pub drop_counter: bool,
  /// System calls made by the last `receive` (one for recvmmsg; one per recvmsg otherwise).
  pub last_syscalls: u64,
  /// The most slots one receive filled since the slab was made or reset (see `spare`).
  high_water: usize,
}

// SAFETY: the raw pointers inside `iovecs`/`hdrs` only ever point into this slab's own heap
// buffers, which move with it; the slab is used by one thread at a time (it is moved into the
// socket's reader, never shared).
unsafe impl Send for RecvSlab {}

#[derive(Clone, Copy, Default)]
struct SlotResult {
  len: usize,
  flags: i32,
  namelen: libc::socklen_t,
  controllen: usize,
}

impl RecvSlab {
  /// Allocates a slab for `batch` datagrams of up to `slot` bytes each, without GRO (tests).
  #[cfg(test)]
  pub fn new(batch: usize, slot: usize) -> Self {
    Self::with_gro(batch, slot, false)
  }

  /// Allocates a slab for `batch` datagrams of up to `limit` bytes each; with `gro`, every slot holds a whole coalesced receive (64 KiB) that `take`
  /// splits back into datagrams of at most `limit` bytes.
  pub fn with_gro(batch: usize, limit: usize, gro: bool) -> Self {
    // A GRO slot holds up to 64 datagrams in 64 KiB: a few dozen slots are plenty, and keep
    // the slab at a couple of MiB whatever batchSize is.
    let (batch, slot, limit) = Self::shape_of(batch, limit, gro);
    // GRO slabs are few slots, each filled by up to 64 KiB at a time: one buffer each.
    let head = if gro { slot } else { slot.min(HEAD) };
    // SAFETY: all-zero bytes are a valid sockaddr_storage, iovec and mmsghdr.
    let zero_name: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    RecvSlab {
      batch,
      slot,
      head,
      limit,
      buf: Region::new(batch * slot),
      names: vec![zero_name; batch],
      control: vec![0u8; batch * CONTROL_PER_SLOT],
      // SAFETY: see above.
      iovecs: vec![unsafe { std::mem::zeroed() }; 2 * batch],
      #[cfg(target_os = "linux")]
      // SAFETY: see above.
      hdrs: vec![unsafe { std::mem::zeroed() }; batch],
      #[cfg(target_os = "linux")]
      stale: 0..batch,
      #[cfg(target_os = "linux")]
      built: false,
      results: vec![SlotResult::default(); batch],
      infos: vec![SlotInfo::default(); batch],
      pending_error: None,
      drops: WrappingCounter::default(),
      saw_drops: false,
      drop_counter: false,
      last_syscalls: 0,
      high_water: 0,
    }
  }

  /// Slots, bytes per slot and largest datagram of a slab made with these arguments: two slabs
  /// of the same shape are interchangeable.
  pub fn shape_of(batch: usize, limit: usize, gro: bool) -> (usize, usize, usize) {
    let batch = if gro { batch.clamp(1, MAX_GRO_SLOTS) } else { batch.max(1) };
    let limit = limit.max(1);
    let slot = if gro { GRO_SLOT.max(limit) } else { limit };
    (batch, slot, limit)
  }

  /// This slab's shape (see `shape_of`).
  pub fn shape(&self) -> (usize, usize, usize) {
    (self.batch, self.slot, self.limit)
  }

  /// Forgets everything about the socket it served (drop counter, parked error), for the
  /// next socket. Its buffers and headers stay as they are: they hold nothing of the last
  /// socket that the next receive does not overwrite.
  pub fn reset(&mut self) {
    self.pending_error = None;
    self.drops = WrappingCounter::default();
    self.saw_drops = false;
    self.drop_counter = false;
    self.last_syscalls = 0;
    self.high_water = 0;
  }

  /// Slots in the slab (the most datagrams one receive returns).
  pub fn capacity(&self) -> usize {
    self.batch
  }

  /// Slot `i`'s control buffer.
  fn ctrl(&self, i: usize) -> &[u8] {
    &self.control[i * CONTROL_PER_SLOT..(i + 1) * CONTROL_PER_SLOT]
  }

  /// Where slot `i`'s tail buffer starts in `buf` (its head starts at `i * head`).
  fn tail_start(&self, i: usize) -> usize {
    self.batch * self.head + i * (self.slot - self.head)
  }

  /// Bytes `start..start + len` of what slot `i` received, as the part in its head buffer and
  /// the part in its tail buffer (empty when the range lies in the head).
  fn bytes(&self, i: usize, start: usize, len: usize) -> (&[u8], &[u8]) {
    let end = start + len;
    let h = self.head;
    let head = &self.buf[i * h + start.min(h)..i * h + end.min(h)];
    let t = self.tail_start(i);
    let tail = &self.buf[t + start.max(h) - h..t + end.max(h) - h];
    (head, tail)
  }

  /// Points slot `i`'s iovecs at its buffers and builds a zeroed msghdr for it, with the name
  /// and control lengths reset (the kernel overwrites them on every call).
  fn header(&mut self, i: usize) -> libc::msghdr {
    let tail = self.tail_start(i);
    let base = self.buf.as_mut_ptr();
    // SAFETY: i < batch, so the head (i * head, head bytes) and the tail (tail_start(i),
    // slot - head bytes) lie inside `buf` (batch * slot bytes) and do not overlap any other
    // slot's.
    let (head_ptr, tail_ptr) = unsafe { (base.add(i * self.head), base.add(tail)) };
    self.iovecs[2 * i] = libc::iovec { iov_base: head_ptr as *mut libc::c_void, iov_len: self.head };
    self.iovecs[2 * i + 1] =
      libc::iovec { iov_base: tail_ptr as *mut libc::c_void, iov_len: self.slot - self.head };
    // SAFETY: an all-zero msghdr is valid (musl has padding fields that must be zero).
    let mut h: libc::msghdr = unsafe { std::mem::zeroed() };
    h.msg_name = &mut self.names[i] as *mut libc::sockaddr_storage as *mut libc::c_void;
    h.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    h.msg_iov = &mut self.iovecs[2 * i];
    h.msg_iovlen = if self.head < self.slot { 2 } else { 1 };
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
    self.last_syscalls = 0;
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
    self.last_syscalls = 1;
    let stale = std::mem::replace(&mut self.stale, 0..0);
    if self.built {
      for h in &mut self.hdrs[stale] {
        h.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        h.msg_hdr.msg_controllen = CONTROL_PER_SLOT as _;
        h.msg_hdr.msg_flags = 0;
        h.msg_len = 0;
      }
    } else {
      for i in 0..self.batch {
        let h = self.header(i);
        self.hdrs[i] = libc::mmsghdr { msg_hdr: h, msg_len: 0 };
      }
      self.built = true;
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
      // The kernel may have written the first header before failing.
      self.stale = from..from + 1;
      return Err(io::Error::last_os_error());
    }
    let n = n as usize;
    self.stale = from..from + n;
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
      self.last_syscalls += 1;
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
}

/// Bytes of a large slot kept in the slab's head area: a datagram up to this size (anything
/// that fits a 1500-byte MTU) lands in one buffer, next to its neighbours.
const HEAD: usize = 2048;
/// A GRO receive can hold up to 64 KiB.
const GRO_SLOT: usize = 65535;
/// Most slots in a GRO slab (32 x 64 KiB = 2 MiB).
pub const MAX_GRO_SLOTS: usize = 32;

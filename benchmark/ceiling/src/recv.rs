//! `ceiling recv`: the raw recvmmsg receive ceiling for live scenarios. The
//! `RecvBatch` engine is shared with `ceiling drain`.

use std::io::{self, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use crate::args::Args;
use crate::cmsg::{self, CtrlBuf};
use crate::net;
use crate::{emit, fail, per_second, warn, Json, MAX_BATCH, MAX_PAYLOAD};

/// Default SO_RCVBUF request (64 MiB).
pub const DEFAULT_RCVBUF: u64 = 64 << 20;
/// Default per-datagram receive buffer for `recv`: the largest UDP payload,
/// so nothing is ever truncated (only the bytes actually received are
/// touched, so the unused tail of each slot costs nothing but address space).
const DEFAULT_BUFSIZE: u64 = MAX_PAYLOAD as u64;

/// Totals from one recvmmsg call.
pub struct Got {
  pub datagrams: u64,
  pub bytes: u64,
}

/// Preallocated, zeroed recvmmsg state: `vlen` slots of `slot` bytes, each
/// with a source-address buffer and a control buffer. Boxed slices keep the
/// raw pointers in the mmsghdrs valid when the struct moves.
pub struct RecvBatch {
  vlen: usize,
  /// Slots the kernel may have written during the previous call; their
  /// msg_namelen / msg_controllen / msg_flags are reset before the next one.
  dirty: usize,
  _bufs: Box<[u8]>,
  _names: Box<[libc::sockaddr_storage]>,
  ctrls: Box<[CtrlBuf]>,
  _iovs: Box<[libc::iovec]>,
  hdrs: Box<[libc::mmsghdr]>,
  /// Highest SO_RXQ_OVFL counter seen (cumulative socket drops).
  pub max_drops: u64,
  /// Datagrams cut short (MSG_TRUNC) and control data cut short (MSG_CTRUNC).
  pub truncated: u64,
  pub ctrunc: u64,
}

impl RecvBatch {
  pub fn new(vlen: usize, slot: usize) -> RecvBatch {
    assert!((1..=MAX_BATCH).contains(&vlen) && slot >= 1);
    let mut bufs = vec![0u8; vlen * slot].into_boxed_slice();
    // SAFETY: an all-zero sockaddr_storage is a valid value of this
    // plain C struct.
    let zero_name: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut names = vec![zero_name; vlen].into_boxed_slice();
    let mut ctrls = vec![CtrlBuf::ZERO; vlen].into_boxed_slice();
    let mut iovs: Box<[libc::iovec]> = (0..vlen)
      .map(|k| libc::iovec { iov_base: bufs[k * slot..].as_mut_ptr().cast(), iov_len: slot })
      .collect();
    let hdrs: Box<[libc::mmsghdr]> = (0..vlen)
      .map(|k| {
        // SAFETY: an all-zero mmsghdr is a valid value of this plain
        // C struct (null pointers, zero lengths).
        let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
        h.msg_hdr.msg_name = (&mut names[k] as *mut libc::sockaddr_storage).cast();
        h.msg_hdr.msg_iov = &mut iovs[k];
        h.msg_hdr.msg_iovlen = 1;
        h.msg_hdr.msg_control = ctrls[k].0.as_mut_ptr().cast();
        h
      })
      .collect();
    let mut batch = RecvBatch {
      vlen,
      dirty: vlen,
      _bufs: bufs,
      _names: names,
      ctrls,
      _iovs: iovs,
      hdrs,
      max_drops: 0,
      truncated: 0,
      ctrunc: 0,
    };
    batch.reset();
    batch
  }

  /// Restore the in/out fields of every slot the kernel may have touched.
  fn reset(&mut self) {
    for h in &mut self.hdrs[..self.dirty] {
      h.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as _;
      h.msg_hdr.msg_controllen = cmsg::CTRL_LEN as _;
      h.msg_hdr.msg_flags = 0;
      h.msg_len = 0;
    }
    self.dirty = 0;
  }

  /// One recvmmsg(MSG_DONTWAIT). Ok(None) when nothing is queued (EAGAIN).
  pub fn recv(&mut self, fd: RawFd) -> io::Result<Option<Got>> {
    self.reset();
    // SAFETY: hdrs[..vlen] are initialised mmsghdrs whose name, iov and
    // control pointers point into boxed buffers owned by `self` with the
    // lengths recorded in them; no timeout pointer is passed.
    let r = unsafe {
      libc::recvmmsg(
        fd,
        self.hdrs.as_mut_ptr(),
        self.vlen as libc::c_uint,
        libc::MSG_DONTWAIT,
        std::ptr::null_mut(),
      )
    };
    if r < 0 {
      self.dirty = self.vlen;
      let e = io::Error::last_os_error();
      return match e.raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::EINTR) => Ok(None),
        _ => Err(e),
      };
    }
    let n = r as usize;
    self.dirty = n;
    let mut bytes = 0u64;
    for (h, ctrl) in self.hdrs[..n].iter().zip(self.ctrls.iter()) {
      bytes += u64::from(h.msg_len);
      let flags = h.msg_hdr.msg_flags;
      if flags & libc::MSG_TRUNC != 0 {
        self.truncated += 1;
      }
      if flags & libc::MSG_CTRUNC != 0 {
        self.ctrunc += 1;
      }
      // msg_controllen is size_t on glibc but socklen_t on musl.
      #[allow(clippy::unnecessary_cast)]
      let controllen = h.msg_hdr.msg_controllen as usize;
      if let Some(d) = cmsg::rxq_ovfl(ctrl, controllen) {
        self.max_drops = self.max_drops.max(u64::from(d));
      }
    }
    Ok(Some(Got { datagrams: n as u64, bytes }))
  }

  /// The last call's `n` datagrams copied into fresh memory of their own, as a library must
  /// hand over a batch its user may keep: per datagram a 16-byte record (length, offset,
  /// IPv4 source, port, family, flags: the compact layout udp-mmsg uses), then the payloads
  /// back to back. Every byte is written (no zeroing pass).
  pub fn copy_out(&self, n: usize) -> Vec<u8> {
    let hdrs = &self.hdrs[..n];
    let payload: usize = hdrs.iter().map(|h| h.msg_len as usize).sum();
    let mut out = Vec::with_capacity(16 * n + payload);
    let mut offset = 0u32;
    for (h, name) in hdrs.iter().zip(self._names.iter()) {
      // SAFETY: sockaddr_storage is large enough and aligned for a sockaddr_in; a non-IPv4
      // source only yields meaningless bytes in the record, never an invalid read.
      let sin = unsafe { &*(name as *const libc::sockaddr_storage as *const libc::sockaddr_in) };
      out.extend_from_slice(&h.msg_len.to_ne_bytes());
      out.extend_from_slice(&offset.to_ne_bytes());
      out.extend_from_slice(&sin.sin_addr.s_addr.to_ne_bytes());
      out.extend_from_slice(&u16::from_be(sin.sin_port).to_ne_bytes());
      out.extend_from_slice(&[4, 0]);
      offset += h.msg_len;
    }
    for h in hdrs {
      // SAFETY: the kernel wrote msg_len bytes (at most the slot's length, the only iovec)
      // at this slot's iov_base, a live buffer owned by `self`.
      let data = unsafe {
        let iov = &*h.msg_hdr.msg_iov;
        std::slice::from_raw_parts(iov.iov_base as *const u8, (h.msg_len as usize).min(iov.iov_len))
      };
      out.extend_from_slice(data);
    }
    out
  }

  /// Warn about truncation seen during the run.
  pub fn report_truncation(&self) {
    if self.truncated > 0 {
      warn(format!("{} datagrams were truncated (buffer too small)", self.truncated));
    }
    if self.ctrunc > 0 {
      warn(format!("{} control messages were truncated", self.ctrunc));
    }
  }
}

/// `ceiling recv --port P [--host H] --batch B --duration SECS [--rcvbuf BYTES]
///  [--expect N] [--bufsize BYTES] [--idle-ms MS] [--coalesce-us US] [--stop-on-eof]`
pub fn run(argv: &[String]) {
  let args = Args::parse(
    argv,
    &[
      "--port",
      "--host",
      "--batch",
      "--duration",
      "--rcvbuf",
      "--expect",
      "--bufsize",
      "--idle-ms",
      "--coalesce-us",
    ],
    &["--stop-on-eof"],
  );
  let port = args.req_u64("--port", 0, 65535) as u16;
  let host = crate::loopback_host(args.str("--host").unwrap_or("127.0.0.1"));
  let batch = (args.req_u64("--batch", 1, u64::MAX) as usize).min(MAX_BATCH);
  let duration = args.f64_pos("--duration", 86_400.0).unwrap_or_else(|| fail("--duration is required"));
  let rcvbuf = args.u64_in("--rcvbuf", 1, i32::MAX as u64).unwrap_or(DEFAULT_RCVBUF);
  let expect = args.u64_in("--expect", 1, u64::MAX);
  let bufsize = args.u64_in("--bufsize", 1, MAX_PAYLOAD as u64).unwrap_or(DEFAULT_BUFSIZE) as usize;
  // Stop once this long has passed without a datagram (after the first one).
  let idle = args.u64_in("--idle-ms", 1, 86_400_000).map(Duration::from_millis);
  // With --stop-on-eof the idle rule only applies once stdin reached end-of-file (the
  // parent closes it when its sender is done), so a stalled sender cannot end the run early.
  let stop_on_eof = args.flag("--stop-on-eof");
  let idle = if stop_on_eof { Some(idle.unwrap_or(Duration::from_millis(300))) } else { idle };
  let mut eof_at: Option<Instant> = None;
  // After a partial batch, sleep for the rest of this window (from the first datagram of the
  // batch) and fill the batch before polling again: the strategy udp-mmsg's I/O thread uses.
  let coalesce = args.u64_in("--coalesce-us", 1, 1_000_000).map(Duration::from_micros);

  let (sock, bound) = net::bind_udp(host, port);
  let (granted, forced) = net::set_rcvbuf(&sock, rcvbuf);
  net::enable_rxq_ovfl(&sock);
  let fd = sock.as_raw_fd();
  let mut rb = RecvBatch::new(batch, bufsize);
  if port == 0 {
    emit(&[("listening", Json::U(u64::from(bound)))]);
  }
  eprintln!(
    "ceiling recv: listening on {}, rcvbuf {granted} (forced: {forced}), batch {batch}",
    std::net::SocketAddr::new(host, bound)
  );
  let _ = io::stderr().flush();

  let target = expect.unwrap_or(u64::MAX);
  let cpu0 = net::cpu_ns();
  let start = Instant::now();
  let deadline = start + Duration::from_secs_f64(duration);
  let mut received = 0u64;
  let mut bytes = 0u64;
  let mut first: Option<Instant> = None;
  let mut last = start;
  // Coalescing state: datagrams in the current batch and when its window opened.
  let mut in_batch = 0usize;
  let mut window: Option<Instant> = None;
  // Bounds: the deadline, and an iteration cap no real run approaches.
  let max_iters = 4_000_000_000u64;
  let mut iters = 0u64;
  while received < target && iters < max_iters {
    iters += 1;
    let now = Instant::now();
    if now >= deadline {
      break;
    }
    match rb.recv(fd) {
      Ok(Some(got)) => {
        let t = Instant::now();
        first.get_or_insert(t);
        last = t;
        received += got.datagrams;
        bytes += got.bytes;
        in_batch += got.datagrams as usize;
        if in_batch >= batch {
          in_batch = 0;
          window = None;
        } else if let Some(c) = coalesce {
          let opened = *window.get_or_insert(t);
          let elapsed = t.duration_since(opened);
          if elapsed < c {
            std::thread::sleep(c - elapsed);
          } else {
            in_batch = 0;
            window = None;
          }
        }
      }
      Ok(None) => {
        if let (Some(c), Some(opened)) = (coalesce, window) {
          let elapsed = now.duration_since(opened);
          if in_batch > 0 && elapsed < c {
            std::thread::sleep(c - elapsed);
            continue;
          }
        }
        in_batch = 0;
        window = None;
        if let Some(limit) = idle {
          // Idle since the last datagram (or since stdin closed, with --stop-on-eof).
          let since = match (stop_on_eof, eof_at, first) {
            (true, Some(eof), _) => Some(last.max(eof)),
            (false, _, Some(_)) => Some(last),
            _ => None,
          };
          if since.is_some_and(|t| now.duration_since(t) >= limit) {
            break;
          }
        }
        let left = deadline.saturating_duration_since(now);
        let wait = left.as_millis().clamp(1, 100) as i32;
        let watch_stdin = if stop_on_eof && eof_at.is_none() { 0 } else { -1 };
        match net::poll_in_two(fd, watch_stdin, wait) {
          Ok((_, true)) if net::stdin_at_eof() => eof_at = Some(Instant::now()),
          Ok(_) => {}
          Err(e) => fail(format!("poll(POLLIN): {e}")),
        }
      }
      Err(e) => fail(format!("recvmmsg: {e}")),
    }
  }
  let cpu = net::cpu_ns().saturating_sub(cpu0);
  // Throughput window: first to last datagram (idle time before the sender
  // starts and after it stops is not counted).
  let ns = first.map_or(0, |f| last.duration_since(f).as_nanos() as u64);
  let drops = rb.max_drops.max(net::meminfo_drops(fd));
  rb.report_truncation();
  eprintln!(
    "ceiling recv: kernel drops: {} per SO_RXQ_OVFL cmsg, {} per SO_MEMINFO",
    rb.max_drops,
    net::meminfo_drops(fd)
  );
  eprintln!(
    "ceiling recv: {received} datagrams, {bytes} B, {drops} kernel drops, {:.3} s active",
    ns as f64 / 1e9
  );
  emit(&[
    ("mode", Json::S("recv")),
    ("received", Json::U(received)),
    ("bytes", Json::U(bytes)),
    ("kernelDrops", Json::U(drops)),
    ("ns", Json::U(ns)),
    ("cpuNs", Json::U(cpu)),
    ("pps", Json::F(per_second(received, ns))),
  ]);
}

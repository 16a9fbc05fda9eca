//! `ceiling send`: sendmmsg load generator / send ceiling, optionally paced,
//! sequence-numbered and GSO-batched. The `SendBatch` engine is also used by
//! `ceiling drain` to fill the stalled receiver.

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use socket2::SockAddr;

use crate::args::Args;
use crate::cmsg::{self, CtrlBuf};
use crate::net;
use crate::{emit, fail, per_second, warn, Json, MAX_BATCH, MAX_PAYLOAD};

/// Most segments one GSO send may carry (kernel UDP_MAX_SEGMENTS is >= 64).
pub const MAX_GSO_SEGS: usize = 64;
/// SO_SNDBUF we ask for.
const SNDBUF: u64 = 16 << 20;
/// Consecutive 100 ms POLLOUT timeouts tolerated before giving up (5 s).
const MAX_STALLS: u32 = 50;
/// Cap on sendmmsg attempts for one prepared batch (a safety bound only).
const MAX_ATTEMPTS_PER_BATCH: u64 = 10_000_000;

/// Running totals of one send run.
#[derive(Default)]
pub struct SendStats {
  pub syscalls: u64,
  pub eagain: u64,
}

/// How one `SendBatch::send` ended.
pub enum SendOutcome {
  /// Every prepared datagram went out.
  Done,
  /// A GSO send was refused (EIO/EINVAL/EOPNOTSUPP); the caller should fall
  /// back to plain sends. Datagrams counted so far did go out.
  GsoRefused(std::io::Error),
  /// The hard deadline passed mid-batch; some datagrams did not go out.
  TimedOut,
}

/// Preallocated, zeroed sendmmsg state: `vlen` entries, each one buffer of
/// `segs` datagrams of `size` bytes (segs == 1: plain sends, no cmsg).
/// The buffers and headers are boxed slices, so the raw pointers inside the
/// mmsghdrs stay valid when the struct moves.
pub struct SendBatch {
  size: usize,
  segs: usize,
  vlen: usize,
  seq: bool,
  /// Entries prepared by the last `prepare`, and datagrams in the last one.
  entries: usize,
  last_segs: usize,
  _dest: Box<SockAddr>,
  bufs: Box<[u8]>,
  /// `pattern[t] == t & 0xff`, long enough for any offset 0..256 + size.
  pattern: Box<[u8]>,
  _ctrl: Box<CtrlBuf>,
  iovs: Box<[libc::iovec]>,
  hdrs: Box<[libc::mmsghdr]>,
}

impl SendBatch {
  /// `segs > 1` turns on GSO (one UDP_SEGMENT cmsg shared by all entries).
  pub fn new(dest: SocketAddr, size: usize, vlen: usize, segs: usize, seq: bool) -> SendBatch {
    assert!(dest.ip().is_loopback(), "only loopback is ever a target");
    assert!((1..=MAX_BATCH).contains(&vlen) && segs >= 1 && size >= 1);
    let dest = Box::new(SockAddr::from(dest));
    let stride = size * segs;
    let mut bufs = vec![0u8; vlen * stride].into_boxed_slice();
    let pattern: Box<[u8]> = (0..256 + size).map(|t| (t & 0xff) as u8).collect();
    // Without --seq the payloads never change: fill them once, datagram i
    // of the batch gets byte j = (i + j) & 0xff.
    for (i, dgram) in bufs.chunks_exact_mut(size).enumerate() {
      let start = i & 0xff;
      dgram.copy_from_slice(&pattern[start..start + size]);
    }
    let mut ctrl = Box::new(CtrlBuf::ZERO);
    let ctrl_len = if segs > 1 {
      let seg = u16::try_from(size).unwrap_or_else(|_| fail("GSO segment size > 65535"));
      cmsg::write_udp_segment(&mut ctrl, seg)
    } else {
      0
    };
    let mut iovs: Box<[libc::iovec]> = (0..vlen)
      .map(|k| libc::iovec { iov_base: bufs[k * stride..].as_mut_ptr().cast(), iov_len: stride })
      .collect();
    let hdrs: Box<[libc::mmsghdr]> = (0..vlen)
      .map(|k| {
        // SAFETY: an all-zero mmsghdr is a valid value of this plain
        // C struct (null pointers, zero lengths).
        let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
        h.msg_hdr.msg_name = dest.as_ptr() as *mut libc::c_void;
        h.msg_hdr.msg_namelen = dest.len();
        h.msg_hdr.msg_iov = &mut iovs[k];
        h.msg_hdr.msg_iovlen = 1;
        if ctrl_len > 0 {
          h.msg_hdr.msg_control = ctrl.0.as_mut_ptr().cast();
          h.msg_hdr.msg_controllen = ctrl_len as _;
        }
        h
      })
      .collect();
    SendBatch {
      size,
      segs,
      vlen,
      seq,
      entries: 0,
      last_segs: 0,
      _dest: dest,
      bufs,
      pattern,
      _ctrl: ctrl,
      iovs,
      hdrs,
    }
  }

  /// Datagrams one full batch carries.
  pub fn capacity(&self) -> usize {
    self.vlen * self.segs
  }

  pub fn gso(&self) -> bool {
    self.segs > 1
  }

  /// Lay out `n` (1..=capacity) datagrams whose sequence numbers start at
  /// `first_seq`: every entry full except possibly the last.
  pub fn prepare(&mut self, first_seq: u64, n: usize) {
    debug_assert!(n >= 1 && n <= self.capacity());
    let entries = n.div_ceil(self.segs);
    let stride = self.size * self.segs;
    for k in 0..entries {
      let cnt = self.segs.min(n - k * self.segs);
      self.iovs[k].iov_len = cnt * self.size;
      self.hdrs[k].msg_len = 0;
      if self.seq {
        for d in 0..cnt {
          let i = first_seq + (k * self.segs + d) as u64;
          let at = k * stride + d * self.size;
          let dgram = &mut self.bufs[at..at + self.size];
          let start = (i & 0xff) as usize;
          dgram[8..].copy_from_slice(&self.pattern[start + 8..start + self.size]);
          dgram[..8].copy_from_slice(&i.to_le_bytes());
        }
      }
      self.last_segs = cnt;
    }
    self.entries = entries;
  }

  fn dgrams_in(&self, k: usize) -> u64 {
    if k + 1 == self.entries {
      self.last_segs as u64
    } else {
      self.segs as u64
    }
  }

  /// Send the prepared entries with sendmmsg(MSG_DONTWAIT), resuming after
  /// partial returns and waiting with poll(POLLOUT) on EAGAIN. Adds the
  /// datagrams that went out to `*sent`.
  pub fn send(&mut self, fd: RawFd, stats: &mut SendStats, sent: &mut u64, deadline: Instant) -> SendOutcome {
    let mut off = 0usize;
    let mut stalls = 0u32;
    let mut attempts = 0u64;
    while off < self.entries {
      attempts += 1;
      if attempts > MAX_ATTEMPTS_PER_BATCH || Instant::now() > deadline {
        return SendOutcome::TimedOut;
      }
      let vlen = (self.entries - off) as libc::c_uint;
      // SAFETY: hdrs[off..entries] are initialised mmsghdrs whose name,
      // iov and control pointers point into boxed buffers owned by
      // `self`, alive and unmoved for the duration of the call.
      let r = unsafe { libc::sendmmsg(fd, self.hdrs[off..].as_mut_ptr(), vlen, libc::MSG_DONTWAIT) };
      stats.syscalls += 1;
      if r > 0 {
        let r = r as usize;
        *sent += (off..off + r).map(|k| self.dgrams_in(k)).sum::<u64>();
        off += r;
        stalls = 0;
        continue;
      }
      let errno = if r == 0 { libc::EAGAIN } else { net::last_errno() };
      match errno {
        libc::EINTR => {}
        e if e == libc::EAGAIN || e == libc::EWOULDBLOCK || e == libc::ENOBUFS => {
          stats.eagain += 1;
          if e == libc::ENOBUFS {
            // Not a socket-buffer condition: poll would not wait.
            std::thread::sleep(Duration::from_micros(50));
            continue;
          }
          match net::poll_one(fd, libc::POLLOUT, 100) {
            Ok(true) => stalls = 0,
            Ok(false) => {
              stalls += 1;
              if stalls > MAX_STALLS {
                fail("socket not writable for 5 s");
              }
            }
            Err(e) => fail(format!("poll(POLLOUT): {e}")),
          }
        }
        libc::EIO | libc::EINVAL | libc::EOPNOTSUPP if self.gso() => {
          return SendOutcome::GsoRefused(std::io::Error::from_raw_os_error(errno));
        }
        e => fail(format!("sendmmsg: {}", std::io::Error::from_raw_os_error(e))),
      }
    }
    SendOutcome::Done
  }
}

/// What to send and how fast; shared by `send` and `drain`.
pub struct SendPlan {
  pub dest: SocketAddr,
  pub size: usize,
  pub batch: usize,
  pub segs: usize,
  pub seq: bool,
  /// Stop after this many datagrams (None: only the time limit applies).
  pub count: Option<u64>,
  /// Datagrams per second (None: as fast as possible).
  pub rate: Option<f64>,
  /// Hard stop (the --duration, or a safety cap in count mode).
  pub time_limit: Duration,
}

/// Result of `run_plan`.
pub struct SendReport {
  pub sent: u64,
  pub ns: u64,
  pub stats: SendStats,
  pub gso: bool,
}

/// Send according to `plan` from `sock` (unconnected, non-blocking).
pub fn run_plan(fd: RawFd, plan: &SendPlan) -> SendReport {
  let mut batch = SendBatch::new(plan.dest, plan.size, plan.batch, plan.segs, plan.seq);
  let mut stats = SendStats::default();
  let mut sent = 0u64;
  let target = plan.count.unwrap_or(u64::MAX);
  // Pacing wakes up for ~0.5 ms of traffic at a time (at least 1 datagram).
  let quantum = plan.rate.map(|r| ((r * 0.0005) as u64).clamp(1, batch.capacity() as u64));
  let start = Instant::now();
  let deadline = start + plan.time_limit;
  // Safety bound on loop iterations: far above anything reachable in time.
  let max_iters = 4_000_000_000u64;
  let mut iters = 0u64;
  while sent < target && iters < max_iters {
    iters += 1;
    let now = Instant::now();
    if now >= deadline {
      if plan.count.is_some() {
        warn(format!("time limit reached after {sent} of {target} datagrams"));
      }
      break;
    }
    let remaining = target - sent;
    let mut chunk = remaining.min(batch.capacity() as u64);
    if let (Some(rate), Some(quantum)) = (plan.rate, quantum) {
      // Absolute schedule: datagram k is due at start + k / rate, so
      // sleep overshoots never accumulate.
      let elapsed = now.duration_since(start).as_secs_f64();
      let due = ((elapsed * rate) as u64).min(target);
      let need = quantum.min(remaining);
      if due < sent + need {
        let wake = start + Duration::from_secs_f64((sent + need) as f64 / rate);
        let nap = wake.saturating_duration_since(now).min(deadline - now);
        std::thread::sleep(nap);
        continue;
      }
      chunk = chunk.min(due - sent);
    }
    batch.prepare(sent, chunk as usize);
    match batch.send(fd, &mut stats, &mut sent, deadline) {
      SendOutcome::Done => {}
      SendOutcome::TimedOut => {
        warn(format!("time limit reached mid-batch after {sent} datagrams"));
        break;
      }
      SendOutcome::GsoRefused(e) => {
        warn(format!("GSO send refused ({e}); falling back to plain sendmmsg"));
        batch = SendBatch::new(plan.dest, plan.size, plan.batch, 1, plan.seq);
      }
    }
  }
  let ns = start.elapsed().as_nanos() as u64;
  SendReport { sent, ns, stats, gso: batch.gso() }
}

/// `ceiling send --port P [--host H] --size S --batch B (--count N | --duration SECS)
///  [--rate PPS] [--gso SEGS] [--seq]`
pub fn run(argv: &[String]) {
  let args = Args::parse(
    argv,
    &["--port", "--host", "--size", "--batch", "--count", "--duration", "--rate", "--gso"],
    &["--seq"],
  );
  let port = args.req_u64("--port", 1, 65535) as u16;
  let host = crate::loopback_host(args.str("--host").unwrap_or("127.0.0.1"));
  let size = args.req_u64("--size", 1, MAX_PAYLOAD as u64) as usize;
  let batch = (args.req_u64("--batch", 1, u64::MAX) as usize).min(MAX_BATCH);
  let seq = args.flag("--seq");
  if seq && size < 8 {
    fail("--seq needs --size >= 8 (the sequence number is a u64)");
  }
  let rate = args.f64_pos("--rate", 1e9);
  let count = args.u64_in("--count", 1, 1 << 50);
  let duration = args.f64_pos("--duration", 86_400.0);
  let time_limit = match (count, duration) {
    (Some(_), Some(_)) | (None, None) => fail("give exactly one of --count or --duration"),
    // Paced: the datagram budget (below) ends the run at ~SECS; the last
    // quantum is due exactly at SECS, so allow 100 ms of slack.
    (None, Some(secs)) if rate.is_some() => Duration::from_secs_f64(secs + 0.1),
    (None, Some(secs)) => Duration::from_secs_f64(secs),
    // Count mode: a safety cap well above the expected run time.
    (Some(n), None) => match rate {
      Some(r) => Duration::from_secs_f64(n as f64 / r * 1.5 + 60.0),
      None => Duration::from_secs(600),
    },
  };
  // With a rate, a duration becomes a datagram budget of rate * duration.
  let count = match (count, duration, rate) {
    (None, Some(secs), Some(r)) => Some((secs * r).ceil().max(1.0) as u64),
    _ => count,
  };
  let segs = match args.u64_in("--gso", 1, u64::MAX) {
    None => 1,
    Some(req) => {
      let segs = (req as usize).min(MAX_GSO_SEGS).min(MAX_PAYLOAD / size);
      if segs != req as usize {
        warn(format!("--gso {req} capped to {segs} segments of {size} bytes"));
      }
      if segs <= 1 {
        warn("GSO with 1 segment per send is plain sendmmsg");
      }
      segs.max(1)
    }
  };

  net::minimize_timer_slack();
  let sock = net::udp_socket(host);
  net::set_sndbuf(&sock, SNDBUF);
  let plan = SendPlan { dest: SocketAddr::new(host, port), size, batch, segs, seq, count, rate, time_limit };
  let report = run_plan(sock.as_raw_fd(), &plan);
  if let Some(r) = rate {
    let got = per_second(report.sent, report.ns);
    if got < r * 0.98 {
      warn(format!("could not keep up: {got:.0} pps achieved of {r:.0} requested"));
    }
  }
  eprintln!(
    "ceiling send: {} datagrams of {size} B to {} in {:.3} s",
    report.sent,
    plan.dest,
    report.ns as f64 / 1e9
  );
  emit(&[
    ("mode", Json::S("send")),
    ("sent", Json::U(report.sent)),
    ("ns", Json::U(report.ns)),
    ("pps", Json::F(per_second(report.sent, report.ns))),
    ("syscalls", Json::U(report.stats.syscalls)),
    ("eagain", Json::U(report.stats.eagain)),
    ("gso", Json::B(report.gso)),
  ]);
}

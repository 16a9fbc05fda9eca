//! `ceiling sink`: a bound UDP socket nobody reads, the common destination of
//! the send benchmarks. Once its receive buffer is full the kernel drops every
//! further datagram at enqueue time (counted in `kernelDrops`), so senders
//! measure the cost of handing datagrams to the kernel without a competing
//! receiver process (and without the ICMP error an unbound port would cost).
//!
//! `ceiling setbuf`: force another process's socket receive buffer (used for
//! node:dgram, which cannot ask for `SO_RCVBUFFORCE` itself). It duplicates the
//! socket with `pidfd_getfd` (Linux 5.6+, needs ptrace rights over the target,
//! e.g. root) and sets `SO_RCVBUFFORCE` on the duplicate: both descriptors
//! name the same socket, so the target's buffer grows.

use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use crate::args::Args;
use crate::net;
use crate::{emit, fail, Json};

/// `ceiling sink --port P [--host H] --duration SECS [--rcvbuf BYTES]`
///
/// Binds, prints `{"listening":PORT,"rcvbuf":BYTES,"forced":BOOL}` (with `--port 0`), then sleeps without
/// reading until SECS pass or stdin reaches end-of-file (the parent closes
/// it), and prints the queued bytes and drop counter.
pub fn run(argv: &[String]) {
  let args = Args::parse(argv, &["--port", "--host", "--duration", "--rcvbuf"], &[]);
  let port = args.req_u64("--port", 0, 65535) as u16;
  let host = crate::loopback_host(args.str("--host").unwrap_or("127.0.0.1"));
  let duration = args.f64_pos("--duration", 86_400.0).unwrap_or_else(|| fail("--duration is required"));
  let (sock, bound) = net::bind_udp(host, port);
  let (granted, forced) = match args.u64_in("--rcvbuf", 1, i32::MAX as u64) {
    Some(b) => net::set_rcvbuf(&sock, b),
    None => (
      net::getsockopt_int(sock.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF)
        .map_or(0, |v| u64::try_from(v).unwrap_or(0)),
      false,
    ),
  };
  if port == 0 {
    emit(&[
      ("listening", Json::U(u64::from(bound))),
      ("rcvbuf", Json::U(granted)),
      ("forced", Json::B(forced)),
    ]);
  }
  eprintln!(
    "ceiling sink: bound {} (not reading), rcvbuf {granted} (forced: {forced})",
    std::net::SocketAddr::new(host, bound)
  );
  let _ = io::stderr().flush();

  let deadline = Instant::now() + Duration::from_secs_f64(duration);
  let mut buf = [0u8; 256];
  // Bounded by the deadline (each wait is at most 100 ms) and an iteration cap.
  for _ in 0..100_000_000u64 {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
      break;
    }
    let wait = left.as_millis().clamp(1, 100) as i32;
    match net::poll_one(0, libc::POLLIN, wait) {
      Ok(false) => continue,
      Ok(true) => {
        // SAFETY: `buf` is a live local array and we pass its exact length.
        let n = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
          break; // EOF (or an error): the parent is done with us.
        }
      }
      Err(_) => break,
    }
  }
  let fd = sock.as_raw_fd();
  emit(&[
    ("mode", Json::S("sink")),
    ("port", Json::U(u64::from(bound))),
    ("queuedBytes", Json::U(net::meminfo_rmem(fd))),
    ("kernelDrops", Json::U(net::meminfo_drops(fd))),
  ]);
}

/// A raw syscall returning a new file descriptor, wrapped as an `OwnedFd`.
fn owned(rc: libc::c_long, what: &str) -> io::Result<OwnedFd> {
  if rc < 0 {
    let e = io::Error::last_os_error();
    return Err(io::Error::new(e.kind(), format!("{what}: {e}")));
  }
  let fd = RawFd::try_from(rc).map_err(|_| io::Error::other(format!("{what}: fd out of range")))?;
  // SAFETY: the syscall just returned this descriptor to us; nothing else owns it.
  Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `ceiling setbuf --pid P --fd N --rcvbuf BYTES`
pub fn setbuf(argv: &[String]) {
  let args = Args::parse(argv, &["--pid", "--fd", "--rcvbuf"], &[]);
  let pid = args.req_u64("--pid", 1, i32::MAX as u64) as libc::pid_t;
  let target = args.req_u64("--fd", 0, i32::MAX as u64) as libc::c_int;
  let bytes = args.req_u64("--rcvbuf", 1, i32::MAX as u64);
  // SAFETY: pidfd_open(pid, flags) takes two integers and returns a new fd or -1.
  let pidfd =
    owned(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) }, "pidfd_open").unwrap_or_else(|e| fail(e));
  // SAFETY: pidfd_getfd(pidfd, targetfd, flags) takes three integers and returns a
  // new fd (a duplicate of the target process's descriptor) or -1.
  let dup =
    owned(unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), target, 0) }, "pidfd_getfd")
      .unwrap_or_else(|e| fail(e));
  let want = i32::try_from(bytes).unwrap_or(i32::MAX);
  let forced = net::setsockopt_int(dup.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, want).is_ok();
  if !forced {
    fail(format!(
      "setsockopt(SO_RCVBUFFORCE, {want}) on pid {pid} fd {target}: {}",
      io::Error::last_os_error()
    ));
  }
  let granted = net::getsockopt_int(dup.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF)
    .unwrap_or_else(|e| fail(format!("getsockopt(SO_RCVBUF): {e}")));
  emit(&[
    ("mode", Json::S("setbuf")),
    ("rcvbuf", Json::U(u64::try_from(granted).unwrap_or(0))),
    ("forced", Json::B(forced)),
  ]);
}

//! `ceiling drain`: pure receive-side cost. Fill a stalled receiver's queue,
//! then time recvmmsg(MSG_DONTWAIT) draining it until EAGAIN.
//!
//! With `--external` the queue is filled by another process (as the benchmark does for
//! udp-mmsg and node:dgram): the receiver prints `{"ready":true,"port":P,...}`, waits for a
//! line `go N` on stdin, then drains. This matters: a backlog the same thread sent drains
//! ~20 % faster (its skbs are allocated and freed on one CPU), which is not what a receiver
//! sees in production.

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use crate::args::Args;
use crate::net;
use crate::recv::{RecvBatch, DEFAULT_RCVBUF};
use crate::send::{run_plan, SendPlan};
use crate::{emit, fail, per_second, warn, Json, MAX_BATCH, MAX_PAYLOAD};

/// Most datagrams one drain run may queue (the queue must fit in rcvbuf anyway).
const MAX_COUNT: u64 = 100_000_000;
/// Hard time limit for the drain loop itself.
const DRAIN_LIMIT: Duration = Duration::from_secs(120);

/// Wait until the receiver's queued memory stops changing (loopback delivery
/// runs in softirq context and can trail the sender slightly). Bounded: at
/// most 200 checks of 5 ms (1 s).
fn settle(fd: std::os::fd::RawFd) {
  let mut prev = net::meminfo_rmem(fd);
  let mut stable = 0;
  for _ in 0..200 {
    std::thread::sleep(Duration::from_millis(5));
    let now = net::meminfo_rmem(fd);
    if now == prev {
      stable += 1;
      if stable >= 2 {
        return;
      }
    } else {
      stable = 0;
      prev = now;
    }
  }
}

/// `ceiling drain --count N --size S --batch B [--rcvbuf BYTES] [--family 4|6] [--external] [--keep]`
///
/// With `--keep` every batch is also copied into fresh memory that is kept until the drain
/// ends (see `RecvBatch::copy_out`): what any receiver must do whose batches may outlive the
/// next receive and are freed by a garbage collector (none runs during a short drain), as a
/// JS library's are. It measures that requirement alone, without a JS call.
pub fn run(argv: &[String]) {
  let args =
    Args::parse(argv, &["--count", "--size", "--batch", "--rcvbuf", "--family"], &["--external", "--keep"]);
  let external = args.flag("--external");
  let keep = args.flag("--keep");
  let count = args.req_u64("--count", 1, MAX_COUNT);
  let size = args.req_u64("--size", 1, MAX_PAYLOAD as u64) as usize;
  let batch = (args.req_u64("--batch", 1, u64::MAX) as usize).min(MAX_BATCH);
  let rcvbuf = args.u64_in("--rcvbuf", 1, i32::MAX as u64).unwrap_or(DEFAULT_RCVBUF);
  let host = match args.str("--family").unwrap_or("4") {
    "4" => crate::loopback_host("127.0.0.1"),
    "6" => crate::loopback_host("::1"),
    other => fail(format!("--family must be 4 or 6, got {other:?}")),
  };

  // Receiver: bound, big buffer, drop counter on; it does not read yet.
  let (rx, port) = net::bind_udp(host, 0);
  let (granted, forced) = net::set_rcvbuf(&rx, rcvbuf);
  net::enable_rxq_ovfl(&rx);
  let rx_fd = rx.as_raw_fd();

  let sent = if external {
    emit(&[
      ("ready", Json::B(true)),
      ("port", Json::U(port as u64)),
      ("rcvbuf", Json::U(granted)),
      ("forced", Json::B(forced)),
    ]);
    let mut line = String::new();
    if std::io::stdin().read_line(&mut line).is_err() {
      fail("drain --external: no `go N` line on stdin");
    }
    match line.trim().strip_prefix("go ").map(|n| n.trim().parse::<u64>()) {
      Some(Ok(n)) => n,
      _ => fail(format!("drain --external: expected `go N` on stdin, got {:?}", line.trim())),
    }
  } else {
    // Fill its queue with plain sendmmsg, as fast as possible.
    let tx = net::udp_socket(host);
    net::set_sndbuf(&tx, 16 << 20);
    let plan = SendPlan {
      dest: std::net::SocketAddr::new(host, port),
      size,
      batch: MAX_BATCH,
      segs: 1,
      seq: false,
      count: Some(count),
      rate: None,
      time_limit: Duration::from_secs(600),
    };
    run_plan(tx.as_raw_fd(), &plan).sent
  };
  settle(rx_fd);
  eprintln!(
        "ceiling drain: queued {sent} datagrams of {size} B ({} B of receive memory), draining with batch {batch}",
        net::meminfo_rmem(rx_fd)
    );

  // Drain: recvmmsg(MSG_DONTWAIT) until EAGAIN. Each successful call takes
  // at least one datagram, so `sent + 1` calls always suffice.
  let mut rb = RecvBatch::new(batch, size);
  let mut received = 0u64;
  let mut kept: Vec<Vec<u8>> = Vec::new();
  let (cpu0, faults0) = (net::cpu_ns(), net::minor_faults());
  let start = Instant::now();
  let deadline = start + DRAIN_LIMIT;
  for _ in 0..=sent {
    match rb.recv(rx_fd) {
      Ok(Some(got)) => {
        received += got.datagrams;
        if keep {
          kept.push(rb.copy_out(got.datagrams as usize));
        }
      }
      Ok(None) => break,
      Err(e) => fail(format!("recvmmsg: {e}")),
    }
    if Instant::now() > deadline {
      warn("drain time limit reached");
      break;
    }
  }
  let ns = start.elapsed().as_nanos() as u64;
  let (cpu, faults) = (net::cpu_ns().saturating_sub(cpu0), net::minor_faults().saturating_sub(faults0));
  let kept_bytes: usize = kept.iter().map(Vec::len).sum();
  drop(kept);
  let drops = rb.max_drops.max(net::meminfo_drops(rx_fd));
  rb.report_truncation();
  eprintln!(
    "ceiling drain: kernel drops: {} per SO_RXQ_OVFL cmsg, {} per SO_MEMINFO",
    rb.max_drops,
    net::meminfo_drops(rx_fd)
  );
  if received + drops < sent {
    warn(format!("{} datagrams neither received nor counted as dropped", sent - received - drops));
  }
  emit(&[
    ("mode", Json::S("drain")),
    ("sent", Json::U(sent)),
    ("received", Json::U(received)),
    ("kernelDrops", Json::U(drops)),
    ("ns", Json::U(ns)),
    ("pps", Json::F(per_second(received, ns))),
    ("cpuNs", Json::U(cpu)),
    ("minorFaults", Json::U(faults)),
    ("keptBytes", Json::U(kept_bytes as u64)),
    ("rcvbuf", Json::U(granted)),
    ("forced", Json::B(forced)),
  ]);
}

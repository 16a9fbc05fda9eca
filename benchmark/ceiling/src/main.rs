//! `ceiling`: the raw recvmmsg/sendmmsg ceiling for udp-mmsg benchmarks and a
//! native UDP load generator.
//!
//! Subcommands (see README.md):
//!   ceiling drain --count N --size S --batch B [--rcvbuf BYTES] [--family 4|6]
//!   ceiling send  --port P [--host 127.0.0.1|::1] --size S --batch B
//!                 (--count N | --duration SECS) [--rate PPS] [--gso SEGS] [--seq]
//!   ceiling recv  --port P [--host 127.0.0.1|::1] --batch B --duration SECS
//!                 [--rcvbuf BYTES] [--expect N] [--bufsize BYTES]
//!   ceiling sink  --port P [--host 127.0.0.1|::1] --duration SECS [--rcvbuf BYTES]
//!   ceiling setbuf --pid P --fd N --rcvbuf BYTES
//!
//! Every subcommand prints exactly one line of JSON to stdout when it is done
//! (`recv --port 0` first prints a `{"listening":PORT}` line). Progress and
//! errors go to stderr; any error exits with status 2.

#![warn(clippy::undocumented_unsafe_blocks)]

mod args;
mod cmsg;
mod drain;
mod net;
mod recv;
mod send;
mod sink;

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Largest UDP payload we ever send or expect (IPv4 limit, also used for IPv6).
pub const MAX_PAYLOAD: usize = 65507;
/// Largest vlen passed to recvmmsg/sendmmsg (the kernel's UIO_MAXIOV).
pub const MAX_BATCH: usize = 1024;

const USAGE: &str = "\
usage:
  ceiling drain --count N --size S --batch B [--rcvbuf BYTES] [--family 4|6]
  ceiling send  --port P [--host 127.0.0.1|::1] --size S --batch B
                (--count N | --duration SECS) [--rate PPS] [--gso SEGS] [--seq]
  ceiling recv  --port P [--host 127.0.0.1|::1] --batch B --duration SECS
                [--rcvbuf BYTES] [--expect N] [--bufsize BYTES]
  ceiling sink  --port P [--host 127.0.0.1|::1] --duration SECS [--rcvbuf BYTES]
  ceiling setbuf --pid P --fd N --rcvbuf BYTES
Only loopback (127.0.0.1 / ::1) is ever used. Output: one JSON line on stdout.";

/// Print `ceiling: error: MSG` to stderr and exit with status 2.
pub fn fail(msg: impl std::fmt::Display) -> ! {
  eprintln!("ceiling: error: {msg}");
  std::process::exit(2);
}

/// Print a warning to stderr.
pub fn warn(msg: impl std::fmt::Display) {
  eprintln!("ceiling: warning: {msg}");
}

/// A JSON value as printed in the single output line.
pub enum Json<'a> {
  U(u64),
  F(f64),
  B(bool),
  S(&'a str),
}

/// Print one JSON object on one stdout line and flush it.
pub fn emit(fields: &[(&str, Json<'_>)]) {
  let mut line = String::from("{");
  for (i, (key, val)) in fields.iter().enumerate() {
    if i > 0 {
      line.push(',');
    }
    line.push('"');
    line.push_str(key);
    line.push_str("\":");
    match val {
      Json::U(v) => line.push_str(&v.to_string()),
      // JSON has no NaN/Infinity: print 0 for non-finite values.
      Json::F(v) if v.is_finite() => line.push_str(&format!("{v:.1}")),
      Json::F(_) => line.push('0'),
      Json::B(v) => line.push_str(if *v { "true" } else { "false" }),
      // Only fixed ASCII identifiers are ever printed here: no escaping needed.
      Json::S(v) => {
        line.push('"');
        line.push_str(v);
        line.push('"');
      }
    }
  }
  line.push('}');
  let mut out = std::io::stdout().lock();
  if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
    fail("cannot write to stdout");
  }
}

/// Datagrams (or any count) per second, guarded against a zero duration.
pub fn per_second(count: u64, ns: u64) -> f64 {
  if ns == 0 {
    0.0
  } else {
    count as f64 * 1e9 / ns as f64
  }
}

/// Parse a `--host` value: only the two loopback addresses are accepted.
pub fn loopback_host(text: &str) -> IpAddr {
  match text {
    "127.0.0.1" => IpAddr::V4(Ipv4Addr::LOCALHOST),
    "::1" | "[::1]" => IpAddr::V6(Ipv6Addr::LOCALHOST),
    other => fail(format!("--host must be 127.0.0.1 or ::1 (loopback only), got {other:?}")),
  }
}

fn main() {
  let argv: Vec<String> = std::env::args().skip(1).collect();
  let Some(cmd) = argv.first() else {
    eprintln!("{USAGE}");
    std::process::exit(2);
  };
  let rest = &argv[1..];
  match cmd.as_str() {
    "drain" => drain::run(rest),
    "send" => send::run(rest),
    "recv" => recv::run(rest),
    "sink" => sink::run(rest),
    "setbuf" => sink::setbuf(rest),
    "-h" | "--help" | "help" => {
      eprintln!("{USAGE}");
    }
    other => {
      eprintln!("{USAGE}");
      fail(format!("unknown subcommand {other:?}"));
    }
  }
}

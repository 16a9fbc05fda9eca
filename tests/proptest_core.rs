//! Property tests of the pure Rust core of udp-mmsg (no Node needed):
//! `cargo test --test proptest_core` (set PROPTEST_CASES to change the number of cases).
//!
//! - `addr`: IP literal parsing and formatting round-trip; `decode_sockaddr` never reads past
//!   the kernel-reported length, whatever the bytes.
//! - `cmsg`: `parse` on arbitrary bytes never panics and never yields data outside the first
//!   `len` bytes; it round-trips what `write` wrote; `WrappingCounter` survives wraps.
//! - `batch`: `BatchBuilder` offsets/lengths/metadata are consistent for random payload sets,
//!   including short batches that are re-laid out.
//! - `send`: `Packed::validate` accepts exactly the consistent arrays (checked against an
//!   independent model), and valid batches round-trip over loopback.
//! - `recv`: random datagrams received through `RecvSlab` (batched and portable, any slot size)
//!   come out with the right lengths, bytes and truncation flags.
//!
//! Only loopback (127.0.0.1 / ::1) is used. Under Miri (`cargo +nightly miri test --test
//! proptest_core`) the socket-based properties and interface-name lookups are skipped: Miri
//! cannot make those system calls.

#![warn(clippy::undocumented_unsafe_blocks)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use proptest::prelude::*;
use udp_mmsg::addr::{self, CompactAddr};
use udp_mmsg::batch::{
  fits_compact, BatchBuilder, Extra, MetaLayout, FLAGS_NEEDING_FULL, FLAG_LOCAL, FLAG_TIMESTAMP, FLAG_TOS,
};
use udp_mmsg::cmsg::{self, WrappingCounter};

/// Converts a compact address back to a `SocketAddr` (the inverse of `decode_sockaddr`, for
/// checking it).
fn compact_to_socket_addr(c: &CompactAddr) -> Option<SocketAddr> {
  match c.family {
    addr::FAMILY_V4 => {
      let ip = Ipv4Addr::new(c.bytes[0], c.bytes[1], c.bytes[2], c.bytes[3]);
      Some(SocketAddr::V4(SocketAddrV4::new(ip, c.port)))
    }
    addr::FAMILY_V6 => {
      Some(SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(c.bytes), c.port, 0, c.scope_id)))
    }
    _ => None,
  }
}

fn cases(default: u32) -> ProptestConfig {
  // PROPTEST_CASES overrides the per-property defaults; Miri is ~1000x slower, so a handful of
  // cases there still exercises every path.
  let env = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok());
  let n = if cfg!(miri) { env.unwrap_or(4) } else { env.unwrap_or(default) };
  ProptestConfig { cases: n, failure_persistence: None, ..ProptestConfig::default() }
}

fn u32_at(m: &[u8], at: usize) -> u32 {
  u32::from_ne_bytes(m[at..at + 4].try_into().unwrap())
}

// ---- addr ------------------------------------------------------------------------------------

fn any_ipv6() -> impl Strategy<Value = Ipv6Addr> {
  prop_oneof![
    any::<[u8; 16]>().prop_map(Ipv6Addr::from),
    // Runs of zeros and IPv4-mapped / compatible forms are where formatting gets interesting.
    (any::<[u16; 8]>(), any::<u8>()).prop_map(|(mut w, zeros)| {
      for (i, x) in w.iter_mut().enumerate() {
        if zeros & (1 << i) != 0 {
          *x = 0;
        }
      }
      Ipv6Addr::from(w)
    }),
    any::<[u8; 4]>().prop_map(|b| Ipv4Addr::from(b).to_ipv6_mapped()),
  ]
}

proptest! {
  #![proptest_config(cases(512))]

  #[test]
  fn ipv4_literals_round_trip(b in any::<[u8; 4]>(), port in any::<u16>()) {
    let ip = Ipv4Addr::from(b);
    let text = ip.to_string();
    prop_assert_eq!(addr::parse_ip(&text), Ok((IpAddr::V4(ip), 0)));
    let sa = addr::socket_addr(&text, port).unwrap();
    prop_assert_eq!(sa, SocketAddr::V4(SocketAddrV4::new(ip, port)));
    prop_assert_eq!(addr::ip_to_string(&sa), text);
    // Dual-stack sending maps it, keeping the port.
    let m = addr::to_v6_mapped(sa);
    prop_assert_eq!(m.port(), port);
    match m {
      SocketAddr::V6(v6) => prop_assert_eq!(v6.ip().to_ipv4_mapped(), Some(ip)),
      SocketAddr::V4(_) => prop_assert!(false, "not mapped"),
    }
  }

  #[test]
  fn ipv6_literals_round_trip(ip in any_ipv6(), port in any::<u16>(), scope in any::<u32>()) {
    let text = ip.to_string();
    prop_assert_eq!(addr::parse_ip(&text), Ok((IpAddr::V6(ip), 0)));
    prop_assert_eq!(addr::parse_ip(&text.to_uppercase()), Ok((IpAddr::V6(ip), 0)));
    let scoped = format!("{text}%{scope}");
    prop_assert_eq!(addr::parse_ip(&scoped), Ok((IpAddr::V6(ip), scope)));
    let sa = addr::socket_addr(&scoped, port).unwrap();
    prop_assert_eq!(sa, SocketAddr::V6(SocketAddrV6::new(ip, port, 0, scope)));
    let shown = addr::ip_to_string(&sa);
    if scope == 0 {
      prop_assert_eq!(&shown, &text);
    } else {
      prop_assert_eq!(&shown, &scoped);
    }
    // What is shown parses back to the same address and scope.
    prop_assert_eq!(addr::parse_ip(&shown), Ok((IpAddr::V6(ip), scope)));
    // IPv6 is left alone by the dual-stack mapping.
    prop_assert_eq!(addr::to_v6_mapped(sa), sa);
  }

  #[test]
  fn parse_ip_never_panics_and_what_it_accepts_is_an_ip(text in "\\PC{0,48}") {
    // (Interface names in a scope are looked up with if_nametoindex, which Miri cannot call.)
    if cfg!(miri) && text.contains('%') {
      return Ok(());
    }
    if let Ok((ip, scope)) = addr::parse_ip(&text) {
      let head = text.split('%').next().unwrap();
      prop_assert_eq!(head.parse::<IpAddr>().ok(), Some(ip));
      if !text.contains('%') {
        prop_assert_eq!(scope, 0);
      } else {
        prop_assert!(ip.is_ipv6(), "a scope is only accepted on IPv6");
      }
    }
  }

  #[test]
  fn hostnames_and_near_misses_are_refused(
    text in prop_oneof![
      "[a-z][a-z0-9-]{0,20}(\\.[a-z]{2,6})?",
      "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}",
      "(25[6-9]|2[6-9][0-9]|[3-9][0-9][0-9])\\.[0-9]\\.[0-9]\\.[0-9]",
      "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}%[0-9]{1,3}",
    ]
  ) {
    // Hex-only words like "cafe" or "be" are not IPv6 either (no colon), so all must fail.
    prop_assert!(addr::parse_ip(&text).is_err(), "{} accepted", text);
  }

  #[test]
  fn decode_sockaddr_round_trips_what_the_kernel_writes(
    ip in prop_oneof![any::<[u8; 4]>().prop_map(|b| IpAddr::V4(Ipv4Addr::from(b))), any_ipv6().prop_map(IpAddr::V6)],
    port in any::<u16>(),
    scope in any::<u32>(),
  ) {
    let sa = match ip {
      IpAddr::V4(v4) => SocketAddr::V4(SocketAddrV4::new(v4, port)),
      IpAddr::V6(v6) => SocketAddr::V6(SocketAddrV6::new(v6, port, 0, scope)),
    };
    let sock = socket2::SockAddr::from(sa);
    // SAFETY: all-zero bytes are a valid sockaddr_storage; at most its size is copied into it.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = sock.len() as usize;
    // SAFETY: `sock` holds `len` initialised bytes and `storage` has room for any sockaddr.
    unsafe { std::ptr::copy_nonoverlapping(sock.as_ptr() as *const u8, &mut storage as *mut _ as *mut u8, len) };
    let c = addr::decode_sockaddr(&storage, sock.len());
    prop_assert_eq!(compact_to_socket_addr(&c), Some(sa));
    prop_assert_eq!(c.port, port);
    // One byte short of the family's size: refused (family 0), never read past the length.
    let short = addr::decode_sockaddr(&storage, sock.len() - 1);
    prop_assert_eq!(short.family, 0);
    prop_assert_eq!(compact_to_socket_addr(&short), None);
  }

  #[test]
  fn decode_sockaddr_of_arbitrary_bytes_respects_the_length(
    bytes in proptest::collection::vec(any::<u8>(), 128),
    family in prop_oneof![Just(libc::AF_INET), Just(libc::AF_INET6), Just(libc::AF_UNIX), any::<u16>().prop_map(|f| f as i32)],
    len in 0u32..200,
  ) {
    // SAFETY: all-zero bytes are a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let n = std::mem::size_of::<libc::sockaddr_storage>().min(bytes.len());
    // SAFETY: copies n <= size_of(sockaddr_storage) bytes into it.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), &mut storage as *mut _ as *mut u8, n) };
    storage.ss_family = family as libc::sa_family_t;
    let c = addr::decode_sockaddr(&storage, len);
    match c.family {
      4 => prop_assert!(len as usize >= std::mem::size_of::<libc::sockaddr_in>() && family as u16 == libc::AF_INET as u16),
      6 => prop_assert!(len as usize >= std::mem::size_of::<libc::sockaddr_in6>() && family as u16 == libc::AF_INET6 as u16),
      0 => prop_assert_eq!(c, CompactAddr::default()),
      other => prop_assert!(false, "family {}", other),
    }
  }
}

// ---- cmsg ------------------------------------------------------------------------------------

proptest! {
  #![proptest_config(cases(1024))]

  #[test]
  fn cmsg_parse_of_arbitrary_bytes_stays_inside_len(
    buf in proptest::collection::vec(any::<u8>(), 0..512),
    len in 0usize..600,
    fill_hdr in proptest::option::of((0usize..64, 0usize..1024)),
  ) {
    let mut buf = buf;
    // Sometimes plant a header with a chosen length at a chosen offset, to reach the paths
    // past the first message.
    if let Some((at, claimed)) = fill_hdr {
      if at + cmsg::HDR <= buf.len() {
        let claimed = claimed as u64;
        buf[at..at + std::mem::size_of::<usize>()].copy_from_slice(&(claimed as usize).to_ne_bytes());
      }
    }
    let limit = len.min(buf.len());
    let base = buf.as_ptr() as usize;
    let mut count = 0;
    for c in cmsg::parse(&buf, len).take(10_000) {
      count += 1;
      let start = c.data.as_ptr() as usize - base;
      prop_assert!(start >= cmsg::HDR, "data starts after a header");
      prop_assert!(start + c.data.len() <= limit, "data {}..{} is inside the first {} bytes", start, start + c.data.len(), limit);
      // The readers never panic on any payload.
      let _ = cmsg::read_u32(c.data);
      let _ = cmsg::read_int(c.data);
    }
    // Every message takes at least one aligned header, so the walk is bounded by len.
    prop_assert!(count <= limit / cmsg::HDR + 1);
  }

  #[test]
  fn cmsg_parse_round_trips_what_write_wrote(
    msgs in proptest::collection::vec((any::<i32>(), any::<i32>(), proptest::collection::vec(any::<u8>(), 0..64)), 0..8),
    slack in 0usize..32,
    garbage in any::<u8>(),
  ) {
    let need: usize = msgs.iter().map(|(_, _, p)| cmsg::space(p.len())).sum();
    // Garbage after the written region must never be read: len stops the walk.
    let mut buf = vec![garbage; need + slack];
    let mut used = 0;
    for (level, kind, payload) in &msgs {
      let n = cmsg::write(&mut buf[used..], *level, *kind, payload).expect("fits");
      prop_assert_eq!(n, cmsg::space(payload.len()));
      used += n;
    }
    prop_assert_eq!(used, need);
    let found: Vec<_> = cmsg::parse(&buf, used).collect();
    prop_assert_eq!(found.len(), msgs.len());
    for (c, (level, kind, payload)) in found.iter().zip(&msgs) {
      prop_assert_eq!(c.level, *level);
      prop_assert_eq!(c.kind, *kind);
      prop_assert_eq!(c.data, &payload[..]);
      if payload.len() >= 4 {
        prop_assert_eq!(cmsg::read_u32(c.data), Some(u32::from_ne_bytes(payload[..4].try_into().unwrap())));
        prop_assert_eq!(cmsg::read_int(c.data), Some(i32::from_ne_bytes(payload[..4].try_into().unwrap())));
      }
    }
  }

  #[test]
  fn cmsg_write_refuses_a_buffer_one_byte_short(payload in proptest::collection::vec(any::<u8>(), 0..64), level in any::<i32>()) {
    let need = cmsg::space(payload.len());
    let mut buf = vec![0xAAu8; need];
    prop_assert_eq!(cmsg::write(&mut buf[..need - 1], level, 1, &payload), None);
    prop_assert!(buf.iter().all(|&b| b == 0xAA), "nothing written when it does not fit");
    prop_assert_eq!(cmsg::write(&mut buf, level, 1, &payload), Some(need));
  }

  #[test]
  fn wrapping_counter_totals_increments_across_wraps(start in any::<u32>(), steps in proptest::collection::vec(0u32..(1 << 30), 0..40)) {
    let mut c = WrappingCounter::default();
    c.observe(start);
    let mut reading = start;
    let mut want = start as u64;
    for s in &steps {
      reading = reading.wrapping_add(*s);
      want += *s as u64;
      c.observe(reading);
      // A stale reading (older than the last) and a repeat change nothing.
      c.observe(reading.wrapping_sub(1 + s % 1000));
      c.observe(reading);
      prop_assert_eq!(c.total(), want);
    }
  }
}

// ---- batch -----------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Dgram {
  payload: Vec<u8>,
  from: CompactAddr,
  extra: Extra,
}

fn any_compact() -> impl Strategy<Value = CompactAddr> {
  (prop_oneof![Just(0u8), Just(4u8), Just(6u8)], any::<u16>(), any::<[u8; 16]>(), any::<u32>())
    .prop_map(|(family, port, bytes, scope_id)| CompactAddr { family, port, bytes, scope_id })
}

fn any_dgram() -> impl Strategy<Value = Dgram> {
  (
    proptest::collection::vec(any::<u8>(), 0..300),
    any_compact(),
    0u8..16,
    any::<u64>(),
    any::<u8>(),
    any_compact(),
    any::<u32>(),
  )
    .prop_map(|(payload, from, flags, timestamp_ns, tos, local, ifindex)| Dgram {
      payload,
      from,
      extra: Extra { flags, timestamp_ns, tos, local, ifindex },
    })
}

proptest! {
  #![proptest_config(cases(256))]

  #[test]
  fn batch_builder_bookkeeping_is_consistent(
    dgrams in proptest::collection::vec(any_dgram(), 0..80),
    reserve_extra in 0usize..40,
    bytes_hint in prop_oneof![Just(None), (0usize..100).prop_map(Some)],
    drops in proptest::option::of(any::<u64>()),
    compact in any::<bool>(),
  ) {
    // For a compact batch most datagrams are made to fit it (IPv4 source, no extras); every
    // seventh is left as drawn, and must be refused unless it happens to fit.
    let dgrams: Vec<Dgram> = dgrams
      .into_iter()
      .enumerate()
      .map(|(i, mut d)| {
        if compact && i % 7 != 6 {
          d.from.family = 4;
          d.from.bytes[4..].fill(0);
          d.from.scope_id = 0;
          d.extra.flags &= !FLAGS_NEEDING_FULL;
        }
        d
      })
      .collect();
    let total: usize = dgrams.iter().map(|d| d.payload.len()).sum();
    // Reserve room for more datagrams than pushed (a short batch is re-laid out), and a payload
    // hint that may be wrong (the buffer grows).
    let mut b = BatchBuilder::new(dgrams.len() + reserve_extra, bytes_hint.unwrap_or(total), compact);
    let mut kept = Vec::new();
    for d in &dgrams {
      let fits = !compact || fits_compact(&d.from, &d.extra);
      prop_assert_eq!(b.push(&d.payload, &d.from, &d.extra), fits);
      if fits {
        kept.push(d);
      }
    }
    let n = kept.len();
    let total: usize = kept.iter().map(|d| d.payload.len()).sum();
    if reserve_extra == 0 && n == dgrams.len() {
      prop_assert!(!b.push(b"x", &CompactAddr::default(), &Extra::default()), "a full builder refuses more");
    }
    let r = b.finish(drops);
    let l = MetaLayout { count: n, compact };
    let per = if compact { 16 } else { 64 };
    prop_assert_eq!(r.layout(), l);
    prop_assert_eq!(r.count as usize, n);
    prop_assert_eq!(r.meta_len, l.total());
    prop_assert_eq!(r.meta().len(), per * n);
    prop_assert_eq!(r.bytes.len(), per * n + total);
    prop_assert_eq!(r.kernel_drops, drops);
    let m = r.meta();
    let data = r.data();
    let w = l.address_width();
    let mut expect_off = 0usize;
    for (i, d) in kept.iter().enumerate() {
      let len = u32_at(m, l.lengths() + 4 * i) as usize;
      let off = u32_at(m, l.offsets() + 4 * i) as usize;
      prop_assert_eq!(len, d.payload.len());
      prop_assert_eq!(off, expect_off, "payloads are back to back");
      prop_assert_eq!(&data[off..off + len], &d.payload[..]);
      expect_off += len;
      prop_assert_eq!(u16::from_ne_bytes([m[l.ports() + 2 * i], m[l.ports() + 2 * i + 1]]), d.from.port);
      prop_assert_eq!(m[l.families() + i], d.from.family);
      prop_assert_eq!(m[l.flags() + i], d.extra.flags);
      prop_assert_eq!(&m[l.addresses() + w * i..l.addresses() + w * i + w], &d.from.bytes[..w]);
      let Some(x) = l.extras() else { continue };
      prop_assert_eq!(u32_at(m, x.scopes + 4 * i), d.from.scope_id);
      let ts = u64::from_ne_bytes(m[x.timestamps + 8 * i..x.timestamps + 8 * i + 8].try_into().unwrap());
      prop_assert_eq!(ts, if d.extra.flags & FLAG_TIMESTAMP != 0 { d.extra.timestamp_ns } else { 0 });
      prop_assert_eq!(m[x.tos + i], if d.extra.flags & FLAG_TOS != 0 { d.extra.tos } else { 0 });
      let local = d.extra.flags & FLAG_LOCAL != 0;
      prop_assert_eq!(u32_at(m, x.ifindexes + 4 * i), if local { d.extra.ifindex } else { 0 });
      prop_assert_eq!(m[x.local_families + i], if local { d.extra.local.family } else { 0 });
      let la = &m[x.local_addresses + 16 * i..x.local_addresses + 16 * i + 16];
      prop_assert_eq!(la, if local { &d.extra.local.bytes[..] } else { &[0u8; 16][..] });
    }
    prop_assert_eq!(expect_off, data.len());
    if !compact {
      // The reserved bytes between the sections stay zero.
      prop_assert!(m[30 * n..32 * n].iter().all(|&b| b == 0));
    }
  }
}

// ---- send::Packed::validate ------------------------------------------------------------------

mod packed {
  use super::*;
  use socket2::SockAddr;
  use udp_mmsg::send::Packed;

  #[derive(Debug, Clone)]
  pub struct Arrays {
    pub data_len: usize,
    pub part_lens: Vec<u32>,
    pub parts: Option<Vec<u32>>,
    pub dest_index: Option<Vec<u32>>,
    pub dests: usize,
    pub source_index: Option<Vec<u32>>,
    pub sources: usize,
    pub tos: Option<Vec<i32>>,
  }

  /// Consistent arrays, then maybe one random disturbance of one of them.
  pub fn arrays() -> impl Strategy<Value = Arrays> {
    let base = (
      proptest::collection::vec(proptest::collection::vec(0u32..50, 0..4), 0..12),
      1usize..4,
      0usize..3,
      any::<bool>(),
      any::<bool>(),
      any::<bool>(),
      any::<u64>(),
    );
    (base, 0u8..12, any::<u32>()).prop_map(
      |((msgs, dests, sources, multi, with_src, with_tos, seed), disturb, v)| {
        let part_lens: Vec<u32> = msgs.iter().flatten().copied().collect();
        let count = msgs.len();
        let pick = |k: usize| if k == 0 { 0 } else { (seed as usize) % k };
        let mut a = Arrays {
          data_len: part_lens.iter().map(|&l| l as usize).sum(),
          parts: if msgs.iter().all(|m| m.len() == 1) && seed % 2 == 0 {
            None
          } else {
            Some(msgs.iter().map(|m| m.len() as u32).collect())
          },
          part_lens,
          dest_index: multi.then(|| (0..count).map(|i| (i % dests) as u32).collect()),
          dests,
          source_index: with_src.then(|| (0..count).map(|i| (i % (sources + 1)) as u32).collect()),
          sources,
          tos: with_tos.then(|| (0..count).map(|i| (i as i32 % 257) - 1).collect()),
        };
        match disturb {
          1 => a.data_len = a.data_len.wrapping_add(1 + (v as usize % 3)),
          2 if !a.part_lens.is_empty() => {
            let k = pick(a.part_lens.len());
            a.part_lens[k] = a.part_lens[k].wrapping_add(v | 1);
          }
          3 => a.parts.get_or_insert_with(Vec::new).push(1 + v % 3),
          4 if count > 0 => {
            a.dest_index = Some(
              (0..count)
                .map(|i| if i == pick(count) { (dests as u32).saturating_add(v % 5) } else { 0 })
                .collect(),
            )
          }
          5 => a.dest_index = Some(vec![0; count + 1 + (v as usize % 2)]),
          6 if count > 0 => {
            a.source_index = Some(
              (0..count).map(|i| if i == pick(count) { sources as u32 + 1 + v % 5 } else { 0 }).collect(),
            )
          }
          7 => {
            a.tos =
              Some((0..count).map(|i| if i == pick(count) { 256 + (v % 1000) as i32 } else { -1 }).collect())
          }
          8 => a.tos = Some(vec![-1; count + 1]),
          9 => a.part_lens.push(u32::MAX),
          10 if count > 0 => {
            a.dest_index = Some((0..count).map(|i| if i == pick(count) { u32::MAX } else { 0 }).collect())
          }
          11 => a.tos = Some((0..count).map(|_| -2 - (v % 100) as i32).collect()),
          _ => {}
        }
        a
      },
    )
  }

  /// What validate must say, stated independently.
  pub fn model_ok(a: &Arrays) -> bool {
    let sum: u64 = a.part_lens.iter().map(|&l| l as u64).sum();
    if sum != a.data_len as u64 {
      return false;
    }
    let count = a.parts.as_ref().map_or(a.part_lens.len(), |p| p.len());
    if let Some(p) = &a.parts {
      if p.iter().map(|&c| c as u64).sum::<u64>() != a.part_lens.len() as u64 {
        return false;
      }
    }
    if let Some(d) = &a.dest_index {
      if d.len() != count || d.iter().any(|&i| i as usize >= a.dests) {
        return false;
      }
    }
    if let Some(s) = &a.source_index {
      if s.len() != count || s.iter().any(|&i| i as usize > a.sources) {
        return false;
      }
    }
    if let Some(t) = &a.tos {
      if t.len() != count || t.iter().any(|&v| !(-1..=255).contains(&v)) {
        return false;
      }
    }
    true
  }

  pub fn with_packed<R>(a: &Arrays, f: impl FnOnce(&Packed) -> R) -> R {
    let data = vec![0x5Au8; a.data_len];
    let dests: Vec<SockAddr> =
      (0..a.dests).map(|i| SockAddr::from(SocketAddr::from(([127, 0, 0, 1], 9 + i as u16)))).collect();
    let sources: Vec<IpAddr> = (0..a.sources).map(|_| IpAddr::V4(Ipv4Addr::LOCALHOST)).collect();
    let p = Packed {
      data: &data,
      part_lens: &a.part_lens,
      parts_per_msg: a.parts.as_deref(),
      dest_index: a.dest_index.as_deref(),
      dests: &dests,
      source_index: a.source_index.as_deref(),
      sources: &sources,
      tos: a.tos.as_deref(),
    };
    f(&p)
  }
}

proptest! {
  #![proptest_config(cases(2048))]

  #[test]
  fn packed_validate_accepts_exactly_the_consistent_arrays(a in packed::arrays()) {
    let want = packed::model_ok(&a);
    let got = packed::with_packed(&a, |p| p.validate());
    prop_assert_eq!(got.is_ok(), want, "validate said {:?} for {:?}", got, a);
  }
}

// ---- send and receive over loopback ------------------------------------------------------------

#[cfg(all(target_os = "linux", not(miri)))]
mod wire {
  use super::*;
  use socket2::SockAddr;
  use std::net::UdpSocket;
  use std::os::fd::AsRawFd;
  use std::time::{Duration, Instant};
  use udp_mmsg::batch::FLAG_TRUNCATED;
  use udp_mmsg::recv::{RecvMode, RecvSlab};
  use udp_mmsg::send::{send, Packed, SendScratch};

  /// Reads exactly `n` datagrams (or fails after 5 s) with a plain socket.
  fn read_n(rx: &UdpSocket, n: usize) -> Vec<Vec<u8>> {
    rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = vec![0u8; 65536];
    (0..n).map(|_| rx.recv(&mut buf).map(|k| buf[..k].to_vec()).expect("datagram within 5 s")).collect()
  }

  proptest! {
    #![proptest_config(cases(64))]

    #[test]
    fn valid_packed_batches_round_trip(
      msgs in proptest::collection::vec((proptest::collection::vec(any::<u8>(), 0..1400), proptest::collection::vec(0usize..1400, 0..3), 0usize..2), 1..40),
      batched in any::<bool>(),
      gso in any::<bool>(),
      start in 0usize..5,
    ) {
      let rx = [UdpSocket::bind("127.0.0.1:0").unwrap(), UdpSocket::bind("127.0.0.1:0").unwrap()];
      let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
      let dests: Vec<SockAddr> = rx.iter().map(|r| SockAddr::from(r.local_addr().unwrap())).collect();
      let mut data = Vec::new();
      let mut part_lens = Vec::new();
      let mut parts = Vec::new();
      let mut dest_index = Vec::new();
      for (bytes, cuts, d) in &msgs {
        let mut points: Vec<usize> = cuts.iter().map(|&c| c.min(bytes.len())).collect();
        points.sort_unstable();
        points.dedup();
        let mut prev = 0;
        let mut k = 0;
        for p in points.into_iter().chain(std::iter::once(bytes.len())) {
          part_lens.push((p - prev) as u32);
          prev = p;
          k += 1;
        }
        parts.push(k);
        dest_index.push(*d as u32);
        data.extend_from_slice(bytes);
      }
      let p = Packed {
        data: &data,
        part_lens: &part_lens,
        parts_per_msg: Some(&parts),
        dest_index: Some(&dest_index),
        dests: &dests,
        source_index: None,
        sources: &[],
        tos: None,
      };
      prop_assert!(p.validate().is_ok());
      let start = start.min(msgs.len());
      let mut scratch = SendScratch::default();
      scratch.gso = gso;
      let out = send(tx.as_raw_fd(), &p, start, usize::MAX, batched, &mut scratch);
      prop_assert_eq!(out.error, None);
      prop_assert!(!out.would_block);
      prop_assert_eq!(out.sent, msgs.len() - start);
      for (k, r) in rx.iter().enumerate() {
        let want: Vec<Vec<u8>> = msgs[start..].iter().filter(|m| m.2 == k).map(|m| m.0.clone()).collect();
        let got = read_n(r, want.len());
        prop_assert_eq!(got, want, "receiver {}", k);
      }
    }

    #[test]
    fn recv_slab_reports_lengths_bytes_and_truncation(
      sizes in proptest::collection::vec(0usize..3000, 1..60),
      slot in 1usize..2100,
      batch in 1usize..70,
      portable in any::<bool>(),
    ) {
      let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
      rx.set_nonblocking(true).unwrap();
      let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
      tx.connect(rx.local_addr().unwrap()).unwrap();
      let payload = |i: usize, n: usize| -> Vec<u8> { (0..n).map(|j| (i * 7 + j) as u8).collect() };
      for (i, &n) in sizes.iter().enumerate() {
        tx.send(&payload(i, n)).unwrap();
      }
      let mode = if portable { RecvMode::Portable } else { RecvMode::Batched };
      let mut slab = RecvSlab::with_gro(batch, slot, false);
      let mut seen = 0usize;
      let deadline = Instant::now() + Duration::from_secs(5);
      while seen < sizes.len() && Instant::now() < deadline {
        let n = match slab.receive(rx.as_raw_fd(), mode, 0, batch) {
          Ok(n) => n,
          Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
            std::thread::sleep(Duration::from_millis(1));
            continue;
          }
          Err(e) => return Err(TestCaseError::fail(format!("receive: {e}"))),
        };
        prop_assert!(n >= 1 && n <= batch);
        let b = slab.take(n);
        prop_assert_eq!(b.count as usize, n);
        let l = b.layout();
        prop_assert!(b.compact, "IPv4 sources and no extras: the compact layout");
        let m = b.meta();
        let mut off = 0;
        for k in 0..n {
          let i = seen + k;
          let full = sizes[i];
          let len = u32_at(m, l.lengths() + 4 * k) as usize;
          prop_assert_eq!(len, full.min(slot), "datagram {} of {} bytes in a {}-byte slot", i, full, slot);
          prop_assert_eq!(u32_at(m, l.offsets() + 4 * k) as usize, off);
          prop_assert_eq!(&b.data()[off..off + len], &payload(i, full)[..len]);
          prop_assert_eq!(m[l.flags() + k] & FLAG_TRUNCATED != 0, full > slot, "truncation flag of datagram {}", i);
          prop_assert_eq!(m[l.families() + k], 4);
          prop_assert_eq!(&m[l.addresses() + 4 * k..l.addresses() + 4 * k + 4], &[127, 0, 0, 1]);
          prop_assert_eq!(u16::from_ne_bytes([m[l.ports() + 2 * k], m[l.ports() + 2 * k + 1]]), tx.local_addr().unwrap().port());
          off += len;
        }
        prop_assert_eq!(off, b.data().len());
        seen += n;
      }
      prop_assert_eq!(seen, sizes.len(), "every datagram received within 5 s");
    }
  }
}

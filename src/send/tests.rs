//! Tests of the send path: end to end over loopback, and the GSO planning and ceiling.

use super::gso::*;
use super::syscall::*;
use super::*;
use crate::cmsg;
use std::net::UdpSocket;
use std::os::fd::AsRawFd;

fn recv_all(rx: &UdpSocket, n: usize) -> Vec<Vec<u8>> {
  rx.set_read_timeout(Some(std::time::Duration::from_secs(2))).unwrap();
  let mut buf = [0u8; 2048];
  (0..n)
    .map(|_| {
      let len = rx.recv(&mut buf).unwrap();
      buf[..len].to_vec()
    })
    .collect()
}

fn check(batched: bool) {
  let rx1 = UdpSocket::bind("127.0.0.1:0").unwrap();
  let rx2 = UdpSocket::bind("127.0.0.1:0").unwrap();
  let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
  let dests = [SockAddr::from(rx1.local_addr().unwrap()), SockAddr::from(rx2.local_addr().unwrap())];
  // Datagrams: "one"+"two" (two parts) -> rx1, "x" -> rx2, "" -> rx1.
  let data = b"onetwox";
  let part_lens = [3u32, 3, 1, 0];
  let parts = [2u32, 1, 1];
  let dest_index = [0u32, 1, 0];
  let p =
    Packed { parts_per_msg: Some(&parts), dest_index: Some(&dest_index), ..packed(data, &part_lens, &dests) };
  p.validate().unwrap();
  let mut scratch = SendScratch::default();
  let out = send(tx.as_raw_fd(), &p, 0, usize::MAX, batched, &mut scratch);
  assert_eq!((out.sent, out.bytes, out.error, out.would_block), (3, 7, None, false));
  assert_eq!(recv_all(&rx1, 2), vec![b"onetwo".to_vec(), b"".to_vec()]);
  assert_eq!(recv_all(&rx2, 1), vec![b"x".to_vec()]);
  // Resume from the middle.
  let out = send(tx.as_raw_fd(), &p, 2, usize::MAX, batched, &mut scratch);
  assert_eq!(out.sent, 1);
  assert_eq!(recv_all(&rx1, 1), vec![b"".to_vec()]);
}

#[test]
fn batched_send_scatter_gather_and_destinations() {
  #[cfg(target_os = "linux")]
  check(true);
}

#[test]
fn portable_send_scatter_gather_and_destinations() {
  check(false);
}

#[test]
fn oversized_datagram_stops_with_emsgsize_and_count() {
  let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
  let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
  let dests = [SockAddr::from(rx.local_addr().unwrap())];
  let data = vec![7u8; 2 + 70000];
  let lens = [1u32, 1, 70000];
  let p = packed(&data, &lens, &dests);
  for batched in [true, false] {
    let out = send(tx.as_raw_fd(), &p, 0, usize::MAX, batched, &mut SendScratch::default());
    assert_eq!(out.sent, 2);
    assert_eq!(out.error.map(|e| e.errno), Some(libc::EMSGSIZE));
  }
}

#[test]
fn validate_catches_inconsistent_arrays() {
  let dests = [SockAddr::from("127.0.0.1:9".parse::<std::net::SocketAddr>().unwrap())];
  let mk = |lens: &'static [u32], parts: Option<&'static [u32]>, idx: Option<&'static [u32]>| Packed {
    data: b"abc",
    part_lens: lens,
    parts_per_msg: parts,
    dest_index: idx,
    dests: &[],
    source_index: None,
    sources: &[],
    tos: None,
  };
  assert!(mk(&[1, 1], None, None).validate().is_err());
  assert!(mk(&[1, 2], Some(&[1]), None).validate().is_err());
  assert!(mk(&[3], None, Some(&[0])).validate().is_err(), "no table to index");
  let ok = Packed {
    data: b"abc",
    part_lens: &[3],
    parts_per_msg: None,
    dest_index: Some(&[0]),
    dests: &dests,
    source_index: None,
    sources: &[],
    tos: None,
  };
  assert!(ok.validate().is_ok());
}

#[cfg(target_os = "linux")]
#[test]
fn gso_runs_arrive_as_the_same_datagrams() {
  let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
  let rx2 = UdpSocket::bind("127.0.0.1:0").unwrap();
  let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
  let dests = [SockAddr::from(rx.local_addr().unwrap()), SockAddr::from(rx2.local_addr().unwrap())];
  // 150 datagrams of 100 bytes to rx, one of 40 (ends a run), 3 of 100 to rx2, 5 of 100 to rx.
  let mut lens = vec![100u32; 150];
  lens.push(40);
  lens.extend([100u32; 8]);
  let mut idx = vec![0u32; 151];
  idx.extend([1u32; 3]);
  idx.extend([0u32; 5]);
  let mut data = Vec::new();
  for (i, &l) in lens.iter().enumerate() {
    data.extend((0..l).map(|j| (i as u32 * 7 + j) as u8));
  }
  let p = Packed { dest_index: Some(&idx), ..packed(&data, &lens, &dests) };
  p.validate().unwrap();
  let mut scratch = SendScratch { gso: true, ..SendScratch::default() };
  let out = send(tx.as_raw_fd(), &p, 0, usize::MAX, true, &mut scratch);
  assert_eq!((out.sent, out.error, out.gso_fallbacks), (159, None, 0));
  // 150+40 -> runs of 64, 64, 23 (22 x 100 + 40); then 3 to rx2; then 5.
  assert_eq!(out.gso_sends, 5);
  assert_eq!(out.syscalls, 1);
  let got = recv_all(&rx, 156);
  let mut k = 0;
  for (i, &l) in lens.iter().enumerate() {
    if idx[i] != 0 {
      continue;
    }
    let want: Vec<u8> = (0..l).map(|j| (i as u32 * 7 + j) as u8).collect();
    assert_eq!(got[k], want, "datagram {i}");
    k += 1;
  }
  assert_eq!(recv_all(&rx2, 3).iter().map(|d| d.len()).collect::<Vec<_>>(), vec![100, 100, 100]);
}

/// Packs `lens.len()` single-part datagrams of the given sizes, all to `dests[0]`.
pub(crate) fn packed<'a>(data: &'a [u8], lens: &'a [u32], dests: &'a [SockAddr]) -> Packed<'a> {
  Packed {
    data,
    part_lens: lens,
    parts_per_msg: None,
    dest_index: None,
    dests,
    source_index: None,
    sources: &[],
    tos: None,
  }
}

#[test]
fn gso_runs_keep_to_the_segment_ceiling() {
  let dests = [SockAddr::from("127.0.0.1:9".parse::<std::net::SocketAddr>().unwrap())];
  let lens = [1472u32, 1472, 1472, 2000, 2000, 1000, 1000, 1473, 1472];
  let data = vec![0u8; lens.iter().map(|&l| l as usize).sum()];
  let p = packed(&data, &lens, &dests);
  let at = |m: usize| advance(&p, Cursor { part: 0, byte: 0 }, 0, m);
  // Without a ceiling, equal sizes make one run each.
  assert_eq!(gso_run(&p, 0, lens.len(), at(0), MAX_UDP_PAYLOAD), (3, 1472));
  assert_eq!(
    gso_run(&p, 3, lens.len(), at(3), MAX_UDP_PAYLOAD),
    (3, 2000),
    "2000, 2000, then a shorter last"
  );
  // With a 1472-byte ceiling: runs at or below it still form; larger datagrams go alone.
  assert_eq!(gso_run(&p, 0, lens.len(), at(0), 1472), (3, 1472));
  assert_eq!(gso_run(&p, 3, lens.len(), at(3), 1472).0, 1);
  assert_eq!(gso_run(&p, 4, lens.len(), at(4), 1472).0, 1);
  assert_eq!(gso_run(&p, 5, lens.len(), at(5), 1472), (2, 1000));
  assert_eq!(gso_run(&p, 7, lens.len(), at(7), 1472).0, 1, "1473 is over the ceiling");
  // A shorter datagram may end a run only if the run's segment is within the ceiling.
  assert_eq!(gso_run(&p, 5, 7, at(5), 999).0, 1);
}

#[test]
fn tos_goes_as_ip_tos_to_ipv4_and_mapped_destinations() {
  let kind = |dest: &str, peer_v4: bool| {
    let dests: Vec<SockAddr> =
      dest.parse::<std::net::SocketAddr>().ok().map(SockAddr::from).into_iter().collect();
    let p = Packed { tos: Some(&[0xb8]), ..packed(b"x", &[1], &dests) };
    let mut buf = [0u8; CONTROL_PER_ENTRY];
    let used = write_send_control(&mut buf, &p, 0, None, peer_v4);
    cmsg::parse(&buf, used).map(|c| (c.level, c.kind)).collect::<Vec<_>>()
  };
  let ip_tos = vec![(libc::IPPROTO_IP, libc::IP_TOS)];
  let tclass = vec![(libc::IPPROTO_IPV6, libc::IPV6_TCLASS)];
  assert_eq!(kind("127.0.0.1:9", false), ip_tos);
  assert_eq!(kind("[::ffff:127.0.0.1]:9", false), ip_tos, "a mapped destination takes the IPv4 path");
  assert_eq!(kind("[::1]:9", true), tclass);
  // No destination: the connected peer decides.
  assert_eq!(kind("", true), ip_tos);
  assert_eq!(kind("", false), tclass);
}

#[cfg(target_os = "linux")]
#[test]
fn gso_refused_by_the_kernel_is_resent_plainly_in_the_same_call_and_turned_off() {
  let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
  let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
  // Without UDP checksums the kernel refuses segmentation offload (EINVAL); plain sends go.
  let sock = socket2::SockRef::from(&tx);
  crate::socket::set_int(&sock, libc::SOL_SOCKET, libc::SO_NO_CHECK, 1, "SO_NO_CHECK").unwrap();
  let dests = [SockAddr::from(rx.local_addr().unwrap())];
  let lens = [100u32; 10];
  let data: Vec<u8> = (0..1000).map(|i| i as u8).collect();
  let p = packed(&data, &lens, &dests);
  let mut scratch = SendScratch { gso: true, ..SendScratch::default() };
  let out = send(tx.as_raw_fd(), &p, 0, usize::MAX, true, &mut scratch);
  assert_eq!((out.sent, out.error, out.gso_fallbacks, out.gso_sends), (10, None, 1, 0));
  assert!(!scratch.gso, "GSO is off once a plain resend went where GSO did not");
  let got = recv_all(&rx, 10);
  assert!(got.iter().enumerate().all(|(i, d)| d[..] == data[i * 100..(i + 1) * 100]));
}

#[cfg(target_os = "linux")]
#[test]
fn an_application_error_under_gso_is_reported_and_keeps_gso_on() {
  let Ok(rx) = UdpSocket::bind("[::1]:0") else {
    eprintln!("skipped: no IPv6 loopback");
    return;
  };
  let tx = UdpSocket::bind("[::]:0").unwrap();
  let dests = [SockAddr::from(rx.local_addr().unwrap())];
  // Two plain datagrams, then a run of 8 from an IPv4(-mapped) source to an IPv6 peer:
  // EINVAL with GSO and without.
  let lens = [10u32, 20, 100, 100, 100, 100, 100, 100, 100, 100];
  let data = vec![1u8; lens.iter().map(|&l| l as usize).sum()];
  let sources = ["::ffff:127.0.0.1".parse::<std::net::IpAddr>().unwrap()];
  let src_idx = [0u32, 0, 1, 1, 1, 1, 1, 1, 1, 1];
  let p = Packed { source_index: Some(&src_idx), sources: &sources, ..packed(&data, &lens, &dests) };
  p.validate().unwrap();
  let mut scratch = SendScratch { gso: true, ..SendScratch::default() };
  let out = send(tx.as_raw_fd(), &p, 0, usize::MAX, true, &mut scratch);
  assert_eq!(out.sent, 2, "the datagrams before the bad one went");
  assert_eq!(out.error.map(|e| e.errno), Some(libc::EINVAL));
  assert_eq!(out.gso_fallbacks, 0);
  assert!(scratch.gso, "an application error does not turn GSO off");
  assert_eq!(scratch.gso_max_segment, None);
  assert_eq!(recv_all(&rx, 2).iter().map(|d| d.len()).collect::<Vec<_>>(), vec![10, 20]);
}

#[test]
fn a_refusal_lowers_the_segment_ceiling_or_turns_gso_off() {
  let dests = [SockAddr::from("127.0.0.1:9".parse::<std::net::SocketAddr>().unwrap())];
  let p = packed(b"", &[], &dests);
  let mut s = SendScratch { gso: true, ..SendScratch::default() };
  let fd = -1; // only consulted without a destination
               // Loopback's MTU is at least 1500, so the refused size bounds the ceiling here.
  learn_from_refusal(fd, &p, Refusal { errno: libc::EMSGSIZE, msg: 0, segment: 1400 }, &mut s);
  assert_eq!((s.gso, s.gso_max_segment), (true, Some(1399)));
  learn_from_refusal(fd, &p, Refusal { errno: libc::EMSGSIZE, msg: 0, segment: 3000 }, &mut s);
  assert_eq!(s.gso_max_segment, Some(1399), "a later refusal never raises the ceiling");
  learn_from_refusal(fd, &p, Refusal { errno: libc::EIO, msg: 0, segment: 100 }, &mut s);
  assert!(!s.gso, "any other refusal turns GSO off");
}

//! Tests of the receive path over loopback: lengths, truncation, sources, GRO splitting.

use super::*;
use crate::batch::FLAG_TRUNCATED;
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
  let l = b.layout();
  assert!(b.compact, "IPv4 sources, no extras: the compact layout");
  let len =
    |i: usize| u32::from_ne_bytes(b.meta()[l.lengths() + 4 * i..l.lengths() + 4 * i + 4].try_into().unwrap());
  assert_eq!([len(0), len(1), len(2), len(3)], [3, 0, 8, 4]);
  assert_eq!(b.meta()[l.flags() + 2], FLAG_TRUNCATED, "12 bytes into an 8-byte slot is truncated");
  assert_eq!(b.meta()[l.flags() + 3], 0);
  let port = u16::from_ne_bytes([b.meta()[l.ports()], b.meta()[l.ports() + 1]]);
  assert_eq!(port, tx.local_addr().unwrap().port());
  assert_eq!(slab.receive(rx.as_raw_fd(), mode, 0, 4).unwrap(), 1, "the fifth is still queued");
}

/// Slots larger than `HEAD` are a head and a tail buffer: datagrams on either side of the
/// boundary, and one cut by the limit inside the tail, arrive byte for byte.
fn check_split_slots(mode: RecvMode) {
  let (rx, tx) = pair();
  // Room for all eight datagrams (~26 KiB of payload) whatever the default buffer is.
  socket2::SockRef::from(&rx).set_recv_buffer_size(1 << 20).unwrap();
  let limit = 9000;
  let mut slab = RecvSlab::with_gro(8, limit, false);
  assert_eq!(slab.head, HEAD, "a 9000-byte slot is split");
  let sizes = [1, HEAD - 1, HEAD, HEAD + 1, 5000, limit, 0, limit + 100];
  let msgs: Vec<Vec<u8>> =
    sizes.iter().enumerate().map(|(k, &n)| (0..n).map(|j| (j * 7 + k * 13) as u8).collect()).collect();
  for m in &msgs {
    tx.send(m).unwrap();
  }
  let mut got = 0;
  let mut data = Vec::new();
  let mut lens = Vec::new();
  let mut flags = Vec::new();
  while got < msgs.len() {
    let n = slab.receive(rx.as_raw_fd(), mode, 0, 8).unwrap();
    let b = slab.take(n);
    let l = b.layout();
    for i in 0..b.count as usize {
      lens
        .push(u32::from_ne_bytes(b.meta()[l.lengths() + 4 * i..l.lengths() + 4 * i + 4].try_into().unwrap())
          as usize);
      flags.push(b.meta()[l.flags() + i]);
    }
    data.extend_from_slice(b.data());
    got += n;
  }
  let mut want = Vec::new();
  for m in &msgs {
    want.extend_from_slice(&m[..m.len().min(limit)]);
  }
  assert_eq!(lens, sizes.iter().map(|&n| n.min(limit)).collect::<Vec<_>>());
  assert!(data == want, "payloads differ");
  assert_eq!(flags[..7], [0; 7]);
  assert_eq!(flags[7], FLAG_TRUNCATED, "longer than the slot: cut and flagged");
}

#[test]
fn split_slots_keep_every_byte_batched() {
  #[cfg(target_os = "linux")]
  check_split_slots(RecvMode::Batched);
}

#[test]
fn split_slots_keep_every_byte_portable() {
  check_split_slots(RecvMode::Portable);
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

#[cfg(target_os = "linux")]
#[test]
fn gro_receives_are_split_back_into_datagrams() {
  use crate::send::{send, SendScratch};
  use socket2::SockAddr;
  let (rx, tx) = pair();
  let one: libc::c_int = 1;
  // SAFETY: passes a live c_int and its size.
  let rc = unsafe {
    libc::setsockopt(
      rx.as_raw_fd(),
      libc::SOL_UDP,
      crate::linux::UDP_GRO,
      &one as *const libc::c_int as *const libc::c_void,
      4,
    )
  };
  assert_eq!(rc, 0);
  // 10 datagrams of 300 bytes and one of 120, sent as one GSO super-datagram.
  let mut lens = vec![300u32; 10];
  lens.push(120);
  let data: Vec<u8> = (0..3120u32).map(|i| (i % 251) as u8).collect();
  let dests = [SockAddr::from(rx.local_addr().unwrap())];
  let p = crate::send::tests::packed(&data, &lens, &dests);
  let mut scratch = SendScratch::default();
  scratch.gso = true;
  let out = send(tx.as_raw_fd(), &p, 0, usize::MAX, true, &mut scratch);
  assert_eq!((out.sent, out.gso_sends), (11, 1));
  let mut slab = RecvSlab::with_gro(8, 2048, true);
  std::thread::sleep(std::time::Duration::from_millis(50));
  let n = slab.receive(rx.as_raw_fd(), RecvMode::Batched, 0, 8).unwrap();
  let b = slab.take(n);
  assert_eq!(n, 1, "one coalesced receive");
  assert_eq!(b.gro_slots, 1);
  assert_eq!(b.count, 11);
  assert_eq!(b.data(), &data[..]);
  let l = b.layout();
  let len =
    |i: usize| u32::from_ne_bytes(b.meta()[l.lengths() + 4 * i..l.lengths() + 4 * i + 4].try_into().unwrap());
  assert_eq!((0..11).map(len).collect::<Vec<_>>(), lens);
  assert!(b.meta()[l.flags()..l.flags() + 11].iter().all(|&f| f & FLAG_TRUNCATED == 0));
}

/// The one-pass path for plain batches (`plain`) builds exactly what the general pass builds,
/// and leaves anything else to it: a cut datagram, control data besides the drop counter.
#[cfg(target_os = "linux")]
#[test]
fn plain_batches_match_the_general_pass() {
  let (rx, tx) = pair();
  socket2::SockRef::from(&rx).set_recv_buffer_size(1 << 20).unwrap();
  let other = UdpSocket::bind("127.0.0.2:0").unwrap();
  let set = |opt: libc::c_int| {
    let on: libc::c_int = 1;
    // SAFETY: passes a live c_int and its size.
    let rc = unsafe {
      libc::setsockopt(
        rx.as_raw_fd(),
        libc::SOL_SOCKET,
        opt,
        &on as *const libc::c_int as *const libc::c_void,
        4,
      )
    };
    assert_eq!(rc, 0);
  };
  set(crate::linux::SO_RXQ_OVFL);
  let limit = 9000;
  let to = rx.local_addr().unwrap();
  let sizes = [1, HEAD - 1, HEAD, HEAD + 1, 5000, limit, 0, 64];
  let send_all = |sizes: &[usize]| {
    for (k, &n) in sizes.iter().enumerate() {
      let m: Vec<u8> = (0..n).map(|j| (j * 7 + k * 13) as u8).collect();
      let from = if k % 2 == 0 { &tx } else { &other };
      from.send_to(&m, to).unwrap();
    }
  };
  let mut slab = RecvSlab::with_gro(8, limit, false);
  slab.drop_counter = true;
  let receive = |slab: &mut RecvSlab, want: usize| {
    let mut n = 0;
    for _ in 0..100 {
      match slab.receive(rx.as_raw_fd(), RecvMode::Batched, n, want - n) {
        Ok(k) => n += k,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
          std::thread::sleep(std::time::Duration::from_millis(5))
        }
        Err(e) => panic!("{e}"),
      }
      if n == want {
        break;
      }
    }
    assert_eq!(n, want);
  };
  send_all(&sizes);
  receive(&mut slab, sizes.len());
  let plain = slab.take_plain(sizes.len()).expect("IPv4, nothing cut, only the drop counter: plain");
  let general = slab.take_general(sizes.len());
  assert!(plain.compact && general.compact);
  assert_eq!(
    (plain.count, plain.meta_len, plain.kernel_drops),
    (general.count, general.meta_len, general.kernel_drops)
  );
  assert_eq!(plain.kernel_drops, Some(0));
  assert!(plain.bytes == general.bytes, "plain and general batches differ");

  // Datagrams queued after the kernel dropped some carry the drop counter: both passes read it.
  socket2::SockRef::from(&rx).set_recv_buffer_size(1).unwrap();
  send_all(&[64; 64]);
  let mut small = RecvSlab::with_gro(64, limit, false);
  small.drop_counter = true;
  let n = small.receive(rx.as_raw_fd(), RecvMode::Batched, 0, 64).unwrap();
  assert!(n < 64, "a minimal receive buffer drops some of 64 datagrams");
  send_all(&[64]);
  let m = small.receive(rx.as_raw_fd(), RecvMode::Batched, 0, 64).unwrap();
  assert_eq!(m, 1, "one datagram fits an empty buffer");
  let plain = small.take_plain(m).expect("the drop counter alone: plain");
  let general = small.take_general(m);
  assert!(plain.bytes == general.bytes);
  assert_eq!(plain.kernel_drops, general.kernel_drops);
  assert_eq!(plain.kernel_drops, Some(64 - n as u64), "what the kernel dropped");
  socket2::SockRef::from(&rx).set_recv_buffer_size(1 << 20).unwrap();

  // A datagram longer than the limit: cut, which only the general pass reports.
  send_all(&[10, limit + 1]);
  receive(&mut slab, 2);
  assert!(slab.take_plain(2).is_none());
  assert_eq!(slab.take(2).meta()[crate::batch::MetaLayout::compact(2).flags() + 1], FLAG_TRUNCATED);

  // Control data besides the drop counter (a receive timestamp): general pass.
  set(libc::SO_TIMESTAMPNS);
  send_all(&[10]);
  receive(&mut slab, 1);
  assert!(slab.take_plain(1).is_none());
  let b = slab.take(1);
  assert!(!b.compact, "a timestamp needs the full layout");
}

//! Tests of the receive path over loopback: lengths, truncation, sources, GRO splitting.

use super::*;
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

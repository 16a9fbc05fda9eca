//! The socket error queue. With `IP_RECVERR` / `IPV6_RECVERR` on (settable through the raw
//! `setSocketOption`), the kernel queues each ICMP error on the socket's error queue, and
//! `poll` reports `POLLERR` until the queue is read with `MSG_ERRQUEUE`: a reader that never
//! reads it spins. The I/O thread drains it here and reports each entry's errno.

use std::os::fd::RawFd;

use crate::cmsg;

/// `IP_RECVERR` (level `IPPROTO_IP`): the control message carrying a `sock_extended_err`.
const IP_RECVERR: i32 = 11;
/// `IPV6_RECVERR` (level `IPPROTO_IPV6`).
const IPV6_RECVERR: i32 = 25;

/// Most entries read per wake-up, so a flood of ICMP errors cannot starve receiving.
pub const MAX_ENTRIES_PER_DRAIN: usize = 64;

/// The errno of an error-queue entry, from its control messages (`ee_errno` is the first field
/// of `struct sock_extended_err`). Entries without one report `EIO`.
pub fn entry_errno(control: &[u8], len: usize) -> i32 {
  cmsg::parse(control, len)
    .find(|c| {
      (c.level == libc::IPPROTO_IP && c.kind == IP_RECVERR)
        || (c.level == libc::IPPROTO_IPV6 && c.kind == IPV6_RECVERR)
    })
    .and_then(|c| cmsg::read_u32(c.data))
    .map_or(libc::EIO, |e| e as i32)
}

/// Reads (and so clears) up to [`MAX_ENTRIES_PER_DRAIN`] entries; returns their errnos.
#[cfg(target_os = "linux")]
pub fn drain(fd: RawFd) -> Vec<i32> {
  let mut found = Vec::new();
  let mut data = [0u8; 64];
  let mut control = [0u8; 512];
  while found.len() < MAX_ENTRIES_PER_DRAIN {
    let mut iov = libc::iovec { iov_base: data.as_mut_ptr().cast(), iov_len: data.len() };
    // SAFETY: msghdr is plain data; all-zero is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = control.len() as _;
    // SAFETY: `msg` points at a live iovec over `data` and at `control`, both with their true
    // lengths; the kernel writes within them (truncating the payload, which we do not need).
    let rc = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT) };
    if rc < 0 {
      break;
    }
    found.push(entry_errno(&control, msg.msg_controllen as usize));
  }
  found
}

/// No error queue outside Linux.
#[cfg(not(target_os = "linux"))]
pub fn drain(_fd: RawFd) -> Vec<i32> {
  Vec::new()
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn reads_ee_errno_from_either_family() {
    let mut buf = [0u8; 128];
    let mut ee = [0u8; 16];
    ee[..4].copy_from_slice(&(libc::ECONNREFUSED as u32).to_ne_bytes());
    let n = cmsg::write(&mut buf, libc::IPPROTO_IP, IP_RECVERR, &ee).unwrap_or(0);
    assert_eq!(entry_errno(&buf, n), libc::ECONNREFUSED);
    let n = cmsg::write(&mut buf, libc::IPPROTO_IPV6, IPV6_RECVERR, &ee).unwrap_or(0);
    assert_eq!(entry_errno(&buf, n), libc::ECONNREFUSED);
  }

  #[test]
  fn an_entry_without_extended_error_is_eio() {
    let mut buf = [0u8; 64];
    let n = cmsg::write(&mut buf, libc::SOL_SOCKET, 40, &[0; 4]).unwrap_or(0);
    assert_eq!(entry_errno(&buf, n), libc::EIO);
    assert_eq!(entry_errno(&buf, 0), libc::EIO);
  }
}

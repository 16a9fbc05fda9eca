//! Source-specific multicast for IPv6 (`MCAST_JOIN_SOURCE_GROUP`), which `socket2` lacks.
//!
//! The option numbers and `struct group_source_req` come from the `libc` crate for the target:
//! Linux numbers them 46/47 and pads the struct after its `u32` interface (264 bytes on
//! 64-bit); Darwin numbers them 82/83 and packs the struct to 4 bytes (`#pragma pack(4)` in
//! `<netinet/in.h>`, 260 bytes), which libc mirrors with `#[repr(packed(4))]`.

use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};
use std::os::fd::AsRawFd;

use socket2::{SockAddr, Socket};

/// `struct group_source_req` (RFC 3678): interface index, group and source addresses.
type GroupSourceReq = libc::group_source_req;

// The sizes the C headers give; a libc change that broke the layout would fail the build.
#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
const _: () = assert!(std::mem::size_of::<GroupSourceReq>() == 8 + 2 * 128);
#[cfg(target_vendor = "apple")]
const _: () = assert!(std::mem::size_of::<GroupSourceReq>() == 4 + 2 * 128);

fn storage(addr: Ipv6Addr) -> libc::sockaddr_storage {
  let sa = SockAddr::from(SocketAddr::V6(SocketAddrV6::new(addr, 0, 0, 0)));
  // SAFETY: all-zero bytes are a valid sockaddr_storage.
  let mut out: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
  let len = (sa.len() as usize).min(std::mem::size_of::<libc::sockaddr_storage>());
  // SAFETY: `sa` holds `len` initialised bytes and `out` has room for any sockaddr.
  unsafe { std::ptr::copy_nonoverlapping(sa.as_ptr() as *const u8, &mut out as *mut _ as *mut u8, len) };
  out
}

/// Joins or leaves `group` for datagrams from `source` only, on interface `index` (0: any).
pub fn ssm_v6(
  socket: &Socket,
  join: bool,
  group: Ipv6Addr,
  source: Ipv6Addr,
  index: u32,
) -> std::io::Result<()> {
  let req = GroupSourceReq { gsr_interface: index, gsr_group: storage(group), gsr_source: storage(source) };
  let opt = if join { libc::MCAST_JOIN_SOURCE_GROUP } else { libc::MCAST_LEAVE_SOURCE_GROUP };
  // SAFETY: passes a live, fully initialised group_source_req and its exact size.
  let rc = unsafe {
    libc::setsockopt(
      socket.as_raw_fd(),
      libc::IPPROTO_IPV6,
      opt,
      &req as *const GroupSourceReq as *const libc::c_void,
      std::mem::size_of::<GroupSourceReq>() as libc::socklen_t,
    )
  };
  if rc == 0 {
    Ok(())
  } else {
    Err(std::io::Error::last_os_error())
  }
}

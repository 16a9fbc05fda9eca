//! Control messages of a received datagram: what the receive path asked the kernel for.

use crate::batch::Extra;
#[cfg(target_os = "linux")]
use crate::cmsg;

#[cfg(target_os = "linux")]
use super::GRO_SLOT;

/// What one datagram's control messages said.
#[derive(Default)]
pub(super) struct ControlInfo {
  pub(super) extra: Extra,
  pub(super) drops: Option<u32>,
  pub(super) gro_segment: Option<usize>,
}

/// Reads the control messages the receive path asks for. Unknown or malformed ones are
/// skipped; payloads shorter than their type are ignored.
#[cfg(target_os = "linux")]
pub(super) fn read_control(ctrl: &[u8], len: usize) -> ControlInfo {
  use crate::batch::{FLAG_LOCAL, FLAG_TIMESTAMP, FLAG_TOS};
  let mut info = ControlInfo::default();
  for c in cmsg::parse(ctrl, len) {
    match (c.level, c.kind) {
      (libc::SOL_SOCKET, crate::linux::SO_RXQ_OVFL) => info.drops = cmsg::read_u32(c.data),
      (libc::SOL_SOCKET, libc::SCM_TIMESTAMPNS) if c.data.len() >= 16 => {
        let sec = i64::from_ne_bytes(c.data[0..8].try_into().unwrap_or([0; 8]));
        let nsec = i64::from_ne_bytes(c.data[8..16].try_into().unwrap_or([0; 8]));
        if sec >= 0 && (0..1_000_000_000).contains(&nsec) {
          info.extra.timestamp_ns = (sec as u64).saturating_mul(1_000_000_000).saturating_add(nsec as u64);
          info.extra.flags |= FLAG_TIMESTAMP;
        }
      }
      (libc::IPPROTO_IP, libc::IP_PKTINFO) if c.data.len() >= 12 => {
        // struct in_pktinfo { int ipi_ifindex; in_addr ipi_spec_dst; in_addr ipi_addr; }
        info.extra.ifindex = u32::from_ne_bytes(c.data[0..4].try_into().unwrap_or([0; 4]));
        info.extra.local.family = crate::addr::FAMILY_V4;
        info.extra.local.bytes = [0; 16];
        info.extra.local.bytes[..4].copy_from_slice(&c.data[8..12]);
        info.extra.flags |= FLAG_LOCAL;
      }
      (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO) if c.data.len() >= 20 => {
        // struct in6_pktinfo { in6_addr ipi6_addr; unsigned ipi6_ifindex; }
        info.extra.local.family = crate::addr::FAMILY_V6;
        info.extra.local.bytes.copy_from_slice(&c.data[0..16]);
        info.extra.ifindex = u32::from_ne_bytes(c.data[16..20].try_into().unwrap_or([0; 4]));
        info.extra.flags |= FLAG_LOCAL;
      }
      (libc::IPPROTO_IP, libc::IP_TOS) if !c.data.is_empty() => {
        info.extra.tos = c.data[0];
        info.extra.flags |= FLAG_TOS;
      }
      (libc::IPPROTO_IPV6, libc::IPV6_TCLASS) => {
        if let Some(v) = cmsg::read_int(c.data) {
          info.extra.tos = (v & 0xff) as u8;
          info.extra.flags |= FLAG_TOS;
        }
      }
      (libc::SOL_UDP, crate::linux::UDP_GRO) => {
        // An int; a shorter (cut) payload is not a segment size.
        info.gro_segment =
          cmsg::read_u32(c.data).filter(|&s| s > 0 && s <= GRO_SLOT as u32).map(|s| s as usize);
      }
      _ => {}
    }
  }
  info
}

#[cfg(not(target_os = "linux"))]
pub(super) fn read_control(_ctrl: &[u8], _len: usize) -> ControlInfo {
  ControlInfo::default()
}

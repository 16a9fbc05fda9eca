//! Linux socket options this package uses: from the `libc` crate where it has them; `SO_RXQ_OVFL`
//! and `SO_MEMINFO`, which libc exposes only for Android, are the kernel's numbers (asm-generic).

/// `SO_RXQ_OVFL`: deliver the socket's drop counter as a control message.
#[cfg(target_os = "linux")]
pub const SO_RXQ_OVFL: libc::c_int = 40;
/// `SO_MEMINFO`: read the socket's memory counters, drops included.
#[cfg(target_os = "linux")]
pub const SO_MEMINFO: libc::c_int = 55;
/// Index of the drop counter in the `SO_MEMINFO` array.
#[cfg(target_os = "linux")]
pub const SK_MEMINFO_DROPS: usize = libc::SK_MEMINFO_DROPS as usize;
/// Index of the receive-queue bytes in the `SO_MEMINFO` array.
#[cfg(target_os = "linux")]
pub const SK_MEMINFO_RMEM_ALLOC: usize = libc::SK_MEMINFO_RMEM_ALLOC as usize;
/// `UDP_SEGMENT` (SOL_UDP): generic segmentation offload for sends.
#[cfg(target_os = "linux")]
pub const UDP_SEGMENT: libc::c_int = libc::UDP_SEGMENT;
/// `UDP_GRO` (SOL_UDP): receive coalesced datagrams with their segment size.
#[cfg(target_os = "linux")]
pub const UDP_GRO: libc::c_int = libc::UDP_GRO;
/// The kernel's limit on segments in one GSO send (`UDP_MAX_SEGMENTS`).
pub const UDP_MAX_SEGMENTS: usize = 64;

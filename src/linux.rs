//! Linux socket options this package uses that not every libc binding exposes.

/// `SO_RXQ_OVFL`: deliver the socket's drop counter as a control message.
pub const SO_RXQ_OVFL: libc::c_int = 40;
/// `SO_MEMINFO`: read the socket's memory counters, drops included.
pub const SO_MEMINFO: libc::c_int = 55;
/// Index of the drop counter in the `SO_MEMINFO` array.
pub const SK_MEMINFO_DROPS: usize = 8;
/// Index of the receive-queue bytes in the `SO_MEMINFO` array.
pub const SK_MEMINFO_RMEM_ALLOC: usize = 0;
/// `UDP_SEGMENT` (SOL_UDP): generic segmentation offload for sends.
pub const UDP_SEGMENT: libc::c_int = 103;
/// `UDP_GRO` (SOL_UDP): receive coalesced datagrams with their segment size.
pub const UDP_GRO: libc::c_int = 104;
/// The kernel's limit on segments in one GSO send (`UDP_MAX_SEGMENTS`).
pub const UDP_MAX_SEGMENTS: usize = 64;

//! Linux socket options this package uses that not every libc binding exposes.

#![allow(dead_code)]

/// `SO_RXQ_OVFL`: deliver the socket's drop counter as a control message.
pub const SO_RXQ_OVFL: libc::c_int = 40;
/// `SO_MEMINFO`: read the socket's memory counters, drops included.
pub const SO_MEMINFO: libc::c_int = 55;
/// Index of the drop counter in the `SO_MEMINFO` array.
pub const SK_MEMINFO_DROPS: usize = 8;
/// Index of the receive-queue bytes in the `SO_MEMINFO` array.
pub const SK_MEMINFO_RMEM_ALLOC: usize = 0;

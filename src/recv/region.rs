//! The slab's payload memory: an anonymous private mapping whose pages the kernel supplies
//! (zeroed) only when first touched. A slab of 256 slots of 64 KiB reserves 16 MiB of address
//! space but costs resident memory only where datagrams land, and nothing is zeroed up front
//! (a `vec![0; n]` of that size may come from the heap and be memset in full).

use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

/// `len` bytes of zero-initialised memory, mapped on demand.
pub struct Region {
  ptr: NonNull<u8>,
  len: usize,
  /// Heap memory when the mapping could not be made (or for an empty region).
  heap: Option<Vec<u8>>,
}

// SAFETY: the region exclusively owns its memory (like a Vec<u8>); it has no thread affinity.
unsafe impl Send for Region {}

impl Region {
  /// Maps `len` bytes (falls back to a zeroed heap allocation if mmap fails).
  pub fn new(len: usize) -> Self {
    if len > 0 {
      // SAFETY: an anonymous private mapping at an address of the kernel's choice; no fd.
      let p = unsafe {
        libc::mmap(
          std::ptr::null_mut(),
          len,
          libc::PROT_READ | libc::PROT_WRITE,
          libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
          -1,
          0,
        )
      };
      if p != libc::MAP_FAILED {
        if let Some(ptr) = NonNull::new(p as *mut u8) {
          return Region { ptr, len, heap: None };
        }
      }
    }
    let mut v = vec![0u8; len];
    let ptr = NonNull::new(v.as_mut_ptr()).unwrap_or(NonNull::dangling());
    Region { ptr, len, heap: Some(v) }
  }
}

impl Region {
  /// Gives the pages back to the kernel: the region reads as zeros again and costs no
  /// resident memory until touched (nothing for a heap region, which keeps its bytes).
  pub fn discard(&mut self) {
    if self.heap.is_none() {
      // SAFETY: `ptr`/`len` are exactly the private anonymous mapping `new` made, still
      // mapped and owned by `self`; no reference into it outlives `&mut self`.
      unsafe { libc::madvise(self.ptr.as_ptr() as *mut libc::c_void, self.len, libc::MADV_DONTNEED) };
    }
  }
}

impl Deref for Region {
  type Target = [u8];
  fn deref(&self) -> &[u8] {
    // SAFETY: `ptr` addresses `len` initialised bytes (zero pages, or the heap vector) owned by
    // `self`.
    unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
  }
}

impl DerefMut for Region {
  fn deref_mut(&mut self) -> &mut [u8] {
    // SAFETY: as in `deref`, and `&mut self` makes the access exclusive.
    unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
  }
}

impl Drop for Region {
  fn drop(&mut self) {
    if self.heap.is_none() {
      // SAFETY: unmaps exactly the mapping made in `new`, which nothing borrows any more.
      unsafe { libc::munmap(self.ptr.as_ptr() as *mut libc::c_void, self.len) };
    }
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn a_region_reads_as_zeros_and_keeps_what_is_written() {
    let mut r = Region::new(3 * 65536 + 5);
    assert_eq!(r.len(), 3 * 65536 + 5);
    assert!(r.iter().step_by(4096).all(|&b| b == 0));
    r[65536 * 2 + 7] = 42;
    assert_eq!(r[65536 * 2 + 7], 42);
    assert!(Region::new(0).is_empty());
  }
}

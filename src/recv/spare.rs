//! One spare receive slab per thread. A closed socket's slab waits here for the next socket of
//! the same shape (the defaults: 256 slots of 64 KiB), so a program that opens a socket per
//! request does not make and free a slab per request: ~120 KiB of zeroed headers, names and
//! control space, and a 16 MiB mapping (an mmap, page faults, an munmap) each time.
//!
//! The spare is kept until the thread ends. A slab whose receives filled more than a few
//! slots gives its payload pages back to the kernel first, so what a spare keeps resident is
//! about what a lone datagram touched.

use std::cell::RefCell;

use super::RecvSlab;

/// A slab that never received more than this many datagrams at once keeps its pages.
const KEEP_PAGES_UP_TO: usize = 16;

thread_local! {
  static SPARE: RefCell<Option<RecvSlab>> = const { RefCell::new(None) };
}

/// A slab for `batch` datagrams of up to `limit` bytes (GRO per `gro`): the thread's spare
/// when it has that shape, otherwise a new one.
pub fn take(batch: usize, limit: usize, gro: bool) -> RecvSlab {
  let want = RecvSlab::shape_of(batch, limit, gro);
  let spare = SPARE
    .try_with(|cell| {
      let mut slot = cell.try_borrow_mut().ok()?;
      if slot.as_ref().map(RecvSlab::shape) == Some(want) {
        slot.take()
      } else {
        None
      }
    })
    .ok()
    .flatten();
  match spare {
    Some(mut s) => {
      s.reset();
      s
    }
    None => RecvSlab::with_gro(batch, limit, gro),
  }
}

/// Keeps `slab` as the thread's spare (replacing the one there).
pub fn give(mut slab: RecvSlab) {
  if slab.high_water > KEEP_PAGES_UP_TO {
    slab.buf.discard();
  }
  // During thread teardown the spare may be gone already: the slab is then simply dropped.
  let _ = SPARE.try_with(|cell| {
    if let Ok(mut slot) = cell.try_borrow_mut() {
      *slot = Some(slab);
    }
  });
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn a_given_slab_is_taken_again_by_the_same_shape_only() {
    let mut s = take(8, 2048, false);
    s.drop_counter = true;
    let at = s.names.as_ptr();
    give(s);
    let other = take(8, 4096, false);
    assert_ne!(other.names.as_ptr(), at, "another shape gets a new slab");
    let again = take(8, 2048, false);
    assert_eq!(again.names.as_ptr(), at, "the same shape gets the spare");
    assert!(!again.drop_counter, "reset for its new socket");
    let fresh = take(8, 2048, false);
    assert_ne!(fresh.names.as_ptr(), at, "the spare is handed out once");
    drop(other);
  }
}

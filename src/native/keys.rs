//! The sockets of this thread by key: a number naming an open socket's slot, which the plain
//! N-API functions (`openSocket`, `closeSocket`, `sendOneFast`; see `keyed` and `send_fast`)
//! take instead of a napi-rs class object. Finding a socket by key costs an index and a
//! compare; unwrapping a class object costs its type-tag check and napi-rs's borrow
//! bookkeeping.
//!
//! The table holds a socket's slot from its opening (or its first `sendKey()`) until it
//! closes, and a key names one slot and its generation: a key of a closed socket is refused
//! (the closed-socket error) even when another socket reuses its place. A key is only a
//! number, never a pointer, so a wrong one is refused, not followed. Each thread (worker) has
//! its own table; a key from another thread is not found there.

use std::cell::RefCell;
use std::sync::Arc;

use super::Open;
use crate::cleanup::Slot;
use crate::io::Shared;

/// What the table holds for one open socket.
#[derive(Clone)]
pub(super) struct Keyed {
  /// The socket's slot (the same one its class object holds, if it has one).
  pub slot: Slot<Open>,
  /// Its counters, which outlive the slot (the final counts after close).
  pub shared: Arc<Shared>,
  /// True once a class object owns the socket (it was made by one, or `NativeSocket.fromKey`
  /// made one): a second would close the socket when either is garbage-collected.
  pub claimed: bool,
}

/// Bits of a key that give the table index; the rest is the slot's generation.
const INDEX_BITS: u32 = 20;
const INDEX_MASK: u32 = (1 << INDEX_BITS) - 1;
/// Keys stay below 2^30, so V8 holds every key as a small integer (a Smi): a key past that was a
/// heap number, allocated on each open, and it changed the representation of the field JS keeps
/// it in (a deoptimization of the code reading it) once a socket-per-request loop had reused a
/// place 1 024 times.
const KEY_BITS: u32 = 30;
const GENERATIONS: u32 = 1 << (KEY_BITS - INDEX_BITS);

struct Entry<T> {
  generation: u32,
  slot: Option<T>,
}

/// The sockets of one thread by key (generic only so it is unit-tested without sockets).
struct Table<T> {
  entries: Vec<Entry<T>>,
  free: Vec<u32>,
}

impl<T: Clone> Table<T> {
  const fn new() -> Self {
    Table { entries: Vec::new(), free: Vec::new() }
  }

  /// A key for `slot`; None when the table is full (the caller then sends the usual way).
  fn insert(&mut self, slot: T) -> Option<u32> {
    let index = match self.free.pop() {
      Some(i) => i,
      None => {
        let i = u32::try_from(self.entries.len()).ok().filter(|i| *i <= INDEX_MASK)?;
        self.entries.push(Entry { generation: 0, slot: None });
        i
      }
    };
    let e = &mut self.entries[index as usize];
    e.slot = Some(slot);
    Some(index | (e.generation << INDEX_BITS))
  }

  fn get_ref(&self, key: u32) -> Option<&T> {
    let e = self.entries.get((key & INDEX_MASK) as usize)?;
    if e.generation == key >> INDEX_BITS {
      e.slot.as_ref()
    } else {
      None
    }
  }

  fn get_mut(&mut self, key: u32) -> Option<&mut T> {
    let e = self.entries.get_mut((key & INDEX_MASK) as usize)?;
    if e.generation == key >> INDEX_BITS {
      e.slot.as_mut()
    } else {
      None
    }
  }

  /// Takes the entry `key` names out (its key is refused from now on).
  fn remove(&mut self, key: u32) -> Option<T> {
    let index = key & INDEX_MASK;
    let e = self.entries.get_mut(index as usize)?;
    if e.generation != key >> INDEX_BITS {
      return None;
    }
    let taken = e.slot.take()?;
    e.generation = (e.generation + 1) % GENERATIONS;
    self.free.push(index);
    Some(taken)
  }
}

thread_local! {
  static TABLE: RefCell<Table<Keyed>> = const { RefCell::new(Table::new()) };
}

/// A key for a socket; None when the thread's table is full (2^20 sockets) or being torn down.
pub(super) fn insert(entry: Keyed) -> Option<u32> {
  TABLE.try_with(|t| t.try_borrow_mut().ok()?.insert(entry)).ok().flatten()
}

/// Takes the socket `key` names out of the table (its key is refused from now on); None for a
/// closed socket's key or one that never was.
pub(super) fn take(key: u32) -> Option<Keyed> {
  TABLE.try_with(|t| t.try_borrow_mut().ok()?.remove(key)).ok().flatten()
}

/// The slot of the socket `key` names (the per-send lookup: no copy of the counters' `Arc`).
pub(super) fn slot(key: u32) -> Option<Slot<Open>> {
  TABLE.try_with(|t| Some(t.try_borrow().ok()?.get_ref(key)?.slot.clone())).ok().flatten()
}

/// The socket `key` names, for a class object to own: None when the key names no socket or
/// a class object already owns it.
pub(super) fn claim(key: u32) -> Option<Keyed> {
  TABLE
    .try_with(|t| {
      let mut t = t.try_borrow_mut().ok()?;
      let e = t.get_mut(key)?;
      if e.claimed {
        return None;
      }
      e.claimed = true;
      Some(e.clone())
    })
    .ok()
    .flatten()
}

/// Takes a closing socket out of the table, if it has a key (see [`take`]).
pub(super) fn forget(key: Option<u32>) {
  if let Some(k) = key {
    take(k);
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn keys_are_refused_once_removed_even_when_the_place_is_reused() {
    let mut t = Table::new();
    let a = t.insert(1).expect("room");
    assert!(t.get_ref(a).is_some());
    t.remove(a);
    assert!(t.get_ref(a).is_none(), "removed");
    let b = t.insert(2).expect("room");
    assert_eq!(b & INDEX_MASK, a & INDEX_MASK, "the place is reused");
    assert_ne!(a, b);
    assert!(t.get_ref(a).is_none(), "the old key stays refused");
    assert_eq!(t.get_ref(b), Some(&2));
    t.remove(a); // a stale key removes nothing
    assert_eq!(t.get_ref(b), Some(&2));
    assert!(t.get_ref(u32::MAX).is_none());
  }

  #[test]
  fn keys_stay_below_2_to_the_30() {
    let mut t = Table::new();
    let mut max = 0;
    for _ in 0..3 * GENERATIONS {
      let k = t.insert(1).expect("room");
      max = max.max(k);
      t.remove(k);
    }
    assert!(max < 1 << KEY_BITS, "{max}");
    assert!(max >= (GENERATIONS - 1) << INDEX_BITS, "every generation was used");
  }
}

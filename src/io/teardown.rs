//! One async environment-cleanup hook per environment (the main thread's, each worker's) for
//! all the watchers opened on it, instead of one per watcher: registering a hook with Node
//! (`napi_add_async_cleanup_hook`: a hash-set insert and four allocations in Node) was about
//! a microsecond of every socket's creation. When the environment tears down (a worker exits
//! with sockets still open), every watcher still registered is told to close, and the hook is
//! completed once the last of them has closed its handles, so the environment waits for their
//! close callbacks before it closes its loop, as it did for the per-watcher hooks.
//!
//! Each environment runs on one thread, so the registry is per thread (an environment's entry
//! is keyed by its `napi_env`; a thread normally hosts one).
//!
//! The items of an environment sit in a slab (a vector of slots and a list of free ones), and
//! each item keeps its slot number (`Ticket`): registering and unregistering are O(1) and touch
//! one word. A create + bind + close loop that never lets the event loop turn (every step
//! settles in a microtask) keeps thousands of closed watchers registered until their close
//! callbacks run; a hash set of them cost ~0.5 µs per socket in cache misses at that size.

use std::cell::RefCell;
use std::ffi::c_void;
use std::ptr::null_mut;

use napi::sys;

/// Closes one registered item (a watcher) because its environment tears down.
pub(super) type Close = unsafe fn(*mut c_void);

/// Where a registered item sits in its environment's registry; given back to `unregister`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Ticket(usize);

struct EnvEntry {
  env: sys::napi_env,
  hook: sys::napi_async_cleanup_hook_handle,
  close: Close,
  /// Registered items by slot; null in a free slot.
  slots: Vec<*mut c_void>,
  /// The free slots, reused last-freed first.
  free: Vec<usize>,
  tearing_down: bool,
}

impl EnvEntry {
  /// How many slots hold an item (every other slot is on the free list).
  fn live(&self) -> usize {
    self.slots.len() - self.free.len()
  }

  fn insert(&mut self, item: *mut c_void) -> Ticket {
    match self.free.pop() {
      Some(at) => {
        self.slots[at] = item;
        Ticket(at)
      }
      None => {
        self.slots.push(item);
        Ticket(self.slots.len() - 1)
      }
    }
  }

  fn remove(&mut self, ticket: Ticket, item: *mut c_void) {
    if let Some(slot) = self.slots.get_mut(ticket.0) {
      if *slot == item && !item.is_null() {
        *slot = null_mut();
        self.free.push(ticket.0);
        if self.live() == 0 && self.slots.len() > KEEP_SLOTS {
          // A big burst is over: give its memory back (no ticket is outstanding).
          self.slots = Vec::new();
          self.free = Vec::new();
        }
      }
    }
  }
}

/// Slots kept when a burst ends. Freeing the slab after every burst of a few thousand sockets
/// (a create + close loop lets the loop turn now and then, and each turn closes a burst) made
/// glibc consolidate its heap on each of those frees: 9 % of a facade create + bind + close
/// cycle under `perf`. 64 Ki slots are 1.5 MiB.
const KEEP_SLOTS: usize = 64 * 1024;

thread_local! {
  static ENVS: RefCell<Vec<EnvEntry>> = const { RefCell::new(Vec::new()) };
}

/// Tracks `item` until `unregister`; `close` is called on it if `env` tears down first.
/// Registers the environment's hook on first use. Returns None when the item is not tracked
/// (the hook could not be registered, or the environment is already tearing down).
///
/// # Safety
/// Call on `env`'s JS thread; `item` (not null) stays valid until `unregister(env, ticket,
/// item)`, and `close` may be called on it until then.
pub(super) unsafe fn register(env: sys::napi_env, item: *mut c_void, close: Close) -> Option<Ticket> {
  ENVS
    .try_with(|cell| {
      let mut envs = cell.try_borrow_mut().ok()?;
      if let Some(e) = envs.iter_mut().find(|e| e.env == env) {
        return if e.tearing_down { None } else { Some(e.insert(item)) };
      }
      let mut hook = null_mut();
      // SAFETY: on `env`'s thread; the data is the env itself, looked up again when called.
      let status =
        unsafe { sys::napi_add_async_cleanup_hook(env, Some(on_env_teardown), env.cast(), &mut hook) };
      if status != sys::Status::napi_ok {
        return None;
      }
      let mut e = EnvEntry { env, hook, close, slots: Vec::new(), free: Vec::new(), tearing_down: false };
      let ticket = e.insert(item);
      envs.push(e);
      Some(ticket)
    })
    .ok()
    .flatten()
}

/// Stops tracking `item` (its handles are all closed). Completes the environment's hook when
/// this was the last item of an environment that is tearing down.
pub(super) fn unregister(env: sys::napi_env, ticket: Ticket, item: *mut c_void) {
  settle(env, |e| e.remove(ticket, item));
}

/// Runs `change` on `env`'s entry, then completes its hook if it is tearing down with nothing
/// left registered.
fn settle(env: sys::napi_env, change: impl FnOnce(&mut EnvEntry)) {
  let done = ENVS
    .try_with(|cell| {
      let mut envs = cell.try_borrow_mut().ok()?;
      let at = envs.iter().position(|e| e.env == env)?;
      let e = &mut envs[at];
      change(e);
      if e.tearing_down && e.live() == 0 {
        Some(envs.swap_remove(at).hook)
      } else {
        None
      }
    })
    .ok()
    .flatten();
  if let Some(hook) = done {
    // SAFETY: the hook this registry registered for `env`, completed once (its entry is gone).
    unsafe { sys::napi_remove_async_cleanup_hook(hook) };
  }
}

// SAFETY (contract): N-API calls it once, on the environment's thread, with the env as data.
unsafe extern "C" fn on_env_teardown(_hook: sys::napi_async_cleanup_hook_handle, data: *mut c_void) {
  let env = data as sys::napi_env;
  // The items are taken out of the registry's borrow before any is closed: closing runs the
  // owner's teardown, which must be free to reach the registry.
  let found = ENVS
    .try_with(|cell| {
      let mut envs = cell.try_borrow_mut().ok()?;
      let e = envs.iter_mut().find(|e| e.env == env)?;
      e.tearing_down = true;
      Some((e.slots.iter().copied().filter(|p| !p.is_null()).collect::<Vec<_>>(), e.close))
    })
    .ok()
    .flatten();
  let Some((items, close)) = found else { return };
  for item in items {
    // SAFETY: registered items stay valid until they unregister, which happens in a handle
    // close callback (never during this call).
    unsafe { close(item) };
  }
  // Nothing was open (or nothing is left): complete the hook now.
  settle(env, |_| {});
}

#[cfg(test)]
mod tests {
  use super::*;

  unsafe fn never(_: *mut c_void) {}

  fn entry() -> EnvEntry {
    EnvEntry {
      env: null_mut(),
      hook: null_mut(),
      close: never,
      slots: Vec::new(),
      free: Vec::new(),
      tearing_down: false,
    }
  }

  fn item(n: usize) -> *mut c_void {
    (n * 16) as *mut c_void
  }

  #[test]
  fn slots_are_reused_and_a_ticket_removes_only_its_own_item() {
    let mut e = entry();
    let a = e.insert(item(1));
    let b = e.insert(item(2));
    assert_eq!(e.live(), 2);
    e.remove(a, item(1));
    assert_eq!(e.live(), 1);
    e.remove(a, item(1)); // twice: no effect
    e.remove(b, item(3)); // a stale ticket for another item: no effect
    assert_eq!(e.live(), 1);
    let c = e.insert(item(3));
    assert_eq!(c, a, "the freed slot is reused");
    assert_eq!(e.slots.len(), 2);
    let mut held: Vec<_> = e.slots.iter().copied().filter(|p| !p.is_null()).collect();
    held.sort();
    assert_eq!(held, [item(2), item(3)]);
  }

  #[test]
  fn a_small_burst_keeps_its_slots() {
    let mut e = entry();
    let tickets: Vec<_> = (1..=3000).map(|n| (e.insert(item(n)), item(n))).collect();
    for (t, i) in tickets {
      e.remove(t, i);
    }
    assert_eq!(e.live(), 0);
    assert_eq!(e.slots.len(), 3000, "kept for the next burst");
    assert_eq!(e.insert(item(1)), Ticket(2999), "the last freed slot first");
  }

  #[test]
  fn the_slab_gives_its_memory_back_after_a_big_burst() {
    let mut e = entry();
    let n = KEEP_SLOTS + 1;
    let tickets: Vec<_> = (1..=n).map(|n| (e.insert(item(n)), item(n))).collect();
    assert_eq!(e.live(), n);
    for (t, i) in tickets {
      e.remove(t, i);
    }
    assert_eq!(e.live(), 0);
    assert!(e.slots.capacity() == 0 && e.free.capacity() == 0);
    let t = e.insert(item(1));
    assert_eq!(t, Ticket(0));
  }
}

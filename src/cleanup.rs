//! The slot a socket's state lives in, shared (weakly) with its environment's teardown: when a
//! worker thread (or the process) tears down its Node environment, sockets JS never closed are
//! shut down (watch stopped, fd closed). The environment's one async cleanup hook
//! (`crate::io::teardown`) closes each open watcher, which closes its slot first
//! (`Watch::set_teardown`), then its handles.
//!
//! The socket and its hook share a [`SlotCell`]. Closing never silently does nothing: when the
//! value is borrowed (a call on the same socket is on the stack), the close tells the socket
//! to stop at once and the borrower finishes the close as its borrow ends.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// Something a cleanup hook can shut down.
pub trait Shutdown {
  /// Releases the resources (idempotent through the `Option` it lives in).
  fn shutdown(&mut self);
}

/// The slot a socket and its hook share.
pub type Slot<T> = Rc<SlotCell<T>>;

/// The open value (`None` once closed), a close that waits for a borrow to end, and a way to
/// stop the value's work that needs no borrow.
pub struct SlotCell<T> {
  value: RefCell<Option<T>>,
  close_pending: Cell<bool>,
  stop: Box<dyn Fn()>,
}

impl<T: Shutdown> SlotCell<T> {
  /// A slot holding `value`; `stop` must make the value's background work end without access
  /// to it (for the socket: tell every loop callback to leave the fd alone).
  pub fn new(value: T, stop: impl Fn() + 'static) -> Slot<T> {
    Rc::new(SlotCell {
      value: RefCell::new(Some(value)),
      close_pending: Cell::new(false),
      stop: Box::new(stop),
    })
  }

  /// Runs `f` on the open value. None when closed (or when a call on the same value is already
  /// on the stack). A close requested during `f` is carried out when `f` returns.
  pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> Option<R> {
    let r = {
      let mut guard = self.value.try_borrow_mut().ok()?;
      let value = guard.as_mut()?;
      f(value)
    };
    if self.close_pending.get() {
      self.close();
    }
    Some(r)
  }

  /// Shuts the value down and drops it. When it is borrowed, stops its work now and leaves the
  /// rest to the borrower (see [`SlotCell::with`]): never a silent no-op.
  pub fn close(&self) {
    match self.value.try_borrow_mut() {
      Ok(mut guard) => {
        self.close_pending.set(false);
        let taken = guard.take();
        drop(guard);
        if let Some(mut value) = taken {
          value.shutdown();
        }
      }
      Err(_) => {
        self.close_pending.set(true);
        (self.stop)();
      }
    }
  }

  /// True once closed (or once a close waits for a borrow to end).
  pub fn is_closed(&self) -> bool {
    self.close_pending.get() || self.value.try_borrow().map(|g| g.is_none()).unwrap_or(false)
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  /// Records how often it was stopped and shut down.
  struct Probe {
    log: Rc<RefCell<Vec<&'static str>>>,
  }

  impl Shutdown for Probe {
    fn shutdown(&mut self) {
      self.log.borrow_mut().push("shutdown");
    }
  }

  fn slot() -> (Slot<Probe>, Rc<RefCell<Vec<&'static str>>>) {
    let log = Rc::new(RefCell::new(Vec::new()));
    let stop_log = log.clone();
    let s = SlotCell::new(Probe { log: log.clone() }, move || stop_log.borrow_mut().push("stop"));
    (s, log)
  }

  #[test]
  fn close_shuts_down_once() {
    let (s, log) = slot();
    assert!(!s.is_closed());
    s.close();
    s.close();
    assert!(s.is_closed());
    assert_eq!(*log.borrow(), ["shutdown"]);
    assert_eq!(s.with(|_| 1), None, "closed: nothing to run on");
  }

  #[test]
  fn a_close_while_borrowed_stops_at_once_and_completes_when_the_borrow_ends() {
    // Regression: a close that met a borrowed RefCell used to be skipped without a trace,
    // leaving the socket's background work running and the fd open.
    let (s, log) = slot();
    let inner = s.clone();
    let r = s.with(|_| {
      inner.close();
      assert!(inner.is_closed(), "reported closed while the close waits");
      assert_eq!(*log.borrow(), ["stop"], "the work was stopped without the borrow");
      7
    });
    assert_eq!(r, Some(7));
    assert_eq!(*log.borrow(), ["stop", "shutdown"], "the borrower finished the close");
    assert!(s.is_closed());
    s.close();
    assert_eq!(log.borrow().len(), 2);
  }
}

//! A wake-up file descriptor: the JS thread writes to it to interrupt the I/O thread's `poll`
//! (close, pause/resume, want-writable, credit returned). eventfd on Linux, a pipe elsewhere.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// The read side is polled by the I/O thread; `wake` may be called from any thread.
pub struct Waker {
  read: OwnedFd,
  #[cfg(not(target_os = "linux"))]
  write: OwnedFd,
}

impl Waker {
  #[cfg(target_os = "linux")]
  pub fn new() -> io::Result<Self> {
    // SAFETY: eventfd has no memory arguments; the result is checked before use.
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    if fd < 0 {
      return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a freshly created descriptor that nothing else owns.
    Ok(Waker { read: unsafe { OwnedFd::from_raw_fd(fd) } })
  }

  #[cfg(not(target_os = "linux"))]
  pub fn new() -> io::Result<Self> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` has room for the two descriptors pipe() writes.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
      return Err(io::Error::last_os_error());
    }
    for fd in fds {
      // SAFETY: fcntl on descriptors we just created; failures are harmless (blocking pipe).
      unsafe {
        libc::fcntl(fd, libc::F_SETFL, libc::fcntl(fd, libc::F_GETFL) | libc::O_NONBLOCK);
        libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
      }
    }
    // SAFETY: both descriptors are fresh and owned by nobody else.
    Ok(unsafe { Waker { read: OwnedFd::from_raw_fd(fds[0]), write: OwnedFd::from_raw_fd(fds[1]) } })
  }

  /// Descriptor to poll for `POLLIN`.
  pub fn fd(&self) -> RawFd {
    self.read.as_raw_fd()
  }

  /// Makes the next (or current) poll on `fd()` return. Never blocks.
  pub fn wake(&self) {
    let one: u64 = 1;
    #[cfg(target_os = "linux")]
    let fd = self.read.as_raw_fd();
    #[cfg(not(target_os = "linux"))]
    let fd = self.write.as_raw_fd();
    // SAFETY: writes 8 bytes from a live u64; a full counter/pipe (EAGAIN) already means
    // "woken", so the result is deliberately ignored.
    unsafe { libc::write(fd, &one as *const u64 as *const libc::c_void, 8) };
  }

  /// Consumes pending wake-ups so the next poll blocks again.
  pub fn drain(&self) {
    let mut buf = [0u8; 64];
    loop {
      // SAFETY: reads into a live local buffer of the given length.
      let n = unsafe { libc::read(self.read.as_raw_fd(), buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
      if n <= 0 || cfg!(target_os = "linux") {
        break;
      }
    }
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  fn readable(fd: RawFd) -> bool {
    let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd, zero timeout.
    unsafe { libc::poll(&mut p, 1, 0) == 1 }
  }

  #[test]
  fn wake_then_drain() {
    let w = Waker::new().unwrap();
    assert!(!readable(w.fd()));
    w.wake();
    w.wake();
    assert!(readable(w.fd()));
    w.drain();
    assert!(!readable(w.fd()));
  }
}

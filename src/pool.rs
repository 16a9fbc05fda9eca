//! Reuse of batch buffers. Each received batch reaches JS as a Buffer over Rust memory; when JS
//! lets go of it and the GC finalizes it, the memory goes back to a small per-socket pool that
//! the I/O thread takes from for the next batch. So a socket that is kept up with allocates
//! (and page-faults) nothing per batch in the steady state, and the allocator sees no churn.

use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::ToNapiValue;
use napi::sys;

/// Buffers larger than this are freed rather than kept (a GRO batch can be megabytes).
const MAX_POOLED_CAPACITY: usize = 1 << 20;
/// Most spare capacity one pool keeps, all buffers together.
const MAX_POOLED_BYTES: usize = 4 << 20;

/// A bounded stack of spare buffers, shared by the I/O thread and the JS thread.
#[derive(Debug)]
pub struct BufferPool {
  free: Mutex<Spare>,
  max: usize,
  reused: AtomicU64,
}

#[derive(Debug, Default)]
struct Spare {
  buffers: Vec<Vec<u8>>,
  bytes: usize,
}

impl BufferPool {
  /// A pool that keeps at most `max` spare buffers.
  pub fn new(max: usize) -> Self {
    BufferPool { free: Mutex::new(Spare::default()), max, reused: AtomicU64::new(0) }
  }

  /// A spare buffer (empty, with whatever capacity it had), or a new empty one.
  pub fn take(&self) -> Vec<u8> {
    let taken = self.free.lock().ok().and_then(|mut f| {
      let b = f.buffers.pop()?;
      f.bytes -= b.capacity();
      Some(b)
    });
    match taken {
      Some(b) => {
        self.reused.fetch_add(1, Ordering::Relaxed);
        b
      }
      None => Vec::new(),
    }
  }

  /// How many times `take` handed out a recycled buffer.
  pub fn reused(&self) -> u64 {
    self.reused.load(Ordering::Relaxed)
  }

  /// Returns a buffer; it is freed instead when the pool is full (`max` buffers or 4 MiB) or
  /// it is over 1 MiB.
  pub fn give(&self, mut buf: Vec<u8>) {
    let cap = buf.capacity();
    if cap == 0 || cap > MAX_POOLED_CAPACITY {
      return;
    }
    buf.clear();
    if let Ok(mut f) = self.free.lock() {
      if f.buffers.len() < self.max && f.bytes + cap <= MAX_POOLED_BYTES {
        f.bytes += cap;
        f.buffers.push(buf);
      }
    }
  }

  /// Spare buffers held now.
  pub fn spare(&self) -> usize {
    self.free.lock().map(|f| f.buffers.len()).unwrap_or(0)
  }
}

/// Bytes that become a JS Buffer without a copy and return to `pool` when it is finalized.
pub struct PooledBuffer {
  pub bytes: Vec<u8>,
  pub pool: Arc<BufferPool>,
}

// SAFETY: only N-API calls this, once, with the hint given in `to_napi_value`.
unsafe extern "C" fn finalize(_env: sys::napi_env, _data: *mut c_void, hint: *mut c_void) {
  // SAFETY: `hint` is the Box<PooledBuffer> leaked in `to_napi_value`; N-API calls this once.
  let b = unsafe { Box::from_raw(hint as *mut PooledBuffer) };
  let PooledBuffer { bytes, pool } = *b;
  pool.give(bytes);
}

impl ToNapiValue for PooledBuffer {
  // SAFETY: napi-rs calls this on the JS thread with a live `env`.
  unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> napi::Result<sys::napi_value> {
    let mut out = ptr::null_mut();
    let len = val.bytes.len();
    if len == 0 {
      // SAFETY: creates an empty Buffer; `out` is a live out-pointer.
      let status = unsafe { sys::napi_create_buffer(env, 0, ptr::null_mut(), &mut out) };
      val.pool.give(val.bytes);
      return check(status, out);
    }
    let data = val.bytes.as_ptr() as *mut c_void;
    let hint = Box::into_raw(Box::new(val));
    // SAFETY: `data` points at `len` initialised bytes owned by the boxed Vec, whose heap
    // memory does not move while the box lives; the box is freed only by `finalize` (or below
    // when N-API did not take it).
    let status =
      unsafe { sys::napi_create_external_buffer(env, len, data, Some(finalize), hint.cast(), &mut out) };
    if status == sys::Status::napi_ok {
      return Ok(out);
    }
    // SAFETY: N-API did not take ownership of `hint`; reclaim it.
    let val = unsafe { Box::from_raw(hint) };
    if status != sys::Status::napi_no_external_buffers_allowed {
      return check(status, out);
    }
    // Runtimes without external buffers (Electron): copy, then recycle at once.
    // SAFETY: `val.bytes` holds `len` readable bytes; `out` is a live out-pointer.
    let status =
      unsafe { sys::napi_create_buffer_copy(env, len, val.bytes.as_ptr().cast(), ptr::null_mut(), &mut out) };
    let PooledBuffer { bytes, pool } = *val;
    pool.give(bytes);
    check(status, out)
  }
}

fn check(status: sys::napi_status, out: sys::napi_value) -> napi::Result<sys::napi_value> {
  if status == sys::Status::napi_ok {
    Ok(out)
  } else {
    Err(napi::Error::new(napi::Status::from(status), "creating the batch Buffer failed".to_string()))
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn keeps_at_most_max_and_hands_back_cleared_buffers() {
    let p = BufferPool::new(2);
    for _ in 0..3 {
      p.give(vec![1u8; 100]);
    }
    assert_eq!(p.spare(), 2);
    let b = p.take();
    assert!(b.is_empty());
    assert!(b.capacity() >= 100);
    assert_eq!(p.spare(), 1);
    assert_eq!(p.reused(), 1);
  }

  #[test]
  fn keeps_at_most_the_byte_budget() {
    let p = BufferPool::new(100);
    for _ in 0..10 {
      p.give(Vec::with_capacity(MAX_POOLED_CAPACITY));
    }
    assert_eq!(p.spare(), MAX_POOLED_BYTES / MAX_POOLED_CAPACITY);
    drop(p.take());
    p.give(Vec::with_capacity(MAX_POOLED_CAPACITY));
    assert_eq!(p.spare(), MAX_POOLED_BYTES / MAX_POOLED_CAPACITY);
  }

  #[test]
  fn frees_empty_and_huge_buffers() {
    let p = BufferPool::new(4);
    p.give(Vec::new());
    p.give(Vec::with_capacity(MAX_POOLED_CAPACITY + 1));
    assert_eq!(p.spare(), 0);
    assert_eq!(p.take().capacity(), 0);
  }
}

//! The napi class JS talks to: one owned UDP socket, its watch on the event loop and its
//! counters. JS opens and closes sockets by key (`keyed`, `keys`) and makes the class object
//! of a socket only when it needs one of its other methods (`NativeSocket.fromKey`).
//! `lib/socket.ts` wraps it in the public `UdpSocket` API; argument validation with
//! `TypeError`/`RangeError` happens there, and this layer checks again without trusting it.
//!
//! One concern per file: this one holds the class, its constructor and its lifetime (close,
//! ref/unref, worker teardown); `options` the plain objects crossing the boundary, `dispatch`
//! the events to JS and the batch layout, `send` send marshalling, `connection` addresses,
//! `sockopts` socket options, `stats` the counters, `keys` the per-thread table of sockets by
//! key, `keyed` the plain functions that open, close and set reading by key, `send_fast` the
//! send by key. Errors are thrown as described in `crate::error`.

use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use socket2::Socket;

use crate::addr;
use crate::cleanup::{Shutdown, Slot, SlotCell};
use crate::error::{closed, invalid_arg, os_error, NResult, OsError};
use crate::io::watch::Watch;
use crate::io::{Reader, Shared, SlabSpec};
use crate::recv::RecvMode;
use crate::send::SendScratch;
use crate::socket::{self, SocketConfig};

mod connection;
pub mod dispatch;
mod keyed;
mod keys;
pub(crate) mod landing;
pub mod options;
pub mod packed_options;
mod send;
mod send_fast;
mod sockopts;
pub mod stats;

use connection::{addr_error, port};
use options::{NativeOptions, MAX_BATCH_SIZE, MAX_DATAGRAM_SIZE};

/// Throws `r`'s error as the structured JS error (see `crate::error`).
fn throw<T>(env: &Env, r: NResult<T>) -> Result<T> {
  r.map_err(|e| e.into_napi(env))
}

/// An open socket: everything `close()` releases. Dropping it stops its watch, then closes
/// the fd (in field order: `watch` is dropped before `socket`).
pub(crate) struct Open {
  /// The watch on the event loop; `None` once shut down.
  watch: Option<Watch>,
  /// The socket (its fd is `shared.fd()`).
  socket: Socket,
  shared: Arc<Shared>,
  scratch: SendScratch,
  ipv6: bool,
  granted: socket::Granted,
  connected: bool,
  caps: CapsProbe,
  /// The error that stopped the last send early (see `lastSendError`).
  last_send_error: Option<OsError>,
}

#[derive(Clone, Copy)]
/// What the constructor probed, for `capabilities()`.
struct CapsProbe {
  gso_supported: bool,
  drop_counter: bool,
  info: socket::RecvInfo,
}

impl Shutdown for Open {
  /// Stops the watch (no system call touches the fd after this); the fd closes when `self`
  /// drops, right after.
  fn shutdown(&mut self) {
    self.watch.take();
  }
}

impl Drop for Open {
  /// However an `Open` goes away, its watch is stopped before the fd closes.
  fn drop(&mut self) {
    self.shutdown();
  }
}

/// One UDP socket owned by Rust. Use the `UdpSocket` class from the package instead.
///
/// Every error its methods throw is an `Error` with a `code`:
/// - `'UDP_MMSG_OS'`: a system call failed; `errno` (positive), `syscall`, `detail` (may be '').
/// - `'UDP_MMSG_ARG'`: an argument was refused; `argument` (`'destination'`, `'batchSize'`, ...),
///   `index` (the destination or source table entry, otherwise undefined), `reason`.
/// - `'UDP_MMSG_CLOSED'`: the socket was used after `close()`.
#[napi]
pub struct NativeSocket {
  /// Shared (weakly) with the watcher's environment cleanup hook, which closes the socket on
  /// worker teardown.
  inner: Slot<Open>,
  /// The counters, kept past close so `stats()` then reports the final counts.
  shared: Arc<Shared>,
  /// Its key for `sendOneFast`, once asked for (`send_fast`).
  send_key: std::cell::Cell<Option<u32>>,
}

#[napi]
impl NativeSocket {
  /// Creates, configures and binds the socket, and watches it on the event loop (paused).
  /// The options come packed (see `packed_options`): the bind `address`, the numeric options
  /// in the order `optionSlots()` gives, `connectAddress` and `steering`. `dispatch` is called
  /// once per event (a batch, an error, writability) with positional arguments (see
  /// `dispatch::event_args`). When `options` holds one slot more than `optionSlots()`, the
  /// socket's `sendKey()` is written there (so JS has it without a second call).
  #[napi(constructor)]
  pub fn new(
    env: Env,
    address: String,
    mut options: Float64ArraySlice<'_>,
    connect_address: Option<String>,
    steering: Option<crate::steering::SteeringOptions>,
    #[napi(
      ts_arg_type = "(kind: number, data: Uint8Array | null, count: number, kernelDrops: number, errno?: number, syscall?: string) => void"
    )]
    dispatch: Function<'_, (), ()>,
  ) -> Result<Self> {
    let unpacked = packed_options::unpack(address, options.as_ref(), connect_address, steering);
    let (inner, shared) = throw(&env, unpacked.and_then(|o| open(&env, o, &dispatch)))?;
    let socket = NativeSocket { inner, shared, send_key: std::cell::Cell::new(None) };
    // SAFETY: JS cannot run during this call, so nothing else touches the array meanwhile.
    if let Some(out) = unsafe { options.as_mut() }.get_mut(packed_options::OPTION_SLOTS.len()) {
      *out = socket.send_key() as f64;
    }
    Ok(socket)
  }

  /// The class object of the socket `openSocket` opened as `key` (see `keyed`), for its other
  /// methods. Throws the closed-socket error when `key` names no open socket, or one that
  /// already has its class object (two would each close it when collected).
  #[napi(factory)]
  pub fn from_key(env: Env, key: u32) -> Result<Self> {
    let keys::Keyed { slot, shared, .. } = keys::claim(key).ok_or_else(|| closed().into_napi(&env))?;
    Ok(NativeSocket { inner: slot, shared, send_key: std::cell::Cell::new(Some(key)) })
  }

  /// Runs `f` on the open socket, or fails with the closed-socket error.
  fn open_with<T>(&self, f: impl FnOnce(&mut Open) -> NResult<T>) -> NResult<T> {
    self.inner.with(f).unwrap_or_else(|| Err(closed()))
  }

  /// Runs `f` on the open socket and throws its error (or the closed-socket error) to JS.
  fn with<T>(&self, env: &Env, f: impl FnOnce(&mut Open) -> NResult<T>) -> Result<T> {
    throw(env, self.open_with(f))
  }

  /// True when this socket uses one system call per datagram (the portable path).
  #[napi(getter)]
  pub fn portable(&self) -> bool {
    self.open_with(|o| Ok(o.shared.mode == RecvMode::Portable)).unwrap_or(false)
  }

  /// Starts (true) or pauses (false) reading; while paused, datagrams wait in the kernel.
  #[napi]
  pub fn set_reading(&self, env: Env, on: bool) -> Result<()> {
    self.with(&env, |o| {
      o.set_reading(on);
      Ok(())
    })
  }

  /// Asks for one `EVENT_WRITABLE` event when the send buffer has room again.
  #[napi]
  pub fn request_writable(&self, env: Env) -> Result<()> {
    self.with(&env, |o| {
      o.shared.want_writable.store(true, std::sync::atomic::Ordering::SeqCst);
      o.update_watch();
      Ok(())
    })
  }

  /// Keeps the Node event loop alive while the socket is open (the default).
  #[napi(js_name = "ref")]
  pub fn ref_(&self, env: Env) -> Result<()> {
    self.set_ref(env, true)
  }

  /// Lets the process exit even though the socket is open.
  #[napi]
  pub fn unref(&self, env: Env) -> Result<()> {
    self.set_ref(env, false)
  }

  /// Refs or unrefs the socket's hold on the event loop.
  fn set_ref(&self, env: Env, on: bool) -> Result<()> {
    if self.inner.is_closed() {
      return Ok(());
    }
    self.with(&env, |o| {
      if let Some(w) = &o.watch {
        w.set_ref(on);
      }
      Ok(())
    })
  }

  /// Stops watching, closes the fd and releases the event-loop reference. Idempotent.
  #[napi]
  pub fn close(&mut self) {
    self.shutdown();
  }

  /// True once `close()` has run.
  #[napi(getter)]
  pub fn closed(&self) -> bool {
    self.inner.is_closed()
  }

  /// Closes the slot (watch stopped, fd closed; deferred to the end of a call on this socket
  /// that is on the stack, with every loop callback told to stop at once); the watcher's
  /// cleanup hook goes with the watcher.
  fn shutdown(&mut self) {
    keys::forget(self.send_key.take());
    close_slot(&self.inner);
  }
}

impl Drop for NativeSocket {
  /// Runs when the JS object is garbage-collected without `close()`: same as `close()`.
  fn drop(&mut self) {
    self.shutdown();
  }
}

/// Creates, configures and binds a socket and watches it on the event loop: its slot, and its
/// counters (which outlive the slot, for `stats()` after close). Errors are not yet thrown.
fn open(
  env: &Env,
  mut options: NativeOptions,
  dispatch: &Function<'_, (), ()>,
) -> NResult<(Slot<Open>, Arc<Shared>)> {
  if options.batch_size == 0 || options.batch_size > MAX_BATCH_SIZE {
    return Err(invalid_arg("batchSize", "must be 1..1024"));
  }
  if options.max_datagram_size == 0 || options.max_datagram_size > MAX_DATAGRAM_SIZE {
    return Err(invalid_arg("maxDatagramSize", "must be 1..65535"));
  }
  let bind =
    addr::socket_addr(&options.address, port(options.port, "port")?).map_err(|e| addr_error(e, "address"))?;
  let connect = match (&options.connect_address, options.connect_port) {
    (Some(a), Some(p)) => {
      Some(addr::socket_addr(a, port(p, "connectPort")?).map_err(|e| addr_error(e, "connectAddress"))?)
    }
    (None, None) => None,
    _ => return Err(invalid_arg("connect", "needs both address and port")),
  };
  if bind.is_ipv6() && !options.ipv6 {
    return Err(invalid_arg("address", "is IPv6 and needs a udp6 socket"));
  }
  let cfg = SocketConfig {
    bind,
    ipv6: options.ipv6,
    ipv6_only: options.ipv6_only,
    reuse_addr: options.reuse_addr,
    reuse_port: options.reuse_port,
    broadcast: options.broadcast,
    recv_buffer_size: options.recv_buffer_size.map(|s| s as usize),
    send_buffer_size: options.send_buffer_size.map(|s| s as usize),
    force_buffer_size: options.force_buffer_size,
    ttl: options.ttl,
    connect,
  };
  // An adopted socket's family is the fd's, whatever `ipv6` said (see crate::adopt).
  let opened = match options.fd {
    Some(fd) => crate::adopt::adopt(fd, &cfg).map(|(s, g, v6)| {
      options.ipv6 = v6;
      (s, g)
    }),
    None => socket::open(&cfg),
  };
  let (sock, granted) = opened.map_err(|e| os_error(e.os, &e.detail))?;
  if let Some(s) = &options.steering {
    crate::steering::apply(&sock, crate::steering::Steering::parse(s)?)?;
  }
  let batched = cfg!(target_os = "linux") && !options.portable;
  let mode = if batched { RecvMode::Batched } else { RecvMode::Portable };
  // Asked for when the socket is first watched (`io::Reader::arm`): a socket closed within
  // the turn that opened it never pays the system call.
  let drop_counter = cfg!(target_os = "linux");
  let info = socket::RecvInfo {
    pktinfo: options.pktinfo,
    timestamps: options.timestamps,
    tos: options.recv_tos,
    gro: options.gro && batched,
  };
  socket::enable_recv_info(&sock, options.ipv6, info).map_err(|e| os_error(e.os, &e.detail))?;
  if let Some(tos) = options.tos {
    if tos > 255 {
      return Err(invalid_arg("tos", "must be 0..255"));
    }
    socket::set_tos(&sock, options.ipv6, tos).map_err(|e| os_error(e.os, &e.detail))?;
  }
  let gso_supported = batched && socket::probe_gso(&sock, options.ipv6);
  if options.gso == 2 && !gso_supported {
    let e = OsError { errno: libc::ENOPROTOOPT, syscall: "getsockopt" };
    return Err(os_error(e, "UDP_SEGMENT (gso: true needs Linux >= 4.18 and the batched path)"));
  }
  let coalesce = std::time::Duration::from_micros(options.coalesce_micros.min(1_000_000) as u64);
  let shared = Arc::new(Shared::new(sock.as_raw_fd(), mode, coalesce));
  // Read from the start when asked: the watch picks it up when it first polls.
  shared.reading.store(options.reading.unwrap_or(false), std::sync::atomic::Ordering::SeqCst);
  let spec = SlabSpec {
    batch: options.batch_size as usize,
    limit: options.max_datagram_size as usize,
    gro: info.gro,
    drop_counter,
  };
  let watch = Watch::start(env, Arc::clone(&shared), Reader::new(spec), dispatch)?;
  let open = Open {
    watch: Some(watch),
    socket: sock,
    shared,
    scratch: {
      let mut s = SendScratch::default();
      s.gso = options.gso > 0 && gso_supported;
      s
    },
    ipv6: options.ipv6,
    granted,
    connected: connect.is_some(),
    caps: CapsProbe { gso_supported, drop_counter, info },
    last_send_error: None,
  };
  // Worker teardown: the watcher's environment cleanup hook closes a socket JS never closed
  // (`Watch::set_teardown`).
  // Stopping needs no borrow of the slot (see `SlotCell::close`): the flag makes every loop
  // callback leave the fd alone; weak, so the slot does not keep the state alive.
  let kept = Arc::clone(&open.shared);
  let stopper = Arc::downgrade(&open.shared);
  let inner = SlotCell::new(open, move || {
    if let Some(shared) = stopper.upgrade() {
      shared.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }
  });
  let weak = Rc::downgrade(&inner);
  inner.with(|o| {
    if let Some(w) = &o.watch {
      w.set_teardown(Box::new(move || {
        if let Some(slot) = weak.upgrade() {
          slot.close();
        }
      }));
    }
  });
  Ok((inner, kept))
}

/// Closes a socket's slot (see `SlotCell::close`), after reading the kernel's last word on
/// drops, before the fd goes (`stats()` after close reports it). For the class's close and
/// `closeSocket` alike.
fn close_slot(slot: &Slot<Open>) {
  slot.with(|o| stats::final_drops(&o.socket, &o.shared.counters));
  slot.close();
}

impl Open {
  /// Starts (true) or pauses (false) reading.
  fn set_reading(&self, on: bool) {
    self.shared.reading.store(on, std::sync::atomic::Ordering::SeqCst);
    self.update_watch();
  }

  /// Makes the watch follow what JS wants now (reading, writability).
  fn update_watch(&self) {
    if let Some(w) = &self.watch {
      w.update();
    }
  }
}

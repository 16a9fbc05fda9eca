//! udp-mmsg: batched UDP sockets for Node.js.
//!
//! One module per concern: `socket` creates and configures, `recv` and `send` move batches,
//! `io` watches each socket on the JS thread's event loop (libuv), `uv` the few libuv calls, `batch` is the wire format to JS, `addr` and `cmsg`
//! convert addresses and control messages, `error` the errors thrown to JS, `native` the napi
//! class. Modules over ~400 lines are directories split the same way (`native/`, `send/`,
//! `io/`, `recv/`), with their unit tests, if any, in a `tests.rs` beside them.

#![deny(clippy::all)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod addr;
pub mod adopt;
pub mod batch;
pub mod cleanup;
pub mod cmsg;
pub mod error;
pub mod errqueue;
pub mod io;
pub mod linux;
pub mod multicast;
pub mod native;
pub mod recv;
pub mod send;
pub mod socket;
pub mod stats;
pub mod steering;
pub mod uv;

//! `leakscope-inspector`: talk to a live Node.js process over the Chrome DevTools Protocol.
//!
//! - [`Session::attach`] picks a [`Target`] (pid via SIGUSR1, an open inspector, a WebSocket URL, or a
//!   launched command), and [`Session::close`] undoes what it opened.
//! - [`Client`] is the CDP connection: [`Client::call`] for any method, [`Client::call_streaming`] for
//!   commands that stream events before their reply, helpers such as [`Client::memory_usage`] and
//!   [`Client::take_heap_snapshot`] (streams chunks straight into a `Write`).
//! - [`procfs`] lists node processes and their listening sockets (`leakscope ps`).
//!
//! Blocking, single-threaded, and every wait is bounded by a timeout.

mod client;
mod error;
pub mod http;
pub mod in_target;
pub mod procfs;
pub mod sampling;
mod session;
pub mod util;

pub use client::{
    Client, Event, EventHandler, HeapSpace, HeapUsage, MemoryUsage, SnapshotOptions, SnapshotProgress, SnapshotStats,
};
pub use error::{Error, Result};
pub use in_target::CLOSE_INSPECTOR_EXPRESSION;
pub use session::{is_loopback_host, AttachOptions, CloseReport, Origin, Session, Target};

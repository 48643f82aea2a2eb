//! Typed errors. Every variant says what went wrong in words a user can act on; the CLI adds hints.

use std::time::Duration;

/// Everything that can go wrong while finding, opening, talking to or closing a Node inspector.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no process with pid {pid}")]
    NoSuchProcess { pid: u32 },
    #[error("process {pid} exited while leakscope was working with it")]
    ProcessGone { pid: u32 },
    #[error("process {pid} ({name}) is not a Node.js process")]
    NotNode { pid: u32, name: String },
    #[error("permission denied for process {pid}: {detail}")]
    PermissionDenied { pid: u32, detail: String },
    #[error("process {pid} was started with --disable-sigusr1, so its inspector cannot be opened from outside")]
    Sigusr1Disabled { pid: u32 },
    #[error("process {pid} has no SIGUSR1 handler: sending SIGUSR1 would terminate it, so leakscope did not send it")]
    Sigusr1NotHandled { pid: u32 },
    #[error("sent SIGUSR1 to process {pid} but no inspector port appeared within {waited:?}: the app probably handles SIGUSR1 itself, or the process runs in another network namespace")]
    NoInspectorAppeared { pid: u32, waited: Duration },
    #[error("the inspector port {port} that process {pid} would open is already held by {}", holder_text(*.holder))]
    PortClash { pid: u32, port: u16, holder: Option<u32> },
    #[error("refusing to connect to {host}: it is not a loopback address, and anyone who can reach a Node inspector can execute code in that process (pass --allow-remote if you really mean it, e.g. through an SSH tunnel prefer 127.0.0.1)")]
    RemoteRefused { host: String },
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout { what: String, after: Duration },
    #[error("no Node inspector at {addr}: {detail}")]
    NoInspector { addr: String, detail: String },
    #[error("invalid target: {0}")]
    InvalidTarget(String),
    #[error("{method} failed: {message} (code {code})")]
    Protocol { method: String, code: i64, message: String },
    #[error("the inspector connection closed")]
    ConnectionClosed,
    #[error("WebSocket error: {0}")]
    WebSocket(Box<tungstenite::Error>),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("could not launch {program}: {detail}")]
    LaunchFailed { program: String, detail: String },
    #[error("the expression threw in the target: {0}")]
    Evaluate(String),
    #[error("unexpected reply from the inspector: {0}")]
    BadReply(String),
    #[error("writing the snapshot failed: {0}")]
    Write(std::io::Error),
    #[error("interrupted")]
    Interrupted,
}

fn holder_text(holder: Option<u32>) -> String {
    match holder {
        Some(pid) => format!("process {pid}"),
        None => "another process (pid not visible to us)".to_string(),
    }
}

impl From<tungstenite::Error> for Error {
    fn from(err: tungstenite::Error) -> Self {
        match err {
            tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => Error::ConnectionClosed,
            tungstenite::Error::Io(io) => Error::Io(io),
            other => Error::WebSocket(Box::new(other)),
        }
    }
}

impl Error {
    /// True when the error means the connection or the process went away (as opposed to a bad reply).
    pub fn is_disconnect(&self) -> bool {
        match self {
            Error::ConnectionClosed | Error::ProcessGone { .. } => true,
            Error::Io(io) => matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::UnexpectedEof
            ),
            Error::WebSocket(ws) => matches!(
                **ws,
                tungstenite::Error::Protocol(tungstenite::error::ProtocolError::ResetWithoutClosingHandshake)
            ),
            _ => false,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

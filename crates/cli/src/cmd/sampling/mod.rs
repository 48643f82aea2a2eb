//! Sampling heap profiler commands: `profile` (offline, any `.heapprofile`), `sample` (live, V8's sampling
//! heap profiler over the inspector) and `timeline` (allocation tracking: what was allocated during an
//! interval and is still alive). The maths and formats live in `leakscope-profile`; the inspector
//! connection is the live commands' [`crate::cmd::live`] session.

/// `writeln!` into a `String` report buffer (printed at once by [`emit`]).
macro_rules! outln {
    ($buf:expr) => {
        $buf.push('\n')
    };
    ($buf:expr, $($arg:tt)*) => {{
        use std::fmt::Write as _;
        let _ = writeln!($buf, $($arg)*);
    }};
}

pub mod args;
mod profile;
mod report;
mod sample;
mod timeline;

pub use profile::profile;
pub use sample::sample;
pub use timeline::timeline;

use crate::output::Exit;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Prints a finished report on stdout; a closed pipe (`| head`) is not an error.
pub(crate) fn emit(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|_| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(usage(format!("writing to stdout: {e}"))),
        _ => Ok(()),
    }
}

fn usage(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Exit { code: 2, message: message.into(), hint: None })
}

/// Writes `path` through a temporary file in the same directory, renamed into place only when `write`
/// succeeded and everything is flushed; the temporary file is removed on failure.
pub(crate) fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let tmp = temp_path(path);
    let result = (|| {
        let file = File::create(&tmp).map_err(|e| usage(format!("cannot create {}: {e}", tmp.display())))?;
        let mut out = BufWriter::new(file);
        write(&mut out)?;
        let file = out.into_inner().map_err(|e| usage(format!("writing {}: {}", tmp.display(), e.error())))?;
        file.sync_all().map_err(|e| usage(format!("writing {}: {e}", tmp.display())))?;
        std::fs::rename(&tmp, path)
            .map_err(|e| usage(format!("cannot rename {} to {}: {e}", tmp.display(), path.display())))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Fails early (before any sampling) when a file could not be created: its directory is missing.
pub(crate) fn check_output_dir(path: Option<&Path>) -> anyhow::Result<()> {
    let Some(path) = path else { return Ok(()) };
    if path.is_dir() {
        return Err(usage(format!("{} is a directory; give a file name", path.display())));
    }
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => {
            Err(usage(format!("cannot write {}: directory {} does not exist", path.display(), dir.display())))
        }
        _ => Ok(()),
    }
}

/// `dir/.name.tmp-PID`.
pub(crate) fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "out".into());
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Quotes a path for a command line when it needs it.
pub(crate) fn shell_quote(path: &Path) -> String {
    let s = path.display().to_string();
    if s.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+:@".contains(c)) {
        s
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

//! Finding the preload library. The `leakscope` binary embeds `libleakscope_preload.so` (built by crates/cli's
//! build.rs) and extracts it on first use to a per-user cache file named after its content hash. Order:
//! 1. `LEAKSCOPE_PRELOAD` (an explicit path), 2. the embedded copy, extracted to
//!    `$XDG_CACHE_HOME/leakscope/` (or `~/.cache/leakscope/`, or `/tmp/leakscope-UID/`).

use crate::output::Exit;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;

static EMBEDDED: &[u8] = include_bytes!(env!("LEAKSCOPE_PRELOAD_SO"));

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
}

fn cache_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        dirs.push(PathBuf::from(x).join("leakscope"));
    }
    if let Some(h) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        dirs.push(PathBuf::from(h).join(".cache/leakscope"));
    }
    dirs.push(PathBuf::from(format!("/tmp/leakscope-{}", super::euid())));
    dirs
}

/// The path of a usable preload library.
pub fn locate() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("LEAKSCOPE_PRELOAD").filter(|v| !v.is_empty()) {
        let p = PathBuf::from(p);
        if !p.is_file() {
            return Err(Exit {
                code: 2,
                message: format!("LEAKSCOPE_PRELOAD={} does not exist", p.display()),
                hint: Some("unset it to use the library embedded in leakscope".into()),
            }
            .into());
        }
        return Ok(std::fs::canonicalize(p)?);
    }
    if EMBEDDED.is_empty() {
        return Err(Exit {
            code: 2,
            message: "native profiling is only supported on Linux (glibc)".into(),
            hint: None,
        }
        .into());
    }
    let name = format!("libleakscope_preload-{:016x}.so", fnv(EMBEDDED));
    let mut last_err = None;
    for dir in cache_dirs() {
        let path = dir.join(&name);
        if std::fs::metadata(&path).map(|m| m.len() == EMBEDDED.len() as u64).unwrap_or(false) {
            return Ok(path);
        }
        let result = (|| -> std::io::Result<()> {
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir)?;
            let tmp = dir.join(format!("{name}.{}.tmp", std::process::id()));
            let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o755).open(&tmp)?;
            f.write_all(EMBEDDED)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)
        })();
        match result {
            Ok(()) => return Ok(path),
            Err(e) => last_err = Some(format!("{}: {e}", dir.display())),
        }
    }
    Err(Exit {
        code: 2,
        message: format!("cannot extract the preload library ({})", last_err.unwrap_or_default()),
        hint: Some("set XDG_CACHE_HOME to a writable directory, or LEAKSCOPE_PRELOAD to a built library".into()),
    }
    .into())
}

// Shared helpers for the native_* integration tests (included with `mod`… via #[path]).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn leakscope() -> Command {
    Command::new(env!("CARGO_BIN_EXE_leakscope"))
}

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/native")
}

/// A fresh scratch directory under the target dir.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("native-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Compiles a C fixture with frame pointers and debug info.
pub fn compile(source: &str, out: &Path, extra: &[&str]) {
    let status = Command::new("cc")
        .args(["-O1", "-g", "-fno-omit-frame-pointer", "-o"])
        .arg(out)
        .arg(fixtures().join(source))
        .args(extra)
        .status()
        .expect("run cc");
    assert!(status.success(), "cc {source} failed");
}

pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run leakscope");
    if !out.status.success() && out.status.code() != Some(1) {
        panic!(
            "command failed: {:?}\nstatus {}\nstdout:\n{}\nstderr:\n{}",
            cmd,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

pub fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

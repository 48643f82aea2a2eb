//! The npm package `pprof-format`, an independent pprof decoder, for the tests that check our pprof output
//! (included with `#[path = "support/pprof_format.rs"] mod pprof_format;`).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The npm package `pprof-format` (an independent pprof decoder) under the target dir, installed on first use;
/// `None` (the check is skipped, with a message) when npm cannot install it.
pub fn pprof_format() -> Option<PathBuf> {
    let prefix = Path::new(env!("CARGO_TARGET_TMPDIR")).join("npm-pprof-format");
    let module = prefix.join("node_modules/pprof-format");
    if module.join("package.json").exists() {
        return Some(module);
    }
    let child = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--silent", "--prefix"])
        .arg(&prefix)
        .arg("pprof-format@2")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    let Ok(mut child) = child else {
        eprintln!("SKIP pprof-format check: npm is not available");
        return None;
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            if status.success() && module.join("package.json").exists() {
                return Some(module);
            }
            eprintln!("SKIP pprof-format check: `npm install pprof-format` failed (registry unreachable?)");
            return None;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            eprintln!("SKIP pprof-format check: `npm install pprof-format` timed out");
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

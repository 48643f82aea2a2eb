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

/// Decodes a gzipped pprof file with `pprof-format`: sample types, default type, period, value totals, function
/// names and the largest number of lines in one location (inlined frames).
pub fn decode_pprof(module: &Path, file: &Path) -> serde_json::Value {
    const JS: &str = r#"
const { Profile } = require(process.argv[1]);
const p = Profile.decode(require('zlib').gunzipSync(require('fs').readFileSync(process.argv[2])));
const s = p.stringTable.strings;
const totals = p.sampleType.map(() => 0);
for (const x of p.sample) x.value.forEach((v, i) => { totals[i] += Number(v); });
const ids = new Set(p.location.map((l) => Number(l.id)));
const dangling = p.sample.some((x) => x.locationId.some((id) => !ids.has(Number(id))));
console.log(JSON.stringify({
  types: p.sampleType.map((t) => s[Number(t.type)]), defaultSampleType: s[Number(p.defaultSampleType)],
  period: Number(p.period), totals, samples: p.sample.length, dangling,
  functions: p.function.map((f) => s[Number(f.name)]),
  maxLines: Math.max(0, ...p.location.map((l) => l.line.length)),
  mappings: p.mapping.map((m) => s[Number(m.filename)]) }));
"#;
    let out = Command::new("node").arg("-e").arg(JS).arg(module).arg(file).output().expect("run node");
    assert!(
        out.status.success(),
        "pprof-format could not decode {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The pid in `leakscope native`'s first stderr line (`… profiling pid N …`).
pub fn profiled_pid(line: &str) -> u32 {
    line.split("profiling pid ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {line:?}"))
}

/// Whether `cmd --version` runs (the tests that need a tool skip without it).
pub fn tool_ok(cmd: &str) -> bool {
    Command::new(cmd).arg("--version").output().map(|o| o.status.success()).unwrap_or(false)
}

/// Asks the profiled process `pid` for a dump into `file` (`native dump --pid`) and returns the top of its
/// report (`native report --json --top 5`), checking that the dump is that process's.
pub fn dump_and_report(pid: u32, file: &Path) -> serde_json::Value {
    let out = run(leakscope().args(["native", "dump", "--pid", &pid.to_string(), "-o"]).arg(file));
    assert!(out.status.success());
    let report = json(&run(leakscope().args(["native", "report", "--json", "--top", "5"]).arg(file)));
    assert_eq!(report["pid"].as_u64(), Some(pid as u64));
    report
}

//! `leakscope profile FILE.heapprofile`: the sampling report of a saved profile, offline.

use super::args::ProfileArgs;
use super::{report, usage};
use leakscope_profile::{HeapProfile, ProfileAnalysis};
use std::process::ExitCode;

pub fn profile(args: &ProfileArgs, _quiet: bool) -> anyhow::Result<ExitCode> {
    let bytes = read_profile(&args.file)?;
    let profile = HeapProfile::parse(&bytes).map_err(|e| {
        anyhow::Error::new(crate::output::Exit {
            code: 2,
            message: format!("{}: {e}", args.file.display()),
            hint: Some(
                "profile reads .heapprofile files (V8 sampling heap profiles); heap snapshots go to `leakscope summary`"
                    .into(),
            ),
        })
    })?;
    profile.validate().map_err(|e| usage(format!("{}: {e}", args.file.display())))?;
    let dangling = profile.dangling_samples();
    if dangling > 0 {
        eprintln!(
            "warning: {}: {dangling} samples name no node of the call tree and are left out",
            args.file.display()
        );
    }
    let analysis = ProfileAnalysis::new(&profile, args.interval, args.include_collected);
    let mut written = report::Written::default();
    let title = args.file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    report::write_outputs(&profile, &analysis, &args.outputs, &title, &mut written)?;
    let mut out = String::new();
    report::print(&mut out, &profile, &analysis, Some(&args.file), args.outputs.top, args.outputs.json, &written)?;
    if !args.outputs.json {
        for (what, path) in
            [("pprof", &written.pprof), ("flame graph", &written.flamegraph), ("folded", &written.folded)]
        {
            if let Some(path) = path {
                outln!(out, "wrote {what}: {}", path.display());
            }
        }
    }
    super::emit(&out)?;
    Ok(ExitCode::SUCCESS)
}

/// Reads a file, gunzipping it when it starts with the gzip magic.
fn read_profile(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    let mut file = std::fs::File::open(path).map_err(|e| usage(format!("cannot read {}: {e}", path.display())))?;
    let mut head = [0u8; 64];
    let n = std::io::Read::read(&mut file, &mut head).unwrap_or(0);
    let text = String::from_utf8_lossy(&head[..n]).replace(char::is_whitespace, "");
    if text.starts_with("{\"snapshot\"") {
        return Err(anyhow::Error::new(crate::output::Exit {
            code: 2,
            message: format!("{} is a heap snapshot, not a sampling heap profile", path.display()),
            hint: Some(format!("try `leakscope summary {}`", super::shell_quote(path))),
        }));
    }
    drop(file);
    let raw = std::fs::read(path).map_err(|e| usage(format!("cannot read {}: {e}", path.display())))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(raw.as_slice()), &mut out)
            .map_err(|e| usage(format!("{}: not a valid gzip file: {e}", path.display())))?;
        return Ok(out);
    }
    Ok(raw)
}

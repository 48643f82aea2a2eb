//! Flags of the live-process commands (`ps`, `watch`, `snapshot`, `gc`). The `Command` enum in `cli.rs`
//! refers to these structs.

use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

/// Which process to work on: exactly one of `--pid`, `--inspect`, `--ws`, or `-- CMD ARGS…`.
#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// A running node process. If its inspector is closed, leakscope opens it with SIGUSR1 (loopback only)
    /// and closes it again when done.
    #[arg(long, value_name = "PID", conflicts_with_all = ["inspect", "ws"])]
    pub pid: Option<u32>,
    /// An inspector the app already opened (`node --inspect`), as HOST:PORT.
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "ws")]
    pub inspect: Option<String>,
    /// An inspector WebSocket URL (ws://HOST:PORT/UUID).
    #[arg(long, value_name = "URL")]
    pub ws: Option<String>,
    /// Allow --inspect/--ws to a non-loopback host. The inspector grants code execution in the target:
    /// prefer an SSH tunnel to 127.0.0.1.
    #[arg(long)]
    pub allow_remote: bool,
    /// With `-- CMD`: leave the launched app running when leakscope exits (its inspector is closed).
    #[arg(long)]
    pub keep_running: bool,
    /// How long to wait for the inspector to open (after SIGUSR1, or for a launched app).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub attach_timeout: Duration,
    /// Launch this command with the inspector enabled (NODE_OPTIONS=--inspect=127.0.0.1:0), e.g.
    /// `-- node app.js` or `-- npm start`. It is stopped when leakscope exits unless --keep-running.
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Probe every listening port of each node process for an inspector (sends one HTTP GET
    /// /json/version to each; by default only the port the process's flags name, 9229 by default).
    #[arg(long)]
    pub probe_all: bool,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Time between samples.
    #[arg(long, short = 'i', value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    pub interval: Duration,
    /// Stop after this long (default: until Ctrl-C or the target exits).
    #[arg(long, short = 'd', value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Append every sample (and the final verdict) as JSON lines to this file.
    #[arg(long, value_name = "FILE.jsonl")]
    pub log: Option<PathBuf>,
    /// Force a full GC (HeapProfiler.collectGarbage) every N samples, for an exact post-GC baseline.
    #[arg(long, value_name = "N")]
    pub gc: Option<u32>,
    /// Exit 1 when heapUsed after GC grows faster than this (e.g. 1MB/min, 100KiB/s; a bare size means
    /// per minute) with at least medium confidence.
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub fail_on_growth: Option<f64>,
    /// Print the final verdict as JSON on stdout (samples only go to --log).
    #[arg(long)]
    pub json: bool,
    /// Plain lines even on a terminal (no full-screen view).
    #[arg(long)]
    pub plain: bool,
    /// Serve the latest sample for Prometheus at http://ADDR/metrics (e.g. 127.0.0.1:9464; port 0 picks one).
    #[arg(long, value_name = "ADDR")]
    pub prometheus: Option<String>,
}

#[derive(Debug, Args)]
pub struct SnapshotArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Output file (default `<script>-<pid>-<YYYYmmdd-HHMMSS>.heapsnapshot`). With --count > 1, a
    /// directory, or a file name that gets -1, -2, … before its extension.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Force a full GC before each snapshot.
    #[arg(long)]
    pub gc: bool,
    /// Take the snapshot even when the pre-flight check says the target may run out of memory.
    #[arg(long)]
    pub force: bool,
    /// Take a series: one snapshot every DURATION (for `leakscope leaks`).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub every: Option<Duration>,
    /// Number of snapshots in the series (default 3 with --every, else 1).
    #[arg(long, value_name = "N")]
    pub count: Option<u32>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct GcArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `500ms`, `2s`, `1.5m`, `1h`; a bare number means seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number.parse().map_err(|_| format!("'{text}' is not a duration (try 500ms, 2s, 1m, 1h)"))?;
    let secs = match unit.trim() {
        "" | "s" | "sec" => value,
        "ms" => value / 1000.0,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        other => return Err(format!("unknown duration unit '{other}' in '{text}' (use ms, s, m, h)")),
    };
    if !secs.is_finite() || !(0.0..=1e9).contains(&secs) {
        return Err(format!("'{text}' is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A growth rate in bytes per second: `1MB/min`, `100KiB/s`, `2MiB/h`; a bare size means per minute.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let (size, per) = match text.split_once('/') {
        Some((s, p)) => (s, p.trim()),
        None => (text, "min"),
    };
    let bytes = crate::output::parse_size(size)? as f64;
    let secs = match per {
        "s" | "sec" => 1.0,
        "m" | "min" => 60.0,
        "h" | "hour" => 3600.0,
        other => return Err(format!("unknown rate unit '/{other}' in '{text}' (use /s, /min, /h)")),
    };
    Ok(bytes / secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_rates_parse() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5m"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("3 fortnights").is_err());
        assert_eq!(parse_rate("1MB/min"), Ok(1e6 / 60.0));
        assert_eq!(parse_rate("1KiB/s"), Ok(1024.0));
        assert_eq!(parse_rate("6MB"), Ok(1e5));
        assert!(parse_rate("1MB/fortnight").is_err());
    }
}

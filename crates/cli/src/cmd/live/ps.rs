//! `leakscope ps`: node processes on this machine and their inspector state.

use super::args::PsArgs;
use crate::output::{human_bytes, Table};
use leakscope_inspector::procfs::{node_processes, Probe};
use std::process::ExitCode;

fn uptime_text(secs: Option<u64>) -> String {
    match secs {
        None => "?".into(),
        Some(s) if s < 60 => format!("{s}s"),
        Some(s) if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        Some(s) if s < 86400 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        Some(s) => format!("{}d{:02}h", s / 86400, (s % 86400) / 3600),
    }
}

pub fn ps(args: &PsArgs, _quiet: bool) -> anyhow::Result<ExitCode> {
    let probe = if args.probe_all { Probe::All } else { Probe::Likely };
    let procs = node_processes(probe);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&procs)?);
        return Ok(ExitCode::SUCCESS);
    }
    if procs.is_empty() {
        println!("no node processes found");
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = Table::new(&[
        ("PID", true),
        ("USER", false),
        ("UPTIME", true),
        ("RSS", true),
        ("INSPECTOR", false),
        ("COMMAND", false),
    ]);
    for p in &procs {
        let inspector = match p.inspector_port {
            Some(port) => format!("open :{port}"),
            None => "closed".into(),
        };
        let mut command = p.command.clone();
        if command.chars().count() > 100 {
            command = command.chars().take(99).collect::<String>() + "…";
        }
        table.row(vec![
            p.pid.to_string(),
            p.user.clone(),
            uptime_text(p.uptime_secs),
            human_bytes(p.rss_bytes),
            inspector,
            command,
        ]);
    }
    print!("{}", table.render());
    println!("\nattach with: leakscope watch --pid PID   (opens the inspector with SIGUSR1 and closes it afterwards)");
    Ok(ExitCode::SUCCESS)
}

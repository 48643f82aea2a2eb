//! `demo`: `hunt` against a small leaky HTTP app bundled in the binary, so a newcomer sees a real leak found
//! and explained right after installing.

use super::args::DemoArgs;
use super::drive::{Drive, HttpDrive, Request};
use super::{run, usage, Plan};
use crate::cmd::live::args::TargetArgs;
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

/// The demo app (two leaks, two look-alikes that are fine); its ground truth is `demo/truth.json`.
pub(crate) const DEMO_APP: &str = include_str!("demo/app.js");

/// A free loopback port for the app (the tiny window before the app binds it again is harmless here).
fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

pub fn demo(args: &DemoArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    let version = Command::new(&args.node).arg("--version").stdin(Stdio::null()).output();
    match version {
        Ok(out) if out.status.success() => {}
        _ => {
            return Err(usage(
                format!("leakscope demo runs its app with Node.js, but `{} --version` did not run", args.node),
                Some("install Node.js (https://nodejs.org) or point --node at a node binary"),
            ))
        }
    }
    let app = app_dir()?.join("demo-app.js");
    std::fs::write(&app, DEMO_APP).map_err(|e| usage(format!("cannot write {}: {e}", app.display()), None))?;
    let port = free_port()?;
    if !quiet {
        eprintln!(
            "leakscope demo: a small order service with memory leaks ({}), hunted with\n  leakscope hunt --url \
             http://127.0.0.1:{port}/orders --requests 2000 -- node demo-app.js --port {port}\n",
            app.display()
        );
    }
    let plan = Plan {
        target: TargetArgs {
            pid: None,
            inspect: None,
            ws: None,
            allow_remote: false,
            keep_running: false,
            attach_timeout: Duration::from_secs(20),
            command: vec![args.node.clone(), app.display().to_string(), "--port".into(), port.to_string()],
        },
        drive: Drive::Http(HttpDrive {
            requests: vec![Request::parse(&format!("http://127.0.0.1:{port}/orders")).map_err(|e| usage(e, None))?],
            per_round: 2000,
            concurrency: 8,
            body: None,
            headers: Vec::new(),
            timeout: Duration::from_secs(30),
        }),
        startup_timeout: Duration::from_secs(30),
        rounds: 3,
        report: args.report.clone(),
        keep: args.keep.clone(),
        json: args.json,
        // The demo's heap is small: sample finer than the 512 KiB default so the allocation sites are clear.
        sample_interval: 64 * 1024,
        min_growth: 1024,
        force: false,
    };
    let report = run(&plan, quiet)?;
    if !args.json && !quiet {
        eprintln!(
            "\nOpen {} in a browser. To hunt your own app:\n  leakscope hunt --url http://127.0.0.1:PORT/some/path \
             -- node your-app.js",
            args.report.display()
        );
    }
    Ok(super::exit_code(&report))
}

/// The app is written to a fixed place that outlives the demo, so the report's source links open.
fn app_dir() -> anyhow::Result<std::path::PathBuf> {
    let path = std::env::temp_dir().join("leakscope-demo");
    std::fs::create_dir_all(&path).map_err(|e| usage(format!("cannot create {}: {e}", path.display()), None))?;
    Ok(path)
}

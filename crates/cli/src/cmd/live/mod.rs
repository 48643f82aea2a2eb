//! Live-process commands: `ps`, `watch`, `snapshot`, `gc`. They attach through `leakscope-inspector`;
//! this module turns its typed errors into exit codes (3 = target-process problem, 2 = usage) with hints.

pub mod args;
mod gc;
mod prometheus;
mod ps;
mod snapshot;
mod trend;
mod watch;

pub use gc::gc;
pub use ps::ps;
pub use snapshot::snapshot;
pub(crate) use snapshot::{preflight, take_one};
pub use watch::watch;

use crate::output::Exit;
use args::TargetArgs;
use leakscope_inspector::{AttachOptions, Error, Origin, Session, Target};

fn exit(code: u8, message: impl Into<String>, hint: Option<String>) -> anyhow::Error {
    anyhow::Error::new(Exit { code, message: message.into(), hint })
}

/// Exactly one target from the flags, else a usage error.
pub(crate) fn target_of(args: &TargetArgs) -> anyhow::Result<Target> {
    let mut targets = Vec::new();
    if let Some(pid) = args.pid {
        targets.push(Target::Pid(pid));
    }
    if let Some(hp) = &args.inspect {
        targets.push(Target::Inspect(hp.clone()));
    }
    if let Some(url) = &args.ws {
        targets.push(Target::Ws(url.clone()));
    }
    if let Some((program, rest)) = args.command.split_first() {
        targets.push(Target::Launch { program: program.clone(), args: rest.to_vec() });
    }
    if args.keep_running && args.command.is_empty() {
        return Err(exit(2, "--keep-running only applies to a launched command (-- CMD ARGS…)", None));
    }
    match targets.len() {
        1 => Ok(targets.remove(0)),
        0 => Err(exit(
            2,
            "no target: give --pid N, --inspect HOST:PORT, --ws URL, or -- CMD ARGS…",
            Some("`leakscope ps` lists the node processes on this machine".into()),
        )),
        _ => Err(exit(2, "give only one of --pid, --inspect, --ws and -- CMD", None)),
    }
}

/// Attaches, telling the user on stderr when leakscope opened an inspector.
pub(crate) fn attach(args: &TargetArgs, quiet: bool, stdout_to_stderr: bool) -> anyhow::Result<Session> {
    leakscope_inspector::util::install_interrupt_handler();
    let target = target_of(args)?;
    let opts = AttachOptions {
        allow_remote: args.allow_remote,
        keep_running: args.keep_running,
        attach_timeout: args.attach_timeout,
        child_stdout_to_stderr: stdout_to_stderr,
        ..AttachOptions::default()
    };
    let session = Session::attach(&target, &opts).map_err(to_exit)?;
    if session.origin() == Origin::OpenedBySignal && !quiet {
        eprintln!(
            "note: opened the inspector of pid {} at {} with SIGUSR1; leakscope closes it when done (while \
             open, any local process can run code in the target)",
            session.pid().unwrap_or(0),
            session.ws_url().trim_start_matches("ws://").split('/').next().unwrap_or("?"),
        );
    }
    Ok(session)
}

/// Closes the session; warns when an inspector we opened could not be verified closed.
pub(crate) fn detach(session: Session, quiet: bool) -> anyhow::Result<()> {
    let pid = session.pid();
    let report = session.close().map_err(to_exit)?;
    if report.inspector_closed == Some(false) {
        eprintln!(
            "warning: the inspector leakscope opened in pid {} still listens; close it with `kill -9` only if you \
             must, or run `leakscope gc --pid {0}` again to retry",
            pid.unwrap_or(0)
        );
    }
    if let (Some(kept), false) = (report.child_kept, quiet) {
        eprintln!("note: the launched app keeps running as pid {kept} (its inspector is closed)");
    }
    Ok(())
}

/// Maps an inspector error to an exit code and a hint.
pub(crate) fn to_exit(err: Error) -> anyhow::Error {
    let message = err.to_string();
    let (code, hint): (u8, Option<String>) = match &err {
        Error::NoSuchProcess { .. } => (3, Some("`leakscope ps` lists the node processes on this machine".into())),
        Error::NotNode { .. } => (3, Some("`leakscope ps` lists the node processes on this machine".into())),
        Error::PermissionDenied { .. } => (3, Some("run leakscope as the user that owns the process".into())),
        Error::Sigusr1Disabled { .. } | Error::Sigusr1NotHandled { .. } => (
            3,
            Some(
                "restart the app with --inspect=127.0.0.1:0 and use --inspect, or let leakscope launch it: \
                  leakscope watch -- node app.js"
                    .into(),
            ),
        ),
        Error::NoInspectorAppeared { .. } => (
            3,
            Some(
                "if the app listens for SIGUSR1 itself, start it with --inspect-port=0 --inspect=127.0.0.1:0, \
                  or launch it through leakscope (-- node app.js); in a container, run leakscope in the same \
                  network namespace (nsenter -t PID -n)"
                    .into(),
            ),
        ),
        Error::PortClash { port, .. } => (
            3,
            Some(format!(
                "start the target with --inspect-port=0 so SIGUSR1 picks a free port, or free port {port} \
                 (another inspector? `leakscope ps`)"
            )),
        ),
        Error::RemoteRefused { .. } => {
            (2, Some("tunnel instead: ssh -L 9229:127.0.0.1:9229 HOST, then --inspect 127.0.0.1:9229".into()))
        }
        Error::InvalidTarget(_) => (2, None),
        Error::NoInspector { .. } => (3, Some("is the inspector open? `leakscope ps` shows inspector ports".into())),
        Error::Write(_) => (2, None),
        Error::Interrupted => (130, None),
        _ => (3, None),
    };
    exit(code, message, hint)
}

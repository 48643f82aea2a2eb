//! One module per command. `run` dispatches and returns the process exit code:
//! 0 ok / nothing found, 1 findings, 2 usage or input error, 3 target process problem.

mod heap;
pub mod hunt;
mod inspect;
mod leaks;
pub mod live;
pub mod native;
pub mod sampling;

use crate::cli::{Cli, Command};
use std::process::ExitCode;

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let quiet = cli.quiet;
    match cli.command {
        Command::Summary(args) => heap::summary(&args, quiet),
        Command::Dominators(args) => heap::dominators(&args, quiet),
        Command::Stats(args) => heap::stats(&args, quiet),
        Command::Show(args) => inspect::show(&args, quiet),
        Command::Retainers(args) => inspect::retainers(&args, quiet),
        Command::Find(args) => inspect::find(&args, quiet),
        Command::Diff(args) => inspect::diff(&args, quiet),
        Command::DupStrings(args) => inspect::dup_strings(&args, quiet),
        Command::Leaks(args) => leaks::leaks(&args, quiet),
        Command::Ps(args) => live::ps(&args, quiet),
        Command::Watch(args) => live::watch(&args, quiet),
        Command::Snapshot(args) => live::snapshot(&args, quiet),
        Command::Gc(args) => live::gc(&args, quiet),
        Command::Native(args) => native::native(&args, quiet),
        Command::Profile(args) => sampling::profile(&args, quiet),
        Command::Sample(args) => sampling::sample(&args, quiet),
        Command::Timeline(args) => sampling::timeline(&args, quiet),
        Command::Hunt(args) => hunt::hunt(&args, quiet),
        Command::Report(args) => hunt::report(&args, quiet),
        Command::Demo(args) => hunt::demo(&args, quiet),
    }
}

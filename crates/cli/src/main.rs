//! `leakscope`: the command-line front end. Argument parsing lives in `cli.rs`, each command in `cmd/`;
//! the analysis itself is in the library crates.

mod cli;
mod cmd;
mod load;
mod output;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args = <cli::Cli as clap::Parser>::parse();
    match cmd::run(args) {
        Ok(code) => code,
        Err(err) => output::report_error(&err),
    }
}

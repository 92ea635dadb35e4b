//! The `portcullis` binary: the command line of SPEC §1 and the process lifecycle (signals,
//! graceful shutdown). Everything else lives in the library crates.

mod cli;
mod demo;
mod echo;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}

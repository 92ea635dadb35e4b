//! The `portcullis` binary: the command line of SPEC §1 and the process lifecycle (signals,
//! graceful shutdown). Everything else lives in the library crates.

mod allocator;
mod cli;
mod demo;
mod echo;
mod explain;
mod keys_cli;
mod openapi;
mod soap_cli;
mod test_cli;

use std::process::ExitCode;

/// mimalloc: the proxy allocates many small, short-lived objects per request (header maps,
/// futures, buffers), where glibc's allocator showed ~6% of CPU under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    allocator::tune_for_run();
    cli::main()
}

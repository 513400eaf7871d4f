//! The `runner` binary: everything lives in the library; see `runner::cli`.

use std::process::ExitCode;

fn main() -> ExitCode {
    runner::cli::main(std::env::args_os())
}

//! The command line: parse, set up logging and the runtime, dispatch, map results to exit codes.
//!
//! Only this module prints, and only this module uses `anyhow`. Exit codes follow ripgrep:
//! 0 success, 1 a build ran and did not succeed, 2 the runner itself failed, 130 interrupted.

mod approvals;
mod args;
mod build;
mod config;
mod control;
mod images;
mod launcher;
mod pull_request;
mod recorder;
mod report;
mod retries;
mod retry;
mod rollback;
mod run;
mod serve;
mod settings;
mod source_step;
mod stage_gate;
mod status;
mod telemetry;
mod validate;
mod watch;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;

pub use args::Cli;
use args::{Command, ImagesCommand, TransitionCommand};

/// What a command achieved, before it becomes an exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything succeeded.
    Success,
    /// The thing ran (or was checked) and failed.
    Failure,
    /// Interrupted by the user.
    Interrupted,
}

/// Entry point for `main`.
pub fn main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return ExitCode::from(if error.use_stderr() { 2 } else { 0 });
        }
    };
    telemetry::init(cli.global.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return fail(&anyhow::Error::new(error).context("start the async runtime")),
    };
    let result = runtime.block_on(dispatch(cli));
    match result {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Failure) => ExitCode::from(1),
        Ok(Outcome::Interrupted) => ExitCode::from(130),
        Err(error) => fail(&error),
    }
}

#[expect(clippy::print_stderr, reason = "the top level reports the error chain")]
fn fail(error: &anyhow::Error) -> ExitCode {
    eprintln!("error: {error:#}");
    ExitCode::from(2)
}

async fn dispatch(cli: Cli) -> anyhow::Result<Outcome> {
    let settings = settings::Settings::resolve(&cli.global)?;
    match cli.command {
        Command::Build(args) => build::run(&settings, *args).await,
        Command::Validate(args) => Ok(validate::run(&args)),
        Command::Images(ImagesCommand::Build(args)) => images::build(&settings, &args).await,
        Command::Run(args) => run::run(&settings, &args).await,
        Command::Retry(args) => retry::retry(&settings, &args).await,
        Command::Status(args) => status::status(&settings, &args).await,
        Command::List(args) => status::list(&settings, &args).await,
        Command::Logs(args) => status::logs(&settings, &args).await,
        Command::Approve(args) => control::approve(&settings, &args),
        Command::Cancel(args) => control::cancel(&settings, &args),
        Command::Graph(args) => control::graph(&args),
        Command::Watch(args) => watch::watch(&settings, &args).await,
        Command::Rollback(args) => rollback::rollback(&settings, &args).await,
        Command::Transition(TransitionCommand::Disable(args)) => {
            control::transition(&settings, &args, false)
        }
        Command::Transition(TransitionCommand::Enable(args)) => {
            control::transition(&settings, &args, true)
        }
        Command::Serve(args) => serve::serve(&settings, &args).await,
    }
}

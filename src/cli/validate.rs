//! `runner validate`: load and check a buildspec or a pipeline file without running it.

use super::Outcome;
use super::args::ValidateArgs;
use super::report;
use crate::{buildspec, dag, pipeline};

/// Runs `runner validate FILE`.
pub(crate) fn run(args: &ValidateArgs) -> Outcome {
    let is_pipeline = fs_err::read_to_string(&args.file)
        .is_ok_and(|text| text.lines().any(|line| line.starts_with("stages:")));
    if is_pipeline {
        validate_pipeline(args)
    } else {
        validate_buildspec(args)
    }
}

#[expect(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "the verdict is this command's output"
)]
fn validate_pipeline(args: &ValidateArgs) -> Outcome {
    let pipeline = match pipeline::load(&args.file) {
        Ok(pipeline) => pipeline,
        Err(error) => {
            eprintln!("error: {error}");
            return Outcome::Failure;
        }
    };
    if let Err(error) = dag::Plan::new(&pipeline) {
        eprintln!("error: {}: {error}", args.file.display());
        return Outcome::Failure;
    }
    let actions: usize = pipeline.stages.iter().map(|s| s.actions.len()).sum();
    println!(
        "{}: valid pipeline {} ({} stages, {actions} actions)",
        args.file.display(),
        pipeline.name,
        pipeline.stages.len()
    );
    Outcome::Success
}

#[expect(clippy::print_stdout, reason = "the verdict is this command's output")]
fn validate_buildspec(args: &ValidateArgs) -> Outcome {
    match buildspec::load_file(&args.file) {
        Ok(loaded) => {
            let mut warnings = loaded.warnings;
            warnings.extend(buildspec::lint::lint(&loaded.buildspec));
            report::warnings(&loaded.buildspec.origin, &warnings);
            println!(
                "{}: valid buildspec ({} warning(s))",
                args.file.display(),
                warnings.len()
            );
            Outcome::Success
        }
        Err(error) => {
            report::buildspec_error(&error);
            Outcome::Failure
        }
    }
}

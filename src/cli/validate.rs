//! `runner validate`: load and lint a buildspec without running it.

use super::Outcome;
use super::args::ValidateArgs;
use super::report;
use crate::buildspec;

/// Runs `runner validate FILE`.
#[expect(clippy::print_stdout, reason = "the verdict is this command's output")]
pub(crate) fn run(args: &ValidateArgs) -> Outcome {
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

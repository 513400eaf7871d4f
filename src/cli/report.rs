//! Console output for builds: warnings, errors, the phase table, the summary.

use std::io::Write as _;

use chrono::Utc;

use super::Outcome;
use crate::build::transcript::agent_line;
use crate::build::{BuildReport, Status};
use crate::buildspec::{BuildspecError, Warning};

/// Prints warnings as `file:line:column: warning[rule]: message` on stderr.
#[expect(clippy::print_stderr, reason = "warnings are progress output")]
pub(crate) fn warnings(origin: &str, warnings: &[Warning]) {
    for warning in warnings {
        eprintln!(
            "{origin}:{}: warning[{}]: {}",
            warning.location, warning.rule, warning.message
        );
    }
}

/// Prints a buildspec error on stderr.
#[expect(clippy::print_stderr, reason = "errors are progress output")]
pub(crate) fn buildspec_error(error: &BuildspecError) {
    eprintln!("error: {error}");
}

/// A buildspec that cannot be loaded fails the build in `DOWNLOAD_SOURCE` with
/// `YAML_FILE_ERROR`, before any phase or container (B3, E10).
#[expect(
    clippy::print_stdout,
    reason = "the build log is this command's output"
)]
pub(crate) fn buildspec_failure(error: &BuildspecError) -> Outcome {
    buildspec_error(error);
    let now = Utc::now();
    let first = error.to_string();
    let first = first.lines().next().unwrap_or_default();
    println!(
        "{}",
        agent_line(now, "Phase complete: DOWNLOAD_SOURCE State: FAILED")
    );
    println!(
        "{}",
        agent_line(
            now,
            &format!(
                "Phase context status code: {} Message: {first}",
                crate::buildspec::STATUS_CODE
            )
        )
    );
    println!("\n{:<18} {:<10} {:>10}", "PHASE", "STATUS", "DURATION");
    println!("{:<18} {:<10} {:>10}", "DOWNLOAD_SOURCE", "FAILED", "");
    println!("Build (the buildspec could not be loaded; no phase ran) FAILED");
    Outcome::Failure
}

/// Prints the phase table, exported variables, artifacts and the verdict on stdout.
pub(crate) fn build_summary(report: &BuildReport) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out);
    let _ = writeln!(out, "{:<18} {:<10} {:>10}", "PHASE", "STATUS", "DURATION");
    for phase in &report.phases {
        let duration = phase.ended.map_or_else(String::new, |ended| {
            let millis = (ended - phase.started).num_milliseconds().max(0);
            #[expect(clippy::cast_precision_loss, reason = "display only")]
            let seconds = millis as f64 / 1000.0;
            format!("{seconds:.3}s")
        });
        let _ = writeln!(
            out,
            "{:<18} {:<10} {:>10}",
            phase.name,
            phase.status.as_str(),
            duration
        );
    }
    for (name, value) in &report.exported {
        let _ = writeln!(out, "exported {name}={value}");
    }
    for artifact in &report.artifacts {
        let _ = writeln!(
            out,
            "artifact {} ({} file(s)): {}",
            artifact.identifier.as_deref().unwrap_or("primary"),
            artifact.files.len(),
            artifact.zip.display()
        );
    }
    let verdict = match report.status {
        Status::Succeeded => "SUCCEEDED",
        other => other.as_str(),
    };
    let _ = writeln!(
        out,
        "Build {} (#{}) {verdict}",
        report.build_id, report.build_number
    );
}

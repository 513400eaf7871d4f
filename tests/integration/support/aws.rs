//! Tests against moto: the AWS CLI from the venv `.ci/moto.sh` sets up, the skip when moto is
//! not configured, and names that keep one test run apart from the others.

use std::process::Command;

/// The AWS CLI from the moto venv; returns its stdout, trimmed. A failing call panics with
/// its stderr.
#[track_caller]
pub fn aws(args: &[&str]) -> String {
    let venv =
        std::env::var("RUNNER_CI_VENV").unwrap_or_else(|_| "/var/cache/runner-ci/venv".into());
    let output = Command::new(format!("{venv}/bin/aws"))
        .args(args)
        .output()
        .expect("run the AWS CLI from the moto venv");
    assert!(
        output.status.success(),
        "aws {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// `aws ... --output json`, parsed.
#[track_caller]
pub fn aws_json(args: &[&str]) -> serde_json::Value {
    let mut args = args.to_vec();
    args.extend(["--output", "json"]);
    serde_json::from_str(&aws(&args)).expect("the AWS CLI prints JSON")
}

/// Whether moto is configured; prints why the test is skipped when it is not.
#[expect(clippy::print_stderr, reason = "a skipped test says why")]
pub fn moto() -> bool {
    let configured = std::env::var("AWS_ENDPOINT_URL").is_ok();
    if !configured {
        eprintln!(
            "skipped: AWS_ENDPOINT_URL is not set (run `eval \"$(bash .ci/moto.sh)\"` for moto)"
        );
    }
    configured
}

/// A suffix that keeps names of this test apart from earlier runs against the same moto.
pub fn unique() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    format!("{:x}", nanos % (1 << 40))
}

//! The command line without Docker: help, validate, argument errors.

use std::process::Command;

use crate::support::runner_bin;

fn validate(text: &str) -> (i32, String, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("buildspec.yml");
    std::fs::write(&path, text).expect("write");
    let output = Command::new(runner_bin())
        .arg("validate")
        .arg(&path)
        .output()
        .expect("run");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn validate_accepts_a_good_buildspec() {
    let (code, stdout, _) =
        validate("version: 0.2\nphases:\n  build:\n    commands:\n      - echo hi\n");
    assert_eq!(code, 0);
    assert!(stdout.contains("valid buildspec"), "{stdout}");
}

#[test]
fn validate_names_file_line_and_column() {
    let (code, _, stderr) =
        validate("version: 0.2\nphases:\n  build:\n    commands:\n      - echo Step 1: compile\n");
    assert_eq!(code, 1);
    assert!(stderr.contains("buildspec.yml:5:"), "{stderr}");
    assert!(
        stderr.contains("Expected Commands[0] to be of string type"),
        "{stderr}"
    );
}

#[test]
fn validate_warns_on_unknown_keys_with_location() {
    let (code, _, stderr) =
        validate("version: 0.2\nfoo: bar\nphases:\n  build:\n    commands:\n      - echo hi\n");
    assert_eq!(code, 0);
    assert!(
        stderr.contains("buildspec.yml:2:1: warning[B7]"),
        "{stderr}"
    );
}

#[test]
fn validate_reports_missing_file() {
    let output = Command::new(runner_bin())
        .args(["validate", "/nonexistent/buildspec.yml"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("/nonexistent/buildspec.yml"));
}

#[test]
fn bad_network_is_a_usage_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("buildspec.yml"),
        "version: 0.2\nphases:\n  build:\n    commands: [true]\n",
    )
    .expect("write");
    let output = Command::new(runner_bin())
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["build", "--network", "sideways", "--source"])
        .arg(dir.path())
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("--network must be bridge, host or none")
    );
}

//! P39: a stage with `on_failure: {result: retry}` is retried by the engine itself, once by
//! default, as a new stage attempt of the same execution.

use crate::support::pipeline::{Pipeline, SRC};

/// A build that fails until the project's cache holds a marker (the first attempt saves it).
const FLAKY: &str = "version: 0.2\ncache:\n  paths: ['/root/.flaky/**/*']\nphases:\n  build:\n    commands:\n      - '[ -e /root/.flaky/ok ] || { mkdir -p /root/.flaky && touch /root/.flaky/ok && exit 1; }'\n      - echo recovered\n";

fn pipeline(on_failure: &str) -> Pipeline {
    Pipeline::new(&format!(
        "name: autoretry\nsource:\n  repo: {SRC}\n  branch: main\ndefaults:\n  image: runner/test\nstages:\n  - name: source\n    actions:\n      - name: checkout\n        type: source\n        outputs: [Src]\n  - name: build\n{on_failure}    actions:\n      - name: flaky\n        type: build\n        inputs: [Src]\n        buildspec: flaky.yml\n      - name: steady\n        type: build\n        inputs: [Src]\n        buildspec: steady.yml\n"
    ))
    .file("flaky.yml", FLAKY)
    .file("steady.yml", "version: 0.2\nphases:\n  build:\n    commands:\n      - echo steady\n")
}

#[test]
fn p39_a_failed_stage_is_retried_automatically() {
    let pipeline =
        pipeline("    on_failure:\n      result: retry\n      retry_mode: failed_actions\n");
    let ran = pipeline.run_pipeline(&[]);
    ran.code(0)
        .stdout_has("retrying it automatically")
        .stdout_has("] recovered");
    let status = pipeline.status(None);
    assert_eq!(status.status, "Succeeded");
    let flaky: Vec<(u32, &str)> = status
        .attempts
        .iter()
        .filter(|a| a.action == "flaky")
        .map(|a| (a.attempt, a.status.as_str()))
        .collect();
    assert_eq!(flaky, [(1, "Failed"), (2, "Succeeded")]);
    let steady = status
        .attempts
        .iter()
        .filter(|a| a.action == "steady")
        .count();
    assert_eq!(steady, 1, "FAILED_ACTIONS re-runs only the failed action");
}

#[test]
fn p39_without_on_failure_the_stage_just_fails() {
    let pipeline = pipeline("");
    pipeline
        .run_pipeline(&[])
        .code(1)
        .stdout_lacks("retrying it automatically");
}

#[test]
fn p39_on_failure_result_is_retry_or_rollback() {
    let pipeline = pipeline("    on_failure:\n      result: skip\n");
    let refused = pipeline.run(["validate", "{pipeline}"]);
    refused
        .code(1)
        .stderr_has("stages[1].on_failure.result")
        .stderr_has("unknown on_failure result `skip`, expected one of: retry, rollback");
}

//! `runner rollback` (P40, P41): a new execution that re-runs one stage with the revision and
//! artifacts of the last execution that succeeded in it.

use crate::support::pipeline::{Pipeline, SRC};

fn pipeline() -> Pipeline {
    Pipeline::new(&format!(
        "name: rolled\nsource:\n  repo: {SRC}\n  branch: main\ndefaults:\n  image: runner/test\nstages:\n  - name: source\n    actions:\n      - name: checkout\n        type: source\n        outputs: [Src]\n  - name: deploy\n    actions:\n      - name: release\n        type: build\n        inputs: [Src]\n        buildspec_inline: |\n          version: 0.2\n          phases:\n            build:\n              commands:\n                - echo \"deploying $(cat msg.txt)\"\n                - '! grep -q broken msg.txt'\n"
    ))
    .file("msg.txt", "v1\n")
}

#[test]
fn p40_rollback_reruns_the_stage_with_the_last_good_execution() {
    let pipeline = pipeline();
    let good = pipeline.run_pipeline(&[]);
    good.code(0);
    let good_id = good.execution_id();
    let good_revision = pipeline.status(Some(&good_id)).revision;
    std::fs::write(pipeline.source().join("msg.txt"), "v2 broken\n").expect("write");
    let bad = pipeline.run_pipeline(&[]);
    bad.code(1).stdout_has("deploying v2 broken");

    let rollback = pipeline.run(["rollback", "--pipeline", "{pipeline}", "--stage", "deploy"]);
    rollback
        .code(0)
        .stdout_has("deploying v1")
        .stdout_lacks("deploying v2");
    rollback.stdout_has(&format!("with the artifacts of execution {good_id}"));
    let id = rollback.execution_id();
    assert_ne!(id, good_id, "a rollback is a new execution");
    let status = pipeline.status(Some(&id));
    assert_eq!(status.status, "Succeeded");
    assert_eq!(status.revision, good_revision, "the target's revision");

    // A rollback execution is never a rollback target (P40).
    let refused = pipeline.run([
        "rollback",
        "--pipeline",
        "{pipeline}",
        "--stage",
        "deploy",
        "--target",
        &id,
    ]);
    refused.code(2).stderr_has("is itself a rollback");
}

#[test]
fn p40_rollback_refuses_the_source_stage_and_a_stage_that_never_succeeded() {
    let pipeline = pipeline();
    pipeline
        .run(["rollback", "--pipeline", "{pipeline}", "--stage", "source"])
        .code(2)
        .stderr_has("source stage");
    std::fs::write(pipeline.source().join("msg.txt"), "broken\n").expect("write");
    pipeline.run_pipeline(&[]).code(1);
    pipeline
        .run(["rollback", "--pipeline", "{pipeline}", "--stage", "deploy"])
        .code(2)
        .stderr_has("nothing to roll back to");
}

//! Stage conditions on real containers: automatic rollback after a failure (P41) and
//! `variable_check` rules before entry and after success (P42).

use crate::support::pipeline::{Pipeline, SRC};

/// `source` → `deploy` (fails when msg.txt says broken) → `notify`. `stage_keys` are spliced
/// into the deploy stage.
fn pipeline(stage_keys: &str) -> Pipeline {
    Pipeline::new(&format!(
        "name: guarded\nsource:\n  repo: {SRC}\n  branch: main\nvariables:\n  - {{name: TARGET, default: prod}}\ndefaults:\n  image: runner/test\nstages:\n  - name: source\n    actions:\n      - name: checkout\n        type: source\n        outputs: [Src]\n        namespace: SourceVariables\n  - name: deploy\n{stage_keys}    actions:\n      - name: release\n        type: build\n        inputs: [Src]\n        namespace: Release\n        buildspec_inline: |\n          version: 0.2\n          env:\n            exported-variables: [VERSION]\n          phases:\n            build:\n              commands:\n                - echo \"deploying $(cat msg.txt)\"\n                - VERSION=$(head -c 2 msg.txt)\n                - '! grep -q broken msg.txt'\n  - name: notify\n    actions:\n      - name: tell\n        type: build\n        inputs: [Src]\n        buildspec_inline: |\n          version: 0.2\n          phases:\n            build:\n              commands:\n                - echo notified\n"
    ))
    .file("msg.txt", "v1\n")
}

#[test]
fn p41_a_failed_stage_rolls_back_to_the_last_execution_that_succeeded_in_it() {
    let pipeline = pipeline("    on_failure:\n      result: rollback\n");
    let good = pipeline.run_pipeline(&[]);
    good.code(0);
    let good_id = good.execution_id();
    std::fs::write(pipeline.source().join("msg.txt"), "v2 broken\n").expect("write");

    let bad = pipeline.run_pipeline(&[]);
    bad.code(1)
        .stdout_has("deploying v2 broken")
        .stdout_has("stage deploy condition on_failure: rollback (the stage failed)")
        .stdout_has("stage deploy: rolling back automatically (P41)")
        .stdout_has(&format!("with the artifacts of execution {good_id}"))
        .stdout_has("deploying v1");
    let bad_id = bad.execution_id();
    assert_eq!(pipeline.status(Some(&bad_id)).status, "Failed");
    let rollback = pipeline.status(None);
    assert_ne!(rollback.id, bad_id, "the rollback is a new execution");
    assert_eq!(rollback.status, "Succeeded");
    assert!(rollback.ran("deploy", "release"));
    assert!(
        !rollback.ran("notify", "tell"),
        "a rollback re-runs its stage only"
    );
    let listed = pipeline.run(["list", "--pipeline", "guarded"]);
    listed.code(0).stdout_has("AutomatedRollback");
}

#[test]
fn p41_no_rollback_when_the_stage_never_succeeded() {
    let pipeline = pipeline("    on_failure:\n      result: rollback\n")
        .file("msg.txt", "broken from the start\n");
    let bad = pipeline.run_pipeline(&[]);
    bad.code(1)
        .stdout_has("stage deploy has never succeeded: no rollback (P41)")
        .stdout_lacks("rolling back automatically");
    assert_eq!(pipeline.status(None).id, bad.execution_id());
}

#[test]
fn p42_before_entry_skip_passes_over_the_stage_and_the_execution_goes_on() {
    let keys = "    before_entry:\n      conditions:\n        - result: skip\n          rules:\n            - name: only-prod\n              type: variable_check\n              variable: '#{variables.TARGET}'\n              operator: eq\n              value: prod\n            - name: has-id\n              type: variable_check\n              variable: '#{codepipeline.PipelineExecutionId}'\n              operator: matches\n              value: '^[0-9a-f-]{36}$'\n";
    let pipeline = pipeline(keys);
    let skipped = pipeline.run_pipeline(&["--variable", "TARGET=staging"]);
    skipped
        .code(0)
        .stdout_has("stage deploy condition before_entry: skip (rule only-prod: \"staging\" eq \"prod\" is false)")
        .stdout_has("stage deploy Skipped")
        .stdout_lacks("deploying")
        .stdout_has("notified");
    let status = pipeline.status(Some(&skipped.execution_id()));
    assert_eq!(status.status, "Succeeded");
    assert_eq!(status.stage("deploy").status, "Skipped");
    assert!(!status.ran("deploy", "release"));

    let entered = pipeline.run_pipeline(&[]);
    entered.code(0).stdout_has("deploying v1");
    assert_eq!(
        pipeline
            .status(Some(&entered.execution_id()))
            .stage("deploy")
            .status,
        "Succeeded"
    );
}

#[test]
fn p42_on_success_fail_reads_the_stage_own_variables() {
    let keys = "    on_success:\n      conditions:\n        - result: fail\n          rules:\n            - name: released-v2\n              type: variable_check\n              variable: '#{Release.VERSION}'\n              operator: eq\n              value: v2\n";
    let pipeline = pipeline(keys);
    let failed = pipeline.run_pipeline(&[]);
    failed
        .code(1)
        .stdout_has("deploying v1")
        .stdout_has(
            "stage deploy condition on_success: fail (rule released-v2: \"v1\" eq \"v2\" is false)",
        )
        .stdout_lacks("notified");
    let status = pipeline.status(Some(&failed.execution_id()));
    assert_eq!(status.stage("deploy").status, "Failed");
    assert_eq!(status.action("deploy", "release").status, "Succeeded");

    std::fs::write(pipeline.source().join("msg.txt"), "v2\n").expect("write");
    pipeline.run_pipeline(&[]).code(0).stdout_has("notified");
}

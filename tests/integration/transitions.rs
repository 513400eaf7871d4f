//! P18: an execution that reaches a disabled transition waits in front of the stage, and goes on
//! when the transition is enabled again.

use std::time::Duration;

use crate::support::pipeline::{Pipeline, SRC};

#[test]
fn p18_execution_waits_at_a_disabled_transition_until_it_is_enabled() {
    let pipeline = Pipeline::new(&format!(
        "name: gated\nsource:\n  repo: {SRC}\n  branch: main\ndefaults:\n  image: runner/test\nstages:\n  - name: source\n    actions:\n      - name: checkout\n        type: source\n        outputs: [Src]\n  - name: build\n    actions:\n      - name: first\n        type: build\n        inputs: [Src]\n        buildspec_inline: \"version: 0.2\\nphases:\\n  build:\\n    commands:\\n      - echo built\\n\"\n  - name: deploy\n    actions:\n      - name: ship\n        type: build\n        inputs: [Src]\n        buildspec_inline: \"version: 0.2\\nphases:\\n  build:\\n    commands:\\n      - echo shipped\\n\"\n"
    ))
    .file("a.txt", "a\n");
    pipeline
        .run([
            "transition",
            "disable",
            "--pipeline",
            "gated",
            "--stage",
            "deploy",
            "--reason",
            "freeze",
        ])
        .code(0);
    let mut running = pipeline.spawn(["run", "--pipeline", "{pipeline}"]);
    let id = running.execution_id();
    running.wait_for("[build.first] built", Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        running.is_running(),
        "the execution must wait at the disabled transition"
    );
    assert!(
        !running.stdout().contains("shipped"),
        "{}",
        running.stdout()
    );
    assert_eq!(pipeline.status(Some(&id)).status, "InProgress");
    pipeline
        .run([
            "transition",
            "enable",
            "--pipeline",
            "gated",
            "--stage",
            "deploy",
        ])
        .code(0);
    let ran = running.finish(Duration::from_secs(60));
    ran.code(0).stdout_has("[deploy.ship] shipped");
    assert_eq!(pipeline.status(Some(&id)).status, "Succeeded");
}

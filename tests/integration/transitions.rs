//! P18: an execution that reaches a disabled transition waits in front of the stage, and goes on
//! when the transition is enabled again; in SUPERSEDED mode only the newest waiting execution
//! does (P20 R3), and nothing resumes after more than 30 days disabled.

use std::time::Duration;

use crate::support::pipeline::{Pipeline, Running, SRC};

/// `source` → `build` (echo built) → `deploy` (echo shipped), in `mode`.
fn gated(mode: &str) -> Pipeline {
    Pipeline::new(&format!(
        "name: gated\nexecution_mode: {mode}\nsource:\n  repo: {SRC}\n  branch: main\ndefaults:\n  image: runner/test\nstages:\n  - name: source\n    actions:\n      - name: checkout\n        type: source\n        outputs: [Src]\n  - name: build\n    actions:\n      - name: first\n        type: build\n        inputs: [Src]\n        buildspec_inline: \"version: 0.2\\nphases:\\n  build:\\n    commands:\\n      - echo built\\n\"\n  - name: deploy\n    actions:\n      - name: ship\n        type: build\n        inputs: [Src]\n        buildspec_inline: \"version: 0.2\\nphases:\\n  build:\\n    commands:\\n      - echo shipped\\n\"\n"
    ))
    .file("a.txt", "a\n")
}

fn transition(pipeline: &Pipeline, verb: &str) {
    pipeline
        .run([
            "transition",
            verb,
            "--pipeline",
            "gated",
            "--stage",
            "deploy",
        ])
        .code(0);
}

/// Starts an execution and waits until it stands in front of the disabled transition.
fn start_waiting(pipeline: &Pipeline) -> (Running, String) {
    let mut running = pipeline.spawn(["run", "--pipeline", "{pipeline}"]);
    let id = running.execution_id();
    running.wait_for("[build.first] built", Duration::from_secs(60));
    // The engine registers in front of the transition right after the build stage ends.
    let waiting = pipeline.data().join("transitions/gated/deploy.waiting");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !std::fs::read_dir(&waiting).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name().to_string_lossy().ends_with(&id))
    }) {
        assert!(std::time::Instant::now() < deadline, "{id} never waited");
        std::thread::sleep(Duration::from_millis(100));
    }
    (running, id)
}

#[test]
fn p20_in_superseded_mode_a_newer_waiting_execution_supersedes_the_older_one() {
    let pipeline = gated("superseded");
    transition(&pipeline, "disable");
    let (older, older_id) = start_waiting(&pipeline);
    let (newer, newer_id) = start_waiting(&pipeline);
    let superseded = older.finish(Duration::from_secs(30));
    superseded
        .code(1)
        .stdout_has("a newer execution is waiting in front of stage deploy (P20)")
        .stdout_lacks("shipped");
    assert_eq!(pipeline.status(Some(&older_id)).status, "Superseded");
    transition(&pipeline, "enable");
    newer
        .finish(Duration::from_secs(60))
        .code(0)
        .stdout_has("[deploy.ship] shipped");
    assert_eq!(pipeline.status(Some(&newer_id)).status, "Succeeded");
}

#[test]
fn p21_in_queued_mode_every_waiting_execution_goes_on() {
    let pipeline = gated("queued");
    transition(&pipeline, "disable");
    let (first, first_id) = start_waiting(&pipeline);
    let (second, second_id) = start_waiting(&pipeline);
    transition(&pipeline, "enable");
    for (running, id) in [(first, first_id), (second, second_id)] {
        running
            .finish(Duration::from_secs(60))
            .code(0)
            .stdout_has("[deploy.ship] shipped");
        assert_eq!(pipeline.status(Some(&id)).status, "Succeeded");
    }
}

#[test]
fn p18_nothing_resumes_after_more_than_30_days_disabled() {
    let pipeline = gated("superseded");
    transition(&pipeline, "disable");
    let marker = pipeline.data().join("transitions/gated/deploy.disabled");
    let aged = std::process::Command::new("touch")
        .args(["-d", "31 days ago"])
        .arg(&marker)
        .status()
        .expect("run touch");
    assert!(aged.success());
    let (waiting, id) = start_waiting(&pipeline);
    transition(&pipeline, "enable");
    waiting
        .finish(Duration::from_secs(30))
        .code(1)
        .stdout_has("was disabled for more than 30 days; nothing resumes (P18)")
        .stdout_lacks("shipped");
    assert_eq!(pipeline.status(Some(&id)).status, "Superseded");
}

#[test]
fn p18_execution_waits_at_a_disabled_transition_until_it_is_enabled() {
    let pipeline = gated("superseded");
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

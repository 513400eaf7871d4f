//! `runner logs --follow`: prints lines as the running build writes them and ends with it.

use std::time::Duration;

use crate::support::pipeline::{Pipeline, SRC};

#[test]
fn logs_follow_prints_new_lines_until_the_execution_ends() {
    let pipeline = Pipeline::new(&format!(
        "name: followed\nsource:\n  repo: {SRC}\n  branch: main\ndefaults:\n  image: runner/test\nstages:\n  - name: source\n    actions:\n      - name: checkout\n        type: source\n        outputs: [Src]\n  - name: build\n    actions:\n      - name: slow\n        type: build\n        inputs: [Src]\n        buildspec_inline: |\n          version: 0.2\n          phases:\n            build:\n              commands:\n                - echo first-line\n                - sleep 3\n                - echo last-line\n"
    ))
    .file("keep.txt", "x\n");
    let mut run = pipeline.spawn(["run", "--pipeline", "{pipeline}"]);
    let id = run.execution_id();
    run.wait_for("first-line", Duration::from_secs(60));
    let follow = pipeline.spawn(["logs", &id, "--follow", "--action", "slow"]);
    let ran = run.finish(Duration::from_secs(60));
    ran.code(0);
    let followed = follow.finish(Duration::from_secs(30));
    followed
        .code(0)
        .stdout_has("[build.slow] first-line")
        .stdout_has("[build.slow] last-line");
    assert_eq!(
        followed.stdout.matches("first-line").count(),
        // The `Running command echo first-line` line and the echoed line.
        2,
        "each line is printed once:\n{}",
        followed.stdout
    );
}

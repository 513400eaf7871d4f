//! Section C rules of the spec, one or more tests per rule, named `p<N>_<what>`: how an
//! execution ends (P11, P12, P45), inputs and outputs of a build under a pipeline (P16),
//! sources run again and pinned (P23, P35), source output variables (P34) and the CodeBuild
//! environment of a pipeline build (P44). Every fact is read from `runner status --json` and
//! `runner logs`.

use std::time::Duration;

use crate::support::pipeline::{Pipeline, SRC, git, rows};

/// `name: NAME`, a source at the temp tree on `branch`, `runner/test`, and `stages` after the
/// source stage (which outputs `Src`, namespace `SourceVars`).
fn text(name: &str, branch: &str, stages: &str) -> String {
    format!(
        "name: {name}
source:
  repo: {SRC}
  branch: {branch}
defaults:
  image: runner/test
  timeout: 5m
stages:
  - name: source
    actions:
      - name: checkout
        type: source
        outputs: [Src]
        namespace: SourceVars
{stages}"
    )
}

/// A stage `stage` with one build action `action` reading `Src` and running `commands`.
fn build_stage(stage: &str, action: &str, commands: &[&str]) -> String {
    format!(
        "  - name: {stage}
    actions:
      - name: {action}
        type: build
        inputs: [Src]
{}",
        inline(commands)
    )
}

/// An inline buildspec with one `build` phase, indented for an action at 8 spaces.
fn inline(commands: &[&str]) -> String {
    let mut text = String::from(
        "        buildspec_inline: |\n          version: 0.2\n          phases:\n            build:\n              commands:\n",
    );
    for command in commands {
        text.push_str("                - ");
        text.push_str(command);
        text.push('\n');
    }
    text
}

/// Makes the source tree a git repository on `branch` with one commit; returns its sha.
#[track_caller]
fn init_git(pipeline: &Pipeline, branch: &str) -> String {
    let repo = pipeline.source();
    git(&repo, &["init", "-q", "-b", branch]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "first"]);
    git(&repo, &["rev-parse", "HEAD"])
}

/// Writes `path` in the source repository and commits it; returns the new sha.
#[track_caller]
fn commit(pipeline: &Pipeline, path: &str, content: &str) -> String {
    let repo = pipeline.source();
    std::fs::write(repo.join(path), content).expect("write");
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "change"]);
    git(&repo, &["rev-parse", "HEAD"])
}

/// `(stage, status)` of every stage attempt.
fn stage_rows(status: &crate::support::pipeline::Execution) -> Vec<(String, String)> {
    status
        .stages
        .iter()
        .map(|s| (s.stage.clone(), s.status.clone()))
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

/// Asserts that `line` is one of the lines of `stage.action`'s log.
#[track_caller]
fn log_has(pipeline: &Pipeline, id: &str, action: &str, line: &str) {
    let log = pipeline.logs(id, action);
    assert!(log.iter().any(|l| l == line), "{line:?} not in {log:#?}");
}

#[test]
fn p11_last_stage_succeeding_makes_the_execution_succeeded() {
    let stages = format!(
        "{}{}",
        build_stage("build", "compile", &["echo compiled"]),
        build_stage("deploy", "ship", &["echo shipped"]),
    );
    let pipeline = Pipeline::new(&text("p11", "main", &stages)).file("a.txt", "a\n");
    let ran = pipeline.run_pipeline(&[]);
    ran.code(0);
    let id = ran.execution_id();
    ran.stdout_has(&format!("==> execution {id} Succeeded"));
    let status = pipeline.status(Some(&id));
    assert_eq!(status.status, "Succeeded");
    assert_eq!(
        stage_rows(&status),
        pairs(&[
            ("source", "Succeeded"),
            ("build", "Succeeded"),
            ("deploy", "Succeeded"),
        ])
    );
    assert_eq!(
        status.summary(),
        rows(&[
            ("source.checkout", 1, "Succeeded"),
            ("build.compile", 1, "Succeeded"),
            ("deploy.ship", 1, "Succeeded"),
        ])
    );
    // The execution ends once the last stage has ended, not before.
    let ended = crate::support::pipeline::time(status.ended_at.as_deref().expect("ended_at"));
    assert!(ended >= status.stage("deploy").ended(), "{status:#?}");
}

#[test]
fn p12_statuses_use_codepipeline_spellings() {
    // A success.
    let ok = Pipeline::new(&text(
        "p12ok",
        "main",
        &build_stage("build", "b", &["true"]),
    ))
    .file("a.txt", "a\n");
    let ran = ok.run_pipeline(&[]);
    ran.code(0);
    let status = ok.status(Some(&ran.execution_id()));
    assert_eq!(status.status, "Succeeded");
    assert_eq!(
        stage_rows(&status),
        pairs(&[("source", "Succeeded"), ("build", "Succeeded")])
    );
    assert_eq!(
        status.summary(),
        rows(&[
            ("source.checkout", 1, "Succeeded"),
            ("build.b", 1, "Succeeded")
        ])
    );

    // A failure.
    let failing = Pipeline::new(&text(
        "p12fail",
        "main",
        &build_stage("build", "b", &["exit 3"]),
    ))
    .file("a.txt", "a\n");
    let ran = failing.run_pipeline(&[]);
    ran.code(1);
    let status = failing.status(Some(&ran.execution_id()));
    assert_eq!(status.status, "Failed");
    assert_eq!(
        stage_rows(&status),
        pairs(&[("source", "Succeeded"), ("build", "Failed")])
    );
    assert_eq!(
        status.summary(),
        rows(&[
            ("source.checkout", 1, "Succeeded"),
            ("build.b", 1, "Failed")
        ])
    );

    // `runner cancel`: the execution and its stage are `Stopped`, the running action `Abandoned`
    // (P19's "stop and abandon": the build is killed).
    let cancelled = Pipeline::new(&text(
        "p12stop",
        "main",
        &build_stage("work", "sleeper", &["echo sleeping-now", "sleep 60"]),
    ))
    .file("a.txt", "a\n");
    let mut running = cancelled.spawn(["run", "--pipeline", "{pipeline}"]);
    let id = running.execution_id();
    running.wait_for("[work.sleeper] sleeping-now", Duration::from_secs(60));
    cancelled.run(["cancel", id.as_str()]).code(0);
    running.finish(Duration::from_secs(60)).code(130);
    let status = cancelled.status(Some(&id));
    assert_eq!(status.status, "Stopped");
    assert_eq!(
        stage_rows(&status),
        pairs(&[("source", "Succeeded"), ("work", "Stopped")])
    );
    assert_eq!(status.action("source", "checkout").status, "Succeeded");
    assert_eq!(status.action("work", "sleeper").status, "Abandoned");
}

#[test]
fn p16_primary_input_is_src_dir_and_others_are_src_dir_name() {
    // `Lib` is listed first: the primary is the one `primary_source` names, not the first.
    let stages = format!(
        "  - name: prep
    actions:
      - name: lib
        type: build
        inputs: [Src]
        outputs: [Lib]
        buildspec_inline: |
          version: 0.2
          phases:
            build:
              commands:
                - mkdir -p out && echo from-lib > out/lib.txt
          artifacts:
            base-directory: out
            files: ['**/*']
  - name: build
    actions:
      - name: use
        type: build
        inputs: [Lib, Src]
        primary_source: Src
{}",
        inline(&[
            "echo \"PWD_IS_SRC=$([ \"$(pwd)\" = \"$CODEBUILD_SRC_DIR\" ] && echo yes || echo no)\"",
            "echo \"PRIMARY=$(cat \"$CODEBUILD_SRC_DIR/app.txt\")\"",
            "echo \"PRIMARY_FILES=$(ls \"$CODEBUILD_SRC_DIR\" | tr '\\n' ' ')\"",
            "echo \"LIB=$(cat \"$CODEBUILD_SRC_DIR_Lib/lib.txt\")\"",
            "echo \"LIB_FILES=$(ls \"$CODEBUILD_SRC_DIR_Lib\" | tr '\\n' ' ')\"",
        ])
    );
    let pipeline = Pipeline::new(&text("p16in", "main", &stages)).file("app.txt", "from-src\n");
    let ran = pipeline.run_pipeline(&[]);
    ran.code(0);
    let id = ran.execution_id();
    for line in [
        "PWD_IS_SRC=yes",
        "PRIMARY=from-src",
        "PRIMARY_FILES=app.txt ",
        "LIB=from-lib",
        "LIB_FILES=lib.txt ",
    ] {
        log_has(&pipeline, &id, "use", line);
    }
}

#[test]
fn p16_several_outputs_come_from_secondary_artifacts() {
    let stages = format!(
        "  - name: build
    actions:
      - name: make
        type: build
        inputs: [Src]
        outputs: [A, B]
        buildspec_inline: |
          version: 0.2
          phases:
            build:
              commands:
                - mkdir -p a b && echo alpha > a/a.txt && echo beta > b/b.txt
          artifacts:
            files: [a/a.txt]
            secondary-artifacts:
              A:
                base-directory: a
                files: ['**/*']
              B:
                base-directory: b
                files: ['**/*']
  - name: use
    actions:
      - name: read
        type: build
        inputs: [A, B]
        primary_source: A
{}",
        inline(&[
            "echo \"A_FILES=$(ls \"$CODEBUILD_SRC_DIR\" | tr '\\n' ' ')\"",
            "echo \"A=$(cat \"$CODEBUILD_SRC_DIR/a.txt\")\"",
            "echo \"B_FILES=$(ls \"$CODEBUILD_SRC_DIR_B\" | tr '\\n' ' ')\"",
            "echo \"B=$(cat \"$CODEBUILD_SRC_DIR_B/b.txt\")\"",
        ])
    );
    let pipeline = Pipeline::new(&text("p16out", "main", &stages)).file("x.txt", "x\n");
    let ran = pipeline.run_pipeline(&[]);
    ran.code(0);
    let id = ran.execution_id();
    for line in ["A_FILES=a.txt ", "A=alpha", "B_FILES=b.txt ", "B=beta"] {
        log_has(&pipeline, &id, "read", line);
    }
}

#[test]
fn p23_every_execution_runs_the_source_action_again() {
    let stages = build_stage("build", "show", &["echo \"APP=$(cat app.txt)\""]);
    let pipeline = Pipeline::new(&text("p23", "main", &stages)).file("app.txt", "one\n");
    let first_sha = init_git(&pipeline, "main");

    let first = pipeline.run_pipeline(&[]);
    first.code(0);
    let first_id = first.execution_id();
    let second_sha = commit(&pipeline, "app.txt", "two\n");
    assert_ne!(first_sha, second_sha);
    let second = pipeline.run_pipeline(&[]);
    second.code(0);
    let second_id = second.execution_id();
    assert_ne!(first_id, second_id, "two runs are two executions");

    for (id, sha, app) in [
        (&first_id, &first_sha, "one"),
        (&second_id, &second_sha, "two"),
    ] {
        let status = pipeline.status(Some(id));
        assert_eq!(
            status.revision.as_deref(),
            Some(sha.as_str()),
            "{status:#?}"
        );
        assert_eq!(
            status.attempts_of("source", "checkout").len(),
            1,
            "each execution runs its own source action: {status:#?}"
        );
        assert_eq!(status.action("source", "checkout").status, "Succeeded");
        log_has(&pipeline, id, "show", &format!("APP={app}"));
    }
}

#[test]
fn p34_source_output_variables() {
    let stages = format!(
        "  - name: build
    actions:
      - name: show
        type: build
        inputs: [Src]
        env:
          COMMIT: '#{{SourceVars.CommitId}}'
          BRANCH: '#{{SourceVars.BranchName}}'
{}",
        inline(&["echo \"COMMIT=$COMMIT\"", "echo \"BRANCH=$BRANCH\""])
    );
    let pipeline = Pipeline::new(&text("p34", "release", &stages)).file("a.txt", "a\n");
    let sha = init_git(&pipeline, "release");
    let ran = pipeline.run_pipeline(&[]);
    ran.code(0);
    let id = ran.execution_id();
    assert_eq!(sha.len(), 40);
    log_has(&pipeline, &id, "show", &format!("COMMIT={sha}"));
    log_has(&pipeline, &id, "show", "BRANCH=release");
}

#[test]
fn p44_codebuild_environment_under_a_pipeline() {
    let stages = build_stage(
        "build",
        "env",
        &[
            "echo \"INITIATOR=$CODEBUILD_INITIATOR\"",
            "echo \"SOURCE_VERSION=$CODEBUILD_SOURCE_VERSION\"",
            "echo \"RESOLVED=$CODEBUILD_RESOLVED_SOURCE_VERSION\"",
            "echo \"WEBHOOK_VARS=$(env | grep -c '^CODEBUILD_WEBHOOK' || true)\"",
        ],
    );
    let pipeline = Pipeline::new(&text("envcheck", "main", &stages)).file("a.txt", "a\n");
    let sha = init_git(&pipeline, "main");
    let ran = pipeline.run_pipeline(&[]);
    ran.code(0);
    let id = ran.execution_id();
    for line in [
        "INITIATOR=codepipeline/envcheck".to_owned(),
        format!("RESOLVED={sha}"),
        "WEBHOOK_VARS=0".to_owned(),
    ] {
        log_has(&pipeline, &id, "env", &line);
    }
    // The input artifact's locator (the S3 ARN's counterpart): the store's content digest.
    let log = pipeline.logs(&id, "env");
    let version = log
        .iter()
        .find_map(|l| l.strip_prefix("SOURCE_VERSION="))
        .unwrap_or_else(|| panic!("no SOURCE_VERSION= line in {log:#?}"));
    let digest = version
        .strip_prefix("runner-artifact:")
        .unwrap_or_else(|| panic!("not an artifact locator: {version:?}"));
    assert_eq!(digest.len(), 64, "{version:?}");
    assert!(digest.chars().all(|c| c.is_ascii_hexdigit()), "{version:?}");
}

#[test]
fn p45_an_action_succeeds_only_when_its_build_succeeds() {
    let stages = format!(
        "{}{}",
        build_stage("build", "broken", &["echo before-failing", "exit 2"]),
        build_stage("deploy", "ship", &["echo shipped"]),
    );
    let pipeline = Pipeline::new(&text("p45", "main", &stages)).file("a.txt", "a\n");
    let ran = pipeline.run_pipeline(&[]);
    ran.code(1).stdout_lacks("shipped");
    let id = ran.execution_id();
    ran.stdout_has(&format!("==> execution {id} Failed"));
    let status = pipeline.status(Some(&id));
    assert_eq!(status.status, "Failed");
    let broken = status.action("build", "broken");
    assert_eq!(broken.status, "Failed");
    let build_id = broken.build_id.as_deref().expect("a build ran");
    assert_eq!(
        broken.error.as_deref(),
        Some(format!("build {build_id} ended FAILED").as_str()),
        "{broken:#?}"
    );
    assert!(!status.ran("deploy", "ship"), "{status:#?}");
    log_has(&pipeline, &id, "broken", "before-failing");
}

/// P15 decision: the runner is the job worker. It fetches each input from the store (by the
/// digest the state records, the store's location and key staying on the runner) and stages it;
/// the build container gets neither store credentials nor the store, only its unpacked inputs.
#[test]
fn p15_a_build_gets_its_inputs_not_the_store_or_its_credentials() {
    let stages = build_stage(
        "build",
        "probe",
        &[
            "test \"$(cat a.txt)\" = a",
            "test -z \"${AWS_ACCESS_KEY_ID:-}${AWS_SECRET_ACCESS_KEY:-}${AWS_SESSION_TOKEN:-}\"",
            "'! grep -q -e artifacts -e master.key /proc/mounts'",
            "'! find / -xdev -name master.key 2>/dev/null | grep -q .'",
            "echo inputs-only",
        ],
    );
    let pipeline = Pipeline::new(&text("p15", "main", &stages)).file("a.txt", "a\n");
    let mut command = pipeline.command(["run", "--pipeline", "{pipeline}"]);
    command
        .env("AWS_ACCESS_KEY_ID", "AKIAP15EXAMPLE")
        .env("AWS_SECRET_ACCESS_KEY", "p15-secret")
        .env("AWS_SESSION_TOKEN", "p15-token");
    let output = command.output().expect("run the runner");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("[build.probe] inputs-only"), "{stdout}");
    assert!(
        pipeline.data().join("artifacts/master.key").exists(),
        "the key stays with the runner"
    );
}

/// The pipeline `validate` checks for P45's limits: a build and an approval timeout.
fn timeouts(build: &str, approval: &str) -> Pipeline {
    let stages = format!(
        "  - name: build
    actions:
      - name: compile
        type: build
        inputs: [Src]
        timeout: {build}
  - name: gate
    actions:
      - name: approve
        type: approval
        timeout: {approval}
"
    );
    Pipeline::new(&text("p45t", "main", &stages))
}

#[test]
fn p45_validate_refuses_a_build_over_8h_and_an_approval_over_7d() {
    timeouts("8h", "7d").run(["validate", "{pipeline}"]).code(0);

    let pipeline = timeouts("9h", "8d");
    let ran = pipeline.run(["validate", "{pipeline}"]);
    ran.code(1);
    let file = pipeline.pipeline_file().display().to_string();
    assert_eq!(
        ran.stderr,
        format!(
            "error: {file}:20:18: stages[1].actions[0].timeout: invalid timeout `9h`: must be at most 8h\n\
             {file}:25:18: stages[2].actions[0].timeout: invalid timeout `8d`: must be at most 7days\n"
        ),
    );
    assert_eq!(ran.stdout, "");
}

#[test]
fn p35_revision_pins_the_commit_the_source_fetches() {
    let stages = format!(
        "  - name: build
    actions:
      - name: show
        type: build
        inputs: [Src]
        env:
          COMMIT: '#{{SourceVars.CommitId}}'
{}",
        inline(&["echo \"APP=$(cat app.txt)\"", "echo \"COMMIT=$COMMIT\""])
    );
    let pipeline = Pipeline::new(&text("p35", "main", &stages)).file("app.txt", "one\n");
    let first = init_git(&pipeline, "main");
    let second = commit(&pipeline, "app.txt", "two\n");
    assert_ne!(first, second);

    let ran = pipeline.run_pipeline(&["--revision", &first]);
    ran.code(0);
    let id = ran.execution_id();
    let status = pipeline.status(Some(&id));
    assert_eq!(status.revision.as_deref(), Some(first.as_str()));
    log_has(&pipeline, &id, "show", "APP=one");
    log_has(&pipeline, &id, "show", &format!("COMMIT={first}"));
}

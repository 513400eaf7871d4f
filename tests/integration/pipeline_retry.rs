//! `runner retry` on real containers (P36–P38, E14): a transient failure in one of two parallel
//! actions, retried with the same revision and artifacts; the refusals of P37; a runner killed
//! mid-stage and recovered; a tampered artifact caught before the build runs.

use std::time::Duration;

use crate::support::pipeline::{Pipeline, SRC, execution_containers, rows};

/// Fails the first time and succeeds once the cache restored the marker the first try left
/// (the cache is saved even when the build fails). Prints the source's version and packages it.
const FLAKY: &str = r#"version: 0.2
cache:
  paths:
    - '/root/.flaky/**/*'
phases:
  build:
    commands:
      - echo "VERSION=$(cat version.txt)"
      - if [ -f /root/.flaky/ok ]; then echo "second try"; else mkdir -p /root/.flaky && touch /root/.flaky/ok && echo "first try fails" && exit 1; fi
      - mkdir -p out && echo "auth $(cat version.txt)" > out/auth.txt
artifacts:
  base-directory: out
  files: ['**/*']
"#;

/// `build-lambdas` holds the flaky `auth` and a steady `recommender` whose artifact carries a
/// nonce; `deploy` prints both artifacts and the source's version.
fn flaky_pipeline() -> Pipeline {
    let text = format!(
        r#"name: flaky
source:
  repo: {SRC}
  branch: main
defaults:
  image: runner/test
  timeout: 5m
stages:
  - name: source
    actions:
      - name: checkout
        type: source
        outputs: [Src]
  - name: build-lambdas
    actions:
      - name: auth
        type: build
        buildspec: buildspecs/flaky.yml
        inputs: [Src]
        outputs: [AuthPackage]
      - name: recommender
        type: build
        inputs: [Src]
        outputs: [RecommenderPackage]
        buildspec_inline: |
          version: 0.2
          phases:
            build:
              commands:
                - mkdir -p out && echo "rec-$(date +%s%N)" > out/rec.txt
                - echo "NONCE=$(cat out/rec.txt)"
          artifacts:
            base-directory: out
            files: ['**/*']
  - name: deploy
    actions:
      - name: ship
        type: build
        inputs: [Src, AuthPackage, RecommenderPackage]
        primary_source: Src
        buildspec_inline: |
          version: 0.2
          phases:
            build:
              commands:
                - echo "VERSION=$(cat version.txt)"
                - echo "AUTH=$(cat $CODEBUILD_SRC_DIR_AuthPackage/auth.txt)"
                - echo "REC=$(cat $CODEBUILD_SRC_DIR_RecommenderPackage/rec.txt)"
"#
    );
    Pipeline::new(&text)
        .file("version.txt", "v1\n")
        .file("buildspecs/flaky.yml", FLAKY)
}

/// The value of the first `NAME=value` line of an action's log.
#[track_caller]
fn value(pipeline: &Pipeline, execution: &str, action: &str, name: &str) -> String {
    let log = pipeline.logs(execution, action);
    let prefix = format!("{name}=");
    log.iter()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {name}= in the log of {action}: {log:#?}"))
        .to_owned()
}

/// Runs the flaky pipeline once: `auth` fails, `recommender` succeeds, `deploy` never starts.
/// Returns the execution id.
#[track_caller]
fn first_run_fails(pipeline: &Pipeline) -> String {
    let ran = pipeline.run_pipeline(&[]);
    ran.code(1).stdout_has("first try fails");
    let id = ran.execution_id();
    let status = pipeline.status(Some(&id));
    assert_eq!(status.status, "Failed");
    assert_eq!(
        status.summary(),
        rows(&[
            ("source.checkout", 1, "Succeeded"),
            ("build-lambdas.auth", 1, "Failed"),
            ("build-lambdas.recommender", 1, "Succeeded"),
        ])
    );
    id
}

#[test]
fn p38_retry_reruns_only_the_failed_action_with_the_same_revision_and_artifacts() {
    let pipeline = flaky_pipeline();
    let id = first_run_fails(&pipeline);
    let before = pipeline.status(Some(&id));
    let nonce = value(&pipeline, &id, "recommender", "NONCE");
    // A change on disk after the execution started must not reach the retry (P38).
    std::fs::write(pipeline.source().join("version.txt"), "v2\n").expect("write");

    let retry = pipeline.retry("build-lambdas", &[]);
    retry
        .code(0)
        .stdout_has(&format!(
            "==> retrying stage build-lambdas of execution {id} (FAILED_ACTIONS)"
        ))
        .stdout_has("second try")
        .stdout_lacks("recommender started");
    let status = pipeline.status(None);
    assert_eq!(status.id, id, "a retry keeps the execution id");
    assert_eq!(status.revision, before.revision, "and the revision");
    assert_eq!(status.status, "Succeeded");
    let auth: Vec<(u32, &str)> = status
        .attempts_of("build-lambdas", "auth")
        .iter()
        .map(|a| (a.attempt, a.status.as_str()))
        .collect();
    assert_eq!(auth, [(1, "Failed"), (2, "Succeeded")]);
    let recommender = status.attempts_of("build-lambdas", "recommender");
    assert_eq!(recommender.len(), 1, "the succeeded action is not re-run");
    assert_eq!(recommender[0].status, "Succeeded");
    assert_eq!(status.action("deploy", "ship").status, "Succeeded");
    let stages: Vec<(&str, u32, Option<&str>, &str)> = status
        .stages
        .iter()
        .map(|s| {
            (
                s.stage.as_str(),
                s.attempt,
                s.retry_mode.as_deref(),
                s.status.as_str(),
            )
        })
        .collect();
    assert_eq!(
        stages,
        [
            ("source", 1, None, "Succeeded"),
            ("build-lambdas", 1, None, "Failed"),
            ("build-lambdas", 2, Some("FAILED_ACTIONS"), "Succeeded"),
            ("deploy", 1, None, "Succeeded"),
        ]
    );
    // The stored source and the first attempt's recommender artifact were used.
    assert_eq!(value(&pipeline, &id, "auth", "VERSION"), "v1");
    assert_eq!(value(&pipeline, &id, "ship", "VERSION"), "v1");
    assert_eq!(value(&pipeline, &id, "ship", "AUTH"), "auth v1");
    assert_eq!(value(&pipeline, &id, "ship", "REC"), nonce);

    // P37: nothing is left to retry.
    pipeline
        .retry("build-lambdas", &["--execution", &id])
        .code(2)
        .stderr_has(&format!(
            "error: stage build-lambdas succeeded in execution {id}; there is nothing to retry (P37)\n"
        ));
    pipeline
        .retry("build-lambdas", &[])
        .code(2)
        .stderr_has("error: no execution of flaky has a failed or stopped stage build-lambdas\n");
}

#[test]
fn p36_retry_all_actions_reruns_every_action_of_the_stage() {
    let pipeline = flaky_pipeline();
    let id = first_run_fails(&pipeline);
    let nonce = value(&pipeline, &id, "recommender", "NONCE");
    pipeline
        .retry("build-lambdas", &["--all-actions"])
        .code(0)
        .stdout_has(&format!(
            "==> retrying stage build-lambdas of execution {id} (ALL_ACTIONS)"
        ));
    let status = pipeline.status(Some(&id));
    assert_eq!(status.status, "Succeeded");
    assert_eq!(status.action("build-lambdas", "auth").attempt, 2);
    assert_eq!(status.action("build-lambdas", "recommender").attempt, 2);
    assert_eq!(
        status.stage("build-lambdas").retry_mode.as_deref(),
        Some("ALL_ACTIONS")
    );
    // The re-run recommender overwrote its artifact, and deploy used the new one (P38).
    let rebuilt = value(&pipeline, &id, "recommender", "NONCE");
    assert_ne!(rebuilt, nonce);
    assert_eq!(value(&pipeline, &id, "ship", "REC"), rebuilt);
}

#[test]
fn p37_retry_is_refused_without_a_failed_execution_or_after_a_structural_change() {
    let pipeline = flaky_pipeline();
    pipeline
        .retry("build-lambdas", &[])
        .code(2)
        .stderr_has("error: no execution of flaky has a failed or stopped stage build-lambdas\n");

    let id = first_run_fails(&pipeline);
    let original = std::fs::read_to_string(pipeline.pipeline_file()).expect("read");
    std::fs::write(
        pipeline.pipeline_file(),
        original.replace(
            "        outputs: [RecommenderPackage]\n",
            "        outputs: [RecommenderPackage]\n        env: {EXTRA: one}\n",
        ),
    )
    .expect("write");
    pipeline
        .retry("build-lambdas", &[])
        .code(2)
        .stderr_has(&format!(
            "error: the pipeline structure has changed since execution {id} ran; start a new execution (P37)\n"
        ));
    let status = pipeline.status(Some(&id));
    assert_eq!(status.status, "Failed", "a refused retry changes nothing");
    assert_eq!(status.attempts_of("build-lambdas", "auth").len(), 1);
}

#[test]
fn p37_retry_of_an_execution_that_is_no_longer_the_latest_is_refused() {
    let pipeline = flaky_pipeline();
    let old = first_run_fails(&pipeline);
    // The cache now holds the marker, so a second execution passes through the stage.
    let newer = pipeline.run_pipeline(&[]);
    newer.code(0);
    assert_ne!(newer.execution_id(), old);
    pipeline
        .retry("build-lambdas", &["--execution", &old])
        .code(2)
        .stderr_has("error: NotLatestPipelineExecutionException: a newer execution has reached stage build-lambdas (P37)\n");
}

#[test]
fn crash_recovery_marks_the_dead_attempt_abandoned_and_retries_it() {
    let text = format!(
        "name: crash
source:
  repo: {SRC}
  branch: main
defaults:
  image: runner/test
stages:
  - name: source
    actions:
      - name: checkout
        type: source
        outputs: [Src]
  - name: work
    actions:
      - name: sleeper
        type: build
        inputs: [Src]
        buildspec_inline: |
          version: 0.2
          phases:
            build:
              commands:
                - echo sleeping-now
                - sleep 5
  - name: after
    actions:
      - name: done
        type: build
        inputs: [Src]
        buildspec_inline: |
          version: 0.2
          phases:
            build:
              commands:
                - echo after-ran
"
    );
    let pipeline = Pipeline::new(&text).file("readme.txt", "hi\n");
    let mut running = pipeline.spawn(["run", "--pipeline", "{pipeline}"]);
    let id = running.execution_id();
    running.wait_for("[work.sleeper] sleeping-now", Duration::from_secs(60));
    running.kill_9();
    assert_eq!(
        execution_containers(&id).len(),
        1,
        "the dead runner's container is left behind"
    );
    let stale = pipeline.status(Some(&id));
    assert_eq!(stale.status, "InProgress");
    assert_eq!(stale.action("work", "sleeper").status, "InProgress");

    let retry = pipeline.retry("work", &[]);
    retry
        .code(0)
        .stderr_has("marked abandoned: its runner died")
        .stderr_has(&id)
        .stdout_has(&format!(
            "==> retrying stage work of execution {id} (FAILED_ACTIONS)"
        ))
        .stdout_has("[after.done] after-ran");
    let status = pipeline.status(Some(&id));
    assert_eq!(status.status, "Succeeded");
    let sleeper: Vec<(u32, &str)> = status
        .attempts_of("work", "sleeper")
        .iter()
        .map(|a| (a.attempt, a.status.as_str()))
        .collect();
    assert_eq!(sleeper, [(1, "Abandoned"), (2, "Succeeded")]);
    let work: Vec<(u32, &str)> = status
        .stages
        .iter()
        .filter(|s| s.stage == "work")
        .map(|s| (s.attempt, s.status.as_str()))
        .collect();
    assert_eq!(work, [(1, "Abandoned"), (2, "Succeeded")]);
    assert_eq!(status.action("after", "done").status, "Succeeded");
    assert_eq!(execution_containers(&id), Vec::<String>::new());
}

#[test]
fn tampered_artifact_is_detected_before_the_build_runs() {
    let site = "        buildspec: buildspecs/frontend.yml\n";
    let flaky_site = "        buildspec: buildspecs/flaky.yml\n";
    let pipeline = Pipeline::example_variant(&[(site, flaky_site)])
        .file("buildspecs/flaky.yml", FLAKY)
        .file("version.txt", "v1\n");
    let ran = pipeline.run_pipeline(&[]);
    ran.code(1).stdout_has("first try fails");
    let id = ran.execution_id();
    let status = pipeline.status(Some(&id));
    assert_eq!(status.action("build-frontend", "site").status, "Failed");

    // The source artifact's object is named by its digest, which the revision abbreviates.
    let revision = status.revision.clone().expect("revision");
    let prefix = revision.strip_prefix("dir:").expect("directory revision");
    let objects = pipeline.artifact_objects();
    let object = objects
        .iter()
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
        })
        .unwrap_or_else(|| panic!("no object for {revision} in {objects:#?}"));
    let mut bytes = std::fs::read(object).expect("read object");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(object, bytes).expect("write object");

    let retry = pipeline.retry("build-frontend", &[]);
    retry
        .code(1)
        .stdout_lacks("Entering phase")
        .stdout_lacks("second try");
    let status = pipeline.status(Some(&id));
    assert_eq!(status.status, "Failed");
    let site = status.action("build-frontend", "site");
    assert_eq!((site.attempt, site.status.as_str()), (2, "Failed"));
    assert_eq!(site.build_id, None, "no build may run on corrupt input");
    let error = site.error.clone().unwrap_or_default();
    assert!(
        error.starts_with("fetch input artifact SourceOutput: verify artifact ")
            && error.ends_with(": the stored object was altered or truncated"),
        "{error:?}"
    );
}

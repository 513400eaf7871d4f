//! `runner run` on real containers: the bundled example end to end, variables between stages
//! (E11), run order and failures inside a parallel group (E12), a missing buildspec, a git
//! source, manual approvals and cancellation. Every fact is read back from `runner status
//! --json` and `runner logs`.

use std::time::{Duration, Instant};

use crate::support::pipeline::{Pipeline, SRC, execution_containers, git, rows};

/// `name: NAME`, a directory source at the temp tree, `runner/test`, and `stages` after the
/// source stage (which outputs `Src`, namespace `SourceVars`).
fn pipeline_text(name: &str, stages: &str) -> String {
    format!(
        "name: {name}
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
        namespace: SourceVars
{stages}"
    )
}

/// A pipeline of [`pipeline_text`] with a one-file source tree.
fn small(name: &str, stages: &str) -> Pipeline {
    Pipeline::new(&pipeline_text(name, stages)).file("readme.txt", "hi\n")
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

/// The `(started, finished)` epoch seconds a service build of the example printed.
#[track_caller]
fn service_window(lines: &[String], service: &str) -> (f64, f64) {
    let find = |prefix: &str| -> f64 {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(prefix)?.strip_suffix(')')?.parse().ok())
            .unwrap_or_else(|| panic!("no {prefix:?} line in {lines:#?}"))
    };
    (
        find(&format!("packaging {service} (started ")),
        find(&format!("packaged {service} (finished ")),
    )
}

#[test]
fn p9_bundled_example_runs_end_to_end_offline() {
    let pipeline = Pipeline::bundled_example();
    let ran = pipeline.run_pipeline(&[]);
    ran.code(0);
    let id = ran.execution_id();
    ran.stdout_has(&format!("==> execution {id} Succeeded"));

    let status = pipeline.status(Some(&id));
    assert_eq!(
        (status.id.as_str(), status.pipeline.as_str()),
        (id.as_str(), "example")
    );
    assert_eq!(status.status, "Succeeded");
    assert_eq!(
        status.summary(),
        rows(&[
            ("source.checkout", 1, "Succeeded"),
            ("infrastructure.terraform", 1, "Succeeded"),
            ("build-lambdas.auth", 1, "Succeeded"),
            ("build-lambdas.recommender", 1, "Succeeded"),
            ("build-frontend.site", 1, "Succeeded"),
        ])
    );
    let revision = status.revision.clone().expect("revision");
    let digest = revision.strip_prefix("dir:").expect("a directory revision");
    assert_eq!(digest.len(), 16, "{revision}");
    assert!(digest.chars().all(|c| c.is_ascii_hexdigit()), "{revision}");

    // P9: the two lambdas of one run-order group overlap, in the records and in the containers.
    let auth = status.action("build-lambdas", "auth");
    let recommender = status.action("build-lambdas", "recommender");
    assert!(auth.started() < recommender.ended(), "{status:#?}");
    assert!(recommender.started() < auth.ended(), "{status:#?}");
    let (auth_start, auth_end) = service_window(&pipeline.logs(&id, "auth"), "auth");
    let (rec_start, rec_end) = service_window(&pipeline.logs(&id, "recommender"), "recommender");
    assert!(
        auth_start < rec_end && rec_start < auth_end,
        "the containers ran one after the other: {auth_start}..{auth_end} vs {rec_start}..{rec_end}"
    );

    // P16 and P31: the site sees the AuthPackage input, terraform's exported API URL through
    // `#{InfraVars.API_URL}`, and the execution id through `#{codepipeline.PipelineExecutionId}`.
    let site = pipeline.logs(&id, "build-frontend.site");
    for line in [
        "auth package from the lambdas stage:",
        "auth.zip",
        &format!("execution {id}"),
        "<body><h1>shop</h1><p>API: https://api.dev.shop.example/v1</p><p>build: </p></body></html>",
    ] {
        assert!(site.iter().any(|l| l == line), "{line:?} not in {site:#?}");
    }
    assert!(execution_containers(&id).is_empty());
}

#[test]
fn p9_parallelism_limit_is_what_the_records_show() {
    let pipeline = Pipeline::bundled_example();
    let ran = pipeline.run_pipeline(&["--parallelism", "1"]);
    ran.code(0);
    let status = pipeline.status(Some(&ran.execution_id()));
    let auth = status.action("build-lambdas", "auth");
    let recommender = status.action("build-lambdas", "recommender");
    // One at a time: an action's recorded start is when it really started, not when it queued.
    assert!(
        recommender.started() >= auth.ended() || auth.started() >= recommender.ended(),
        "with --parallelism 1 the lambdas may not overlap: {status:#?}"
    );
}

#[test]
fn e11_exported_variable_reaches_the_next_stage_through_its_namespace() {
    let stages = format!(
        "  - name: build
    actions:
      - name: Build
        type: build
        inputs: [Src]
        namespace: BuildVars
        buildspec_inline: |
          version: 0.2
          env:
            exported-variables: [VER]
          phases:
            post_build:
              commands:
                - VER=1.2.3
  - name: deploy
    actions:
      - name: Deploy
        type: build
        inputs: [Src]
        env:
          SEEN: '#{{BuildVars.VER}}'
          TAG: 'v#{{BuildVars.VER}}-#{{codepipeline.PipelineExecutionId}}'
          COMMIT: '#{{SourceVars.CommitId}}'
{}",
        inline(&[
            "echo \"SEEN=$SEEN\"",
            "echo \"TAG=$TAG\"",
            "echo \"COMMIT=$COMMIT\""
        ])
    );
    let pipeline = small("vars", &stages);
    let ran = pipeline.run_pipeline(&[]);
    ran.code(0);
    let id = ran.execution_id();
    let status = pipeline.status(Some(&id));
    let revision = status.revision.clone().expect("revision");
    let log = pipeline.logs(&id, "Deploy");
    for line in [
        "SEEN=1.2.3".to_owned(),
        format!("TAG=v1.2.3-{id}"),
        format!("COMMIT={revision}"),
    ] {
        assert!(log.contains(&line), "{line:?} not in {log:#?}");
    }
}

#[test]
fn e12_a_failure_in_a_parallel_group_lets_the_group_finish_and_stops_the_rest() {
    let stages = format!(
        "  - name: build
    actions:
      - name: A
        type: build
        inputs: [Src]
        run_order: 1
{}      - name: B
        type: build
        inputs: [Src]
        run_order: 1
{}      - name: C
        type: build
        inputs: [Src]
        run_order: 2
{}  - name: after
    actions:
      - name: D
        type: build
        inputs: [Src]
{}",
        inline(&["sleep 1", "exit 1"]),
        inline(&["sleep 5", "echo B-done"]),
        inline(&["echo C-ran"]),
        inline(&["echo D-ran"]),
    );
    let pipeline = small("order", &stages);
    let ran = pipeline.run_pipeline(&[]);
    ran.code(1).stdout_lacks("C-ran").stdout_lacks("D-ran");
    let id = ran.execution_id();
    ran.stdout_has(&format!("==> execution {id} Failed"));

    let status = pipeline.status(Some(&id));
    assert_eq!(status.status, "Failed");
    assert_eq!(
        status.summary(),
        rows(&[
            ("source.checkout", 1, "Succeeded"),
            ("build.A", 1, "Failed"),
            ("build.B", 1, "Succeeded"),
        ])
    );
    assert!(!status.ran("build", "C"), "C must never start: {status:#?}");
    assert!(!status.ran("after", "D"), "later stages never start");
    let stages: Vec<(&str, &str)> = status
        .stages
        .iter()
        .map(|s| (s.stage.as_str(), s.status.as_str()))
        .collect();
    assert_eq!(stages, [("source", "Succeeded"), ("build", "Failed")]);

    let (a, b) = (status.action("build", "A"), status.action("build", "B"));
    // Both start in the same scheduler tick; A ends first, B keeps running to its end.
    assert!(
        (b.started() - a.started()).num_milliseconds().abs() < 500,
        "{status:#?}"
    );
    assert!(b.started() < a.ended(), "{status:#?}");
    assert!(
        (b.ended() - a.ended()).num_milliseconds() >= 2000,
        "{status:#?}"
    );
    assert!(pipeline.logs(&id, "B").contains(&"B-done".to_owned()));
    // P10: the stage turns Failed only once B, still running when A failed, has finished.
    let stage = status.stage("build");
    assert!(stage.ended() >= b.ended(), "{status:#?}");
    assert!(
        a.error
            .as_deref()
            .is_some_and(|e| e.ends_with(" ended FAILED")),
        "{a:#?}"
    );
}

#[test]
fn a_buildspec_missing_at_that_revision_fails_the_action() {
    let stages = "  - name: build
    actions:
      - name: compile
        type: build
        inputs: [Src]
        buildspec: ci/missing.yml
";
    let pipeline = Pipeline::new(&pipeline_text("nobuildspec", stages)).file("ci/other.yml", "");
    let ran = pipeline.run_pipeline(&[]);
    ran.code(1).stdout_lacks("Entering phase");
    let id = ran.execution_id();
    let status = pipeline.status(Some(&id));
    assert_eq!(status.status, "Failed");
    let compile = status.action("build", "compile");
    assert_eq!(compile.status, "Failed");
    assert_eq!(
        compile.error.as_deref(),
        Some("YAML_FILE_ERROR: buildspec ci/missing.yml does not exist in input artifact Src")
    );
    assert_eq!(compile.build_id, None, "no build may start");
}

#[test]
fn p17_git_source_builds_the_commit_without_git_metadata() {
    let stages = format!(
        "  - name: build
    actions:
      - name: show
        type: build
        inputs: [Src]
{}",
        inline(&[
            "echo \"RESOLVED=$CODEBUILD_RESOLVED_SOURCE_VERSION\"",
            "echo \"APP=$(cat app.txt)\"",
            "if [ -e .git ]; then echo GIT=present; else echo GIT=absent; fi",
        ])
    );
    let pipeline = Pipeline::new(&pipeline_text("gitsrc", &stages)).file("app.txt", "one\n");
    let repo = pipeline.source();
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "first"]);
    let first = git(&repo, &["rev-parse", "HEAD"]);
    std::fs::write(repo.join("app.txt"), "two\n").expect("write");
    git(&repo, &["commit", "-q", "-am", "second"]);
    let second = git(&repo, &["rev-parse", "HEAD"]);
    assert_ne!(first, second);

    for (extra, sha, app) in [
        (vec![], &second, "two"),
        (vec!["--revision", first.as_str()], &first, "one"),
    ] {
        let ran = pipeline.run_pipeline(&extra);
        ran.code(0);
        let id = ran.execution_id();
        let status = pipeline.status(Some(&id));
        assert_eq!(status.revision.as_deref(), Some(sha.as_str()), "{extra:?}");
        assert_eq!(sha.len(), 40);
        let log = pipeline.logs(&id, "show");
        for line in [
            format!("RESOLVED={sha}"),
            format!("APP={app}"),
            "GIT=absent".into(),
        ] {
            assert!(log.contains(&line), "{extra:?}: {line:?} not in {log:#?}");
        }
    }
}

/// Source → build → an approval stage → deploy.
fn approval_pipeline() -> Pipeline {
    let stages = format!(
        "  - name: build
    actions:
      - name: compile
        type: build
        inputs: [Src]
{}  - name: gate
    actions:
      - name: approve
        type: approval
  - name: deploy
    actions:
      - name: ship
        type: build
        inputs: [Src]
{}",
        inline(&["echo built"]),
        inline(&["echo shipped"]),
    );
    small("gated", &stages)
}

#[test]
fn approval_waits_until_approved_from_another_process() {
    let pipeline = approval_pipeline();
    let mut running = pipeline.spawn(["run", "--pipeline", "{pipeline}"]);
    let id = running.execution_id();
    running.wait_for("==> gate.approve started", Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(1));
    assert!(running.is_running(), "the run must wait for the approval");
    let waiting = pipeline.status(Some(&id));
    assert_eq!(waiting.status, "InProgress");
    assert_eq!(waiting.action("gate", "approve").status, "InProgress");
    assert!(!waiting.ran("deploy", "ship"));

    let approve = pipeline.run(["approve", id.as_str(), "gate/approve"]);
    approve.code(0);
    assert_eq!(approve.stdout, format!("gate/approve of {id}: approved\n"));
    let ran = running.finish(Duration::from_secs(60));
    ran.code(0).stdout_has("[deploy.ship] shipped");
    let status = pipeline.status(Some(&id));
    assert_eq!(status.status, "Succeeded");
    assert_eq!(status.action("gate", "approve").status, "Succeeded");
    assert_eq!(status.action("deploy", "ship").status, "Succeeded");
}

#[test]
fn approval_rejected_fails_the_action_and_the_execution() {
    let pipeline = approval_pipeline();
    let mut running = pipeline.spawn(["run", "--pipeline", "{pipeline}"]);
    let id = running.execution_id();
    running.wait_for("==> gate.approve started", Duration::from_secs(60));
    pipeline
        .run(["approve", id.as_str(), "gate/approve", "--reject", "no"])
        .code(0);
    let ran = running.finish(Duration::from_secs(60));
    ran.code(1).stdout_lacks("shipped");
    let status = pipeline.status(Some(&id));
    assert_eq!(status.status, "Failed");
    let approve = status.action("gate", "approve");
    assert_eq!(approve.status, "Failed");
    assert_eq!(approve.error.as_deref(), Some("rejected: no"));
    assert!(!status.ran("deploy", "ship"));
}

#[test]
fn p19_cancel_stops_a_running_build() {
    let stages = format!(
        "  - name: work
    actions:
      - name: sleeper
        type: build
        inputs: [Src]
{}  - name: after
    actions:
      - name: done
        type: build
        inputs: [Src]
{}",
        inline(&["echo sleeping-now", "sleep 60"]),
        inline(&["echo after-ran"]),
    );
    let pipeline = small("cancel", &stages);
    let mut running = pipeline.spawn(["run", "--pipeline", "{pipeline}"]);
    let id = running.execution_id();
    running.wait_for("[work.sleeper] sleeping-now", Duration::from_secs(60));
    assert_eq!(execution_containers(&id).len(), 1, "the build runs");
    let cancelled = Instant::now();
    let cancel = pipeline.run(["cancel", id.as_str()]);
    cancel.code(0);
    assert_eq!(cancel.stdout, format!("cancel requested for {id}\n"));
    let ran = running.finish(Duration::from_secs(60));
    assert!(
        cancelled.elapsed() < Duration::from_secs(30),
        "the build must be stopped, not waited for"
    );
    ran.code(130).stdout_lacks("after-ran");
    let status = pipeline.status(Some(&id));
    assert_eq!(status.status, "Stopped");
    // P12/P19: a cancel abandons the running action; its stage and execution are Stopped.
    assert_eq!(status.action("work", "sleeper").status, "Abandoned");
    assert_eq!(status.stage("work").status, "Stopped");
    assert!(!status.ran("after", "done"));
    assert_eq!(execution_containers(&id), Vec::<String>::new());
}

#[test]
fn p19_cancel_starts_nothing_that_was_queued() {
    let sleeper = inline(&["echo sleeping-now", "sleep 60"]);
    let stages = format!(
        "  - name: work
    actions:
      - name: first
        type: build
        inputs: [Src]
{sleeper}      - name: second
        type: build
        inputs: [Src]
{sleeper}"
    );
    let pipeline = small("queued", &stages);
    let mut running = pipeline.spawn(["run", "--pipeline", "{pipeline}", "--parallelism", "1"]);
    let id = running.execution_id();
    running.wait_for("] sleeping-now", Duration::from_secs(60));
    pipeline.run(["cancel", id.as_str()]).code(0);
    let ran = running.finish(Duration::from_secs(60));
    ran.code(130);
    let status = pipeline.status(Some(&id));
    assert_eq!(status.status, "Stopped");
    // One action held the only permit and was stopped; the other never started a container.
    let work: Vec<&str> = status
        .attempts
        .iter()
        .filter(|a| a.stage == "work")
        .map(|a| a.status.as_str())
        .collect();
    assert_eq!(work, ["Abandoned"], "{status:#?}");
    assert_eq!(
        ran.stdout.matches("] sleeping-now").count(),
        1,
        "{}",
        ran.stdout
    );
    assert_eq!(execution_containers(&id), Vec::<String>::new());
}

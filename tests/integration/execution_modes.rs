//! E13 through `runner serve`: Source → Build → Deploy, three commits pushed as webhooks one
//! second apart, in each execution mode (P20–P22). Stages are locked per stage, not per
//! pipeline: a newer execution builds while an older one deploys.

use std::time::Duration;

use crate::serve::{
    SECRET, TOKEN, deliver, push_body, repository, request, serve_on_loopback, sign,
};
use crate::support::pipeline::{Execution, Pipeline, StageStatus, git, time};

/// The executions of E13 in one mode, in push order (c1, c2, c3).
struct E13 {
    executions: Vec<Execution>,
}

impl E13 {
    /// Pushes c1, c2 and c3 to a pipeline in `mode` one second apart and waits until
    /// `succeeded` executions succeeded and every execution ended.
    fn run(mode: &str, succeeded: usize) -> Self {
        let root = tempfile::tempdir().expect("temp dir");
        let (url, work) = repository(root.path());
        let mut commits = vec![git(&work, &["rev-parse", "HEAD"])];
        for message in ["c1", "c2", "c3"] {
            std::fs::write(work.join("msg.txt"), format!("{message}\n")).expect("write");
            git(&work, &["commit", "-qam", message]);
            commits.push(git(&work, &["rev-parse", "HEAD"]));
        }
        git(&work, &["push", "-q", &url, "HEAD:main"]);
        let pipeline = Pipeline::new(&format!(
            "name: served\nsource:\n  repo: {url}\n  branch: main\nexecution_mode: {mode}\n\
             defaults:\n  image: runner/test\nstages:\n\
             \x20 - name: source\n    actions:\n      - name: checkout\n        type: source\n        outputs: [Src]\n\
             \x20 - name: build\n    actions:\n      - name: compile\n        type: build\n        inputs: [Src]\n\
             \x20       buildspec_inline: |\n          version: 0.2\n          phases:\n            build:\n              commands:\n                - sleep 4\n                - cat msg.txt\n\
             \x20 - name: deploy\n    actions:\n      - name: ship\n        type: build\n        inputs: [Src]\n\
             \x20       buildspec_inline: |\n          version: 0.2\n          phases:\n            build:\n              commands:\n                - sleep 2\n"
        ));
        let secret_file = root.path().join("secret");
        std::fs::write(&secret_file, SECRET).expect("write");
        let secret_arg = secret_file.display().to_string();
        let (serve, address) =
            serve_on_loopback(&pipeline, &["--webhook-secret-file", &secret_arg]);
        for (index, pair) in commits.windows(2).enumerate() {
            let body = push_body(&pair[0], &pair[1]);
            let (status, text) = deliver(&address, &body, &format!("d{index}"), Some(&sign(&body)));
            assert_eq!(status, 202, "{text}");
            std::thread::sleep(Duration::from_secs(1));
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(180);
        let executions = loop {
            let executions = executions(&pipeline);
            let done = executions
                .iter()
                .filter(|e| e.status == "Succeeded")
                .count();
            let ended = executions.iter().all(|e| e.ended_at.is_some());
            if (done >= succeeded && ended && executions.len() == 3)
                || std::time::Instant::now() > deadline
            {
                break executions;
            }
            std::thread::sleep(Duration::from_millis(300));
        };
        std::process::Command::new("kill")
            .args(["-TERM", &serve.pid().to_string()])
            .status()
            .expect("kill");
        serve.finish(Duration::from_secs(60)).code(0);
        let mut in_order = Vec::new();
        for commit in &commits[1..] {
            let found = executions
                .iter()
                .find(|e| e.revision.as_deref() == Some(commit.as_str()))
                .unwrap_or_else(|| panic!("no execution of {commit}: {executions:#?}"));
            in_order.push(found.clone());
        }
        Self {
            executions: in_order,
        }
    }

    fn statuses(&self) -> Vec<&str> {
        self.executions.iter().map(|e| e.status.as_str()).collect()
    }

    /// Execution `index`'s only attempt of `stage`.
    #[track_caller]
    fn stage(&self, index: usize, stage: &str) -> &StageStatus {
        let execution = &self.executions[index];
        let attempts: Vec<&StageStatus> = execution
            .stages
            .iter()
            .filter(|s| s.stage == stage)
            .collect();
        assert_eq!(attempts.len(), 1, "{execution:#?}");
        attempts[0]
    }

    /// (start, end) of execution `index` in `stage`.
    #[track_caller]
    fn span(&self, index: usize, stage: &str) -> (String, String) {
        let stage = self.stage(index, stage);
        let ended = stage.ended_at.clone().expect("the stage ended");
        (stage.started_at.clone(), ended)
    }

    /// No action that started was interrupted: every attempt that began ended `Succeeded`.
    #[track_caller]
    fn nothing_interrupted(&self) {
        for execution in &self.executions {
            for attempt in &execution.attempts {
                assert!(
                    attempt.status == "Succeeded" || attempt.status == "Superseded",
                    "{attempt:#?}"
                );
            }
        }
    }
}

/// Every execution of the pipeline `served`, with its stages.
fn executions(pipeline: &Pipeline) -> Vec<Execution> {
    pipeline
        .run(["list", "--pipeline", "served"])
        .stdout
        .lines()
        .skip(1)
        .filter_map(|line| line.split_whitespace().next())
        .map(|id| pipeline.status(Some(id)))
        .collect()
}

/// Whether span `a` ends before span `b` starts.
fn before(a: &(String, String), b: &(String, String)) -> bool {
    time(&a.1) <= time(&b.0)
}

#[test]
fn e13_superseded_c2_is_replaced_in_front_of_build_and_c3_builds_while_c1_deploys() {
    let e13 = E13::run("superseded", 2);
    assert_eq!(e13.statuses(), ["Succeeded", "Superseded", "Succeeded"]);
    let c2 = &e13.executions[1];
    assert!(
        c2.stages.iter().all(|s| s.stage != "deploy"),
        "c2 never reached deploy: {c2:#?}"
    );
    let (c1_build, c1_deploy) = (e13.span(0, "build"), e13.span(0, "deploy"));
    let c3_build = e13.span(2, "build");
    assert!(
        before(&c1_build, &c3_build),
        "one execution builds at a time"
    );
    assert!(
        time(&c3_build.0) < time(&c1_deploy.1),
        "c3 builds while c1 deploys (stage locks, not a pipeline lock): {c1_deploy:?} {c3_build:?}"
    );
    assert!(before(&c1_deploy, &e13.span(2, "deploy")));
    e13.nothing_interrupted();
}

#[test]
fn e13_queued_deploys_all_three_in_order_one_per_stage_at_a_time() {
    let e13 = E13::run("queued", 3);
    assert_eq!(e13.statuses(), ["Succeeded", "Succeeded", "Succeeded"]);
    for stage in ["build", "deploy"] {
        for pair in [(0, 1), (1, 2)] {
            let (older, newer) = (e13.span(pair.0, stage), e13.span(pair.1, stage));
            assert!(before(&older, &newer), "{stage}: {older:?} then {newer:?}");
        }
    }
    let (c1_deploy, c2_build) = (e13.span(0, "deploy"), e13.span(1, "build"));
    assert!(
        time(&c2_build.0) < time(&c1_deploy.1),
        "c2 builds while c1 deploys: {c1_deploy:?} {c2_build:?}"
    );
    e13.nothing_interrupted();
}

#[test]
fn e13_parallel_runs_all_three_at_once() {
    let e13 = E13::run("parallel", 3);
    assert_eq!(e13.statuses(), ["Succeeded", "Succeeded", "Succeeded"]);
    let builds: Vec<(String, String)> = (0..3).map(|i| e13.span(i, "build")).collect();
    let last_start = builds.iter().map(|b| time(&b.0)).max().expect("builds");
    let first_end = builds.iter().map(|b| time(&b.1)).min().expect("builds");
    assert!(
        last_start < first_end,
        "all three build at once: {builds:?}"
    );
    e13.nothing_interrupted();
}

/// Waits until `pipeline`'s execution of `commit` satisfies `done`, and returns it.
#[track_caller]
fn wait_for(pipeline: &Pipeline, commit: &str, done: impl Fn(&Execution) -> bool) -> Execution {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let found = executions(pipeline)
            .into_iter()
            .find(|e| e.revision.as_deref() == Some(commit));
        match found {
            Some(execution) if done(&execution) => return execution,
            _ if std::time::Instant::now() > deadline => panic!("gave up waiting for {commit}"),
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

#[test]
fn a_stage_retry_over_http_is_refused_while_another_execution_holds_the_stage() {
    let root = tempfile::tempdir().expect("temp dir");
    let (url, work) = repository(root.path());
    let mut commits = vec![git(&work, &["rev-parse", "HEAD"])];
    for message in ["c1", "c2"] {
        std::fs::write(work.join("msg.txt"), format!("{message}\n")).expect("write");
        git(&work, &["commit", "-qam", message]);
        commits.push(git(&work, &["rev-parse", "HEAD"]));
    }
    git(&work, &["push", "-q", &url, "HEAD:main"]);
    let pipeline = Pipeline::new(&format!(
        "name: served\nsource:\n  repo: {url}\n  branch: main\nexecution_mode: queued\n\
         defaults:\n  image: runner/test\nstages:\n\
         \x20 - name: source\n    actions:\n      - name: checkout\n        type: source\n        outputs: [Src]\n\
         \x20 - name: build\n    actions:\n      - name: compile\n        type: build\n        inputs: [Src]\n\
         \x20       buildspec_inline: |\n          version: 0.2\n          phases:\n            build:\n              commands:\n                - if grep -q c1 msg.txt; then exit 1; fi\n                - sleep 6\n"
    ));
    let secret_file = root.path().join("secret");
    std::fs::write(&secret_file, SECRET).expect("write");
    let token_file = root.path().join("token");
    std::fs::write(&token_file, TOKEN).expect("write");
    let (secret_arg, token_arg) = (
        secret_file.display().to_string(),
        token_file.display().to_string(),
    );
    let (serve, address) = serve_on_loopback(
        &pipeline,
        &[
            "--webhook-secret-file",
            &secret_arg,
            "--api-token-file",
            &token_arg,
        ],
    );
    let push = |index: usize| {
        let body = push_body(&commits[index - 1], &commits[index]);
        let (status, text) = deliver(&address, &body, &format!("d{index}"), Some(&sign(&body)));
        assert_eq!(status, 202, "{text}");
    };
    push(1);
    let c1 = wait_for(&pipeline, &commits[1], |e| e.ended_at.is_some());
    assert_eq!(c1.status, "Failed", "{c1:#?}");
    push(2);
    wait_for(&pipeline, &commits[2], |e| {
        e.stages
            .iter()
            .any(|s| s.stage == "build" && s.ended_at.is_none())
    });
    let path = format!("/api/v1/executions/{}/stages/build/retry", c1.id);
    let (status, body) = request(&address, "POST", &path, Some(TOKEN), "");
    assert_eq!(status, 409, "{body}");
    assert!(
        body.contains("another execution is in stage build"),
        "{body}"
    );
    let c1_after = pipeline.status(Some(&c1.id));
    assert_eq!(
        c1_after.status, "Failed",
        "a refused retry leaves it as it was"
    );
    std::process::Command::new("kill")
        .args(["-TERM", &serve.pid().to_string()])
        .status()
        .expect("kill");
    serve.finish(Duration::from_secs(60)).code(0);
}

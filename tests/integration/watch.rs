//! `runner watch`: polling a repository starts the pipeline on each new head of the branch, once,
//! and only when the trigger filters match (issue 5, P28–P30).

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::pipeline::{Pipeline, bare_repository, git};

/// A bare repository with one commit on `main` (a buildspec that prints `msg.txt`), and a work
/// clone to push more commits from.
fn repository(root: &Path) -> (String, std::path::PathBuf) {
    let buildspec = "version: 0.2\nphases:\n  build:\n    commands:\n      - cat msg.txt\n";
    bare_repository(
        root,
        "repo.git",
        &[("buildspec.yml", buildspec), ("msg.txt", "one\n")],
    )
}

fn push(work: &Path, url: &str, file: &str, content: &str) {
    std::fs::create_dir_all(work.join(file).parent().expect("parent")).expect("mkdir");
    std::fs::write(work.join(file), content).expect("write");
    git(work, &["add", "."]);
    git(work, &["commit", "-qm", content.trim()]);
    git(work, &["push", "-q", url, "HEAD:main"]);
}

fn pipeline(url: &str, triggers: &str) -> Pipeline {
    Pipeline::new(&format!(
        "name: watched\nsource:\n  repo: {url}\n  branch: main\n{triggers}defaults:\n  image: runner/test\nstages:\n  - name: source\n    actions:\n      - name: checkout\n        type: source\n        outputs: [Src]\n  - name: build\n    actions:\n      - name: echo\n        type: build\n        inputs: [Src]\n"
    ))
}

fn executions(stdout: &str) -> usize {
    stdout
        .lines()
        .filter(|l| l.starts_with("==> execution ") && l.contains(" of watched at "))
        .count()
}

/// Waits until `count` executions ended in `watch`'s output, so their build containers are
/// gone before the test kills the watch (a killed runner leaves its last container behind).
#[track_caller]
fn wait_ended(watch: &crate::support::pipeline::Running, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let ended = |stdout: &str| {
        stdout
            .lines()
            .filter(|l| l.starts_with("==> execution ") && l.ends_with(" Succeeded"))
            .count()
    };
    while ended(&watch.stdout()) < count {
        assert!(Instant::now() < deadline, "{}", watch.stdout());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
#[expect(
    clippy::print_stderr,
    reason = "the latency is worth seeing in the test output"
)]
fn watch_runs_the_pipeline_once_per_new_head() {
    let root = tempfile::tempdir().expect("temp dir");
    let (url, work) = repository(root.path());
    let pipeline = pipeline(&url, "");
    let args = [
        "watch",
        "--repo",
        url.as_str(),
        "--pipeline",
        "{pipeline}",
        "--interval",
        "1s",
    ];
    let mut watch = pipeline.spawn(args);
    watch.wait_for("[build.echo] one", Duration::from_secs(90));
    watch.wait_for("Succeeded", Duration::from_secs(30));

    push(&work, &url, "msg.txt", "two\n");
    let pushed = Instant::now();
    watch.wait_for("[build.echo] two", Duration::from_secs(90));
    let waited = pushed.elapsed();
    assert_eq!(executions(&watch.stdout()), 2, "{}", watch.stdout());
    wait_ended(&watch, 2);
    watch.kill_9();
    eprintln!("push to build output: {waited:?}");

    // A restarted watch knows the head was built and starts nothing for it.
    let mut again = pipeline.spawn(args);
    std::thread::sleep(Duration::from_secs(4));
    assert!(again.is_running());
    assert_eq!(executions(&again.stdout()), 0, "{}", again.stdout());
    push(&work, &url, "msg.txt", "three\n");
    again.wait_for("[build.echo] three", Duration::from_secs(90));
    assert_eq!(executions(&again.stdout()), 1, "{}", again.stdout());
    wait_ended(&again, 1);
    again.kill_9();
    let list = pipeline.run(["list"]);
    assert_eq!(
        list.stdout
            .lines()
            .filter(|l| l.contains(" watched "))
            .count(),
        3,
        "{}",
        list.stdout
    );
}

#[test]
fn p28_watch_skips_a_push_that_matches_no_file_filter() {
    let root = tempfile::tempdir().expect("temp dir");
    let (url, work) = repository(root.path());
    let triggers = "  triggers:\n    push:\n      - branches: {includes: [main]}\n        file_paths: {includes: [\"src/**\"]}\n";
    let pipeline = pipeline(&url, triggers);
    let args = [
        "watch",
        "--repo",
        url.as_str(),
        "--pipeline",
        "{pipeline}",
        "--interval",
        "1s",
    ];
    let mut watch = pipeline.spawn(args);
    // The first head has no previous commit to diff: its files are everything it holds, and
    // none is under src/, so nothing starts.
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(executions(&watch.stdout()), 0, "{}", watch.stdout());
    push(&work, &url, "docs/readme.md", "docs only\n");
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(executions(&watch.stdout()), 0, "{}", watch.stdout());
    push(&work, &url, "src/app.txt", "code\n");
    watch.wait_for(" of watched at ", Duration::from_secs(60));
    wait_ended(&watch, 1);
    assert_eq!(executions(&watch.stdout()), 1, "{}", watch.stdout());
    watch.kill_9();
}

#[test]
fn serve_with_a_config_file_polls_the_pipelines_it_watches() {
    let root = tempfile::tempdir().expect("temp dir");
    let (url, work) = repository(root.path());
    let pipeline = pipeline(&url, "");
    let config = root.path().join("runner.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\nshutdown_grace = \"5s\"\n\n[[pipeline]]\nfile = \"{}\"\nwatch = true\ninterval = \"1s\"\n",
            pipeline.pipeline_file().display()
        ),
    )
    .expect("write the config");
    let mut serve = pipeline.spawn(["serve", "--config", config.to_str().expect("utf-8")]);
    serve.wait_for(
        "==> listening on http://127.0.0.1:",
        Duration::from_secs(60),
    );
    serve.wait_for("[build.echo] one", Duration::from_secs(90));
    push(&work, &url, "msg.txt", "two\n");
    serve.wait_for("[build.echo] two", Duration::from_secs(90));
    wait_ended(&serve, 2);
    serve.kill_9();
    assert_eq!(listed(&pipeline, " PollForSourceChanges "), 2);
}

/// How many of `runner list --pipeline watched`'s lines hold `text`.
fn listed(pipeline: &Pipeline, text: &str) -> usize {
    let list = pipeline.run(["list", "--pipeline", "watched"]);
    list.stdout.lines().filter(|l| l.contains(text)).count()
}

#[test]
fn a_push_both_its_webhook_and_the_poll_report_starts_once() {
    let root = tempfile::tempdir().expect("temp dir");
    // Under `acme/app.git`, so the repository serves GitHub's `acme/app` for the webhook.
    let (url, work) = crate::serve::repository(root.path());
    let pipeline = pipeline(&url, "");
    let secret = root.path().join("secret");
    std::fs::write(&secret, crate::serve::SECRET).expect("write the secret");
    let config = root.path().join("runner.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\nshutdown_grace = \"5s\"\nwebhook_secret_file = \"{}\"\n\n[[pipeline]]\nfile = \"{}\"\nwatch = true\ninterval = \"1s\"\n",
            secret.display(),
            pipeline.pipeline_file().display()
        ),
    )
    .expect("write the config");
    let mut serve = pipeline.spawn(["serve", "--config", config.to_str().expect("utf-8")]);
    let address = crate::serve::listening_address(&mut serve);
    serve.wait_for("[build.echo] one", Duration::from_secs(90));
    wait_ended(&serve, 1);

    let before = git(&work, &["rev-parse", "HEAD"]);
    push(&work, &url, "msg.txt", "two\n");
    let after = git(&work, &["rev-parse", "HEAD"]);
    let body = crate::serve::push_body(&before, &after);
    let signature = crate::serve::sign(&body);
    let (status, text) = crate::serve::deliver(&address, &body, "delivery-1", Some(&signature));
    assert_eq!(status, 202, "{text}");
    serve.wait_for("[build.echo] two", Duration::from_secs(90));
    wait_ended(&serve, 2);
    // Several polls later the poll has seen the new head too; it started nothing more.
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(executions(&serve.stdout()), 2, "{}", serve.stdout());
    serve.kill_9();
    assert_eq!(listed(&pipeline, " watched "), 2);
}

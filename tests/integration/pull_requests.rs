//! Pull-request webhooks through `runner serve` (P25, P28, P29): a PR whose changes pass the
//! `file_paths` filter builds its head commit; one that changes only other files, or an event
//! the filters do not list, starts nothing and the log says why.

use std::time::Duration;

use crate::serve::{SECRET, deliver_event, repository, serve_on_loopback, sign};
use crate::support::pipeline::{Pipeline, git};

/// A `pull_request` delivery body: PR `number` of `head` (on branch `head_ref`) into main at
/// `base`.
fn pr_body(action: &str, number: u32, head: &str, head_ref: &str, base: &str) -> String {
    format!(
        r#"{{"action": "{action}", "number": {number}, "repository": {{"full_name": "acme/app"}},
            "pull_request": {{"merged": false,
              "head": {{"sha": "{head}", "ref": "{head_ref}"}},
              "base": {{"sha": "{base}", "ref": "main"}}}}}}"#
    )
}

/// Commits `file` on a new branch `name` off main and pushes it; returns the commit id.
fn branch_with(work: &std::path::Path, url: &str, name: &str, file: &str) -> String {
    git(work, &["checkout", "-q", "-b", name, "main"]);
    let path = work.join(file);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(&path, format!("{name}\n")).expect("write");
    git(work, &["add", "."]);
    git(work, &["commit", "-qm", name]);
    git(work, &["push", "-q", url, &format!("HEAD:{name}")]);
    git(work, &["rev-parse", "HEAD"])
}

#[test]
fn p29_a_pull_request_builds_its_head_only_when_its_files_pass_the_filter() {
    let root = tempfile::tempdir().expect("temp dir");
    let (url, work) = repository(root.path());
    let base = git(&work, &["rev-parse", "HEAD"]);
    let code = branch_with(&work, &url, "feature/code", "src/app.txt");
    let docs = branch_with(&work, &url, "feature/docs", "docs/guide.md");
    let pipeline = Pipeline::new(&format!(
        "name: served\nsource:\n  repo: {url}\n  branch: main\n  triggers:\n    pull_request:\n\
         \x20     - branches: {{includes: [main]}}\n        file_paths: {{includes: ['src/**']}}\n\
         \x20       events: [open, updated]\n\
         defaults:\n  image: runner/test\nstages:\n\
         \x20 - name: source\n    actions:\n      - name: checkout\n        type: source\n        outputs: [Src]\n\
         \x20 - name: build\n    actions:\n      - name: compile\n        type: build\n        inputs: [Src]\n\
         \x20       buildspec_inline: |\n          version: 0.2\n          phases:\n            build:\n              commands:\n                - cat src/app.txt\n"
    ))
    .log("runner=info");
    let secret_file = root.path().join("secret");
    std::fs::write(&secret_file, SECRET).expect("write");
    let secret_arg = secret_file.display().to_string();
    let (mut serve, address) =
        serve_on_loopback(&pipeline, &["--webhook-secret-file", &secret_arg]);

    let deliveries = [
        ("opened", 1, &docs, "feature/docs", 202),
        ("closed", 2, &code, "feature/code", 200),
        ("opened", 3, &code, "feature/code", 202),
    ];
    for (action, number, head, head_ref, expected) in deliveries {
        let body = pr_body(action, number, head, head_ref, &base);
        let (status, text) = deliver_event(
            &address,
            "pull_request",
            &body,
            &format!("pr-{number}"),
            Some(&sign(&body)),
        );
        assert_eq!(status, expected, "{action} #{number}: {text}");
    }
    serve.wait_for("==> execution", Duration::from_secs(120));
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let execution = loop {
        let execution = pipeline.status(None);
        if execution.ended_at.is_some() || std::time::Instant::now() > deadline {
            break execution;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(execution.status, "Succeeded", "{execution:#?}");
    assert_eq!(execution.revision.as_deref(), Some(code.as_str()));
    let listed = pipeline
        .run(["list", "--pipeline", "served"])
        .stdout
        .clone();
    assert_eq!(listed.lines().count(), 2, "one execution only:\n{listed}");

    std::process::Command::new("kill")
        .args(["-TERM", &serve.pid().to_string()])
        .status()
        .expect("kill");
    let exited = serve.finish(Duration::from_secs(60));
    exited
        .code(0)
        .stderr_has("the pull request starts nothing")
        .stderr_has(
            "changes no file that passes pull_request[0].file_paths (changed: docs/guide.md)",
        )
        .stderr_has("the event is not in pull_request[0].events");
}

//! `runner serve`: a signed GitHub push webhook starts the pipeline at once (no poll), an
//! unsigned one gets 401 and starts nothing, and a redelivered one starts nothing new (issue 5).

use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use hmac::{Hmac, Mac as _};
use sha2::Sha256;

use crate::support::pipeline::{Pipeline, git};

const SECRET: &str = "webhook-s3cret";

/// A bare repository `<root>/acme/app.git` (so it serves GitHub's `acme/app`) with one commit
/// on `main`, and a work clone to push from.
fn repository(root: &Path) -> (String, std::path::PathBuf) {
    let bare = root.join("acme/app.git");
    let work = root.join("work");
    std::fs::create_dir_all(root.join("acme")).expect("mkdir");
    git(
        root,
        &["init", "-q", "--bare", bare.to_str().expect("utf-8")],
    );
    git(
        root,
        &["init", "-q", "-b", "main", work.to_str().expect("utf-8")],
    );
    std::fs::write(
        work.join("buildspec.yml"),
        "version: 0.2\nphases:\n  build:\n    commands:\n      - cat msg.txt\n",
    )
    .expect("write");
    std::fs::write(work.join("msg.txt"), "one\n").expect("write");
    git(&work, &["add", "."]);
    git(&work, &["commit", "-qm", "one"]);
    let url = format!("file://{}", bare.display());
    git(&work, &["push", "-q", &url, "HEAD:main"]);
    (url, work)
}

/// POSTs a push delivery; returns the status code and the body.
fn deliver(address: &str, body: &str, delivery: &str, signature: Option<&str>) -> (u16, String) {
    let mut stream = TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut request = format!(
        "POST /hooks/github HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         X-GitHub-Event: push\r\nX-GitHub-Delivery: {delivery}\r\nContent-Length: {}\r\n\
         Connection: close\r\n",
        body.len()
    );
    if let Some(signature) = signature {
        let _ = write!(request, "X-Hub-Signature-256: {signature}\r\n");
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not HTTP: {response}"));
    let body = response
        .split_once("\r\n\r\n")
        .map_or("", |(_, body)| body)
        .to_owned();
    (status, body)
}

fn sign(body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("key");
    mac.update(body.as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn push_body(before: &str, after: &str) -> String {
    format!(
        r#"{{"ref": "refs/heads/main", "before": "{before}", "after": "{after}",
            "created": false, "deleted": false, "repository": {{"full_name": "acme/app"}},
            "commits": [{{"id": "{after}", "message": "two", "added": [], "modified": ["msg.txt"], "removed": []}}],
            "head_commit": {{"id": "{after}", "message": "two"}}}}"#
    )
}

fn executions(pipeline: &Pipeline) -> usize {
    let list = pipeline.run(["list"]);
    list.stdout
        .lines()
        .filter(|line| line.contains(" served "))
        .count()
}

#[test]
fn signed_webhook_starts_the_pipeline_and_bad_or_repeated_ones_start_nothing() {
    let root = tempfile::tempdir().expect("temp dir");
    let (url, work) = repository(root.path());
    let pipeline = Pipeline::new(&format!(
        "name: served\nsource:\n  repo: {url}\n  branch: main\ndefaults:\n  image: runner/test\nstages:\n  - name: source\n    actions:\n      - name: checkout\n        type: source\n        outputs: [Src]\n  - name: build\n    actions:\n      - name: echo\n        type: build\n        inputs: [Src]\n"
    ));
    let secret_file = root.path().join("secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).expect("write");
    let secret_arg = secret_file.display().to_string();
    let mut serve = pipeline.spawn([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--pipeline",
        "{pipeline}",
        "--webhook-secret-file",
        secret_arg.as_str(),
    ]);
    serve.wait_for("==> listening on http://", Duration::from_secs(120));
    let stdout = serve.stdout();
    let address = stdout
        .lines()
        .find_map(|line| line.strip_prefix("==> listening on http://"))
        .expect("address")
        .trim()
        .to_owned();

    let before = git(&work, &["rev-parse", "HEAD"]);
    std::fs::write(work.join("msg.txt"), "two\n").expect("write");
    git(&work, &["commit", "-qam", "two"]);
    git(&work, &["push", "-q", &url, "HEAD:main"]);
    let after = git(&work, &["rev-parse", "HEAD"]);
    let body = push_body(&before, &after);

    let (status, text) = deliver(&address, &body, "delivery-0", None);
    assert_eq!(status, 401, "{text}");
    let (status, text) = deliver(&address, &body, "delivery-0", Some(&sign("other")));
    assert_eq!(status, 401, "{text}");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(executions(&pipeline), 0);
    assert!(
        !serve.stdout().contains("==> execution "),
        "{}",
        serve.stdout()
    );

    let (status, text) = deliver(&address, &body, "delivery-1", Some(&sign(&body)));
    assert_eq!(status, 202, "{text}");
    assert!(text.contains(&after), "{text}");
    serve.wait_for("[build.echo] two", Duration::from_secs(120));
    serve.wait_for("Succeeded", Duration::from_secs(60));
    let execution = pipeline.status(None);
    assert_eq!(execution.status, "Succeeded");
    assert_eq!(execution.revision.as_deref(), Some(after.as_str()));

    let (status, text) = deliver(&address, &body, "delivery-1", Some(&sign(&body)));
    assert_eq!(status, 200, "{text}");
    assert!(text.contains(r#""duplicate":true"#), "{text}");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(executions(&pipeline), 1);

    // SIGTERM while an execution runs: it finishes, then serve exits 0.
    std::fs::write(
        work.join("buildspec.yml"),
        "version: 0.2\nphases:\n  build:\n    commands:\n      - sleep 4\n      - cat msg.txt\n",
    )
    .expect("write");
    std::fs::write(work.join("msg.txt"), "three\n").expect("write");
    git(&work, &["commit", "-qam", "three"]);
    git(&work, &["push", "-q", &url, "HEAD:main"]);
    let third = git(&work, &["rev-parse", "HEAD"]);
    let body = push_body(&after, &third);
    let (status, text) = deliver(&address, &body, "delivery-2", Some(&sign(&body)));
    assert_eq!(status, 202, "{text}");
    serve.wait_for(&format!(" of served at {third}"), Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(1));
    std::process::Command::new("kill")
        .args(["-TERM", &serve.pid().to_string()])
        .status()
        .expect("kill");
    let exited = serve.finish(Duration::from_secs(120));
    exited.code(0).stdout_has("[build.echo] three");
    let execution = pipeline.status(None);
    assert_eq!(execution.revision.as_deref(), Some(third.as_str()));
    assert_eq!(execution.status, "Succeeded");
    assert_eq!(executions(&pipeline), 2);
}

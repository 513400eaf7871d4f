//! `runner serve`: a signed GitHub push webhook starts the pipeline at once (no poll), an
//! unsigned one gets 401 and starts nothing, and a redelivered one starts nothing new; a failed
//! stage is retried through the API, and an ended execution's log stream replays it (issue 5).

use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use hmac::{Hmac, Mac as _};
use sha2::Sha256;

use crate::support::pipeline::{Pipeline, SRC, bare_repository, git};

pub(crate) const SECRET: &str = "webhook-s3cret";

/// A bare repository `<root>/acme/app.git` (so it serves GitHub's `acme/app`) with one commit
/// on `main`, and a work clone to push from.
pub(crate) fn repository(root: &Path) -> (String, std::path::PathBuf) {
    let buildspec = "version: 0.2\nphases:\n  build:\n    commands:\n      - cat msg.txt\n";
    bare_repository(
        root,
        "acme/app.git",
        &[("buildspec.yml", buildspec), ("msg.txt", "one\n")],
    )
}

/// POSTs a push delivery; returns the status code and the body.
pub(crate) fn deliver(
    address: &str,
    body: &str,
    delivery: &str,
    signature: Option<&str>,
) -> (u16, String) {
    deliver_event(address, "push", body, delivery, signature)
}

/// POSTs a delivery of `event`; returns the status code and the body.
pub(crate) fn deliver_event(
    address: &str,
    event: &str,
    body: &str,
    delivery: &str,
    signature: Option<&str>,
) -> (u16, String) {
    let mut stream = TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut request = format!(
        "POST /hooks/github HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         X-GitHub-Event: {event}\r\nX-GitHub-Delivery: {delivery}\r\nContent-Length: {}\r\n\
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

pub(crate) fn sign(body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("key");
    mac.update(body.as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

pub(crate) fn push_body(before: &str, after: &str) -> String {
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
    let (mut serve, address) =
        serve_on_loopback(&pipeline, &["--webhook-secret-file", &secret_arg]);

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

/// The API token of [`serve_with_token`].
pub(crate) const TOKEN: &str = "api-t0ken";

/// `runner serve` on a loopback port for `pipeline`, with [`TOKEN`] as its API token; returns
/// the process and `host:port`.
#[track_caller]
pub(crate) fn serve_with_token(pipeline: &Pipeline) -> (crate::support::pipeline::Running, String) {
    let token_file = pipeline.pipeline_file().with_file_name("api-token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).expect("write");
    let token_arg = token_file.display().to_string();
    serve_on_loopback(pipeline, &["--api-token-file", &token_arg])
}

/// `runner serve --pipeline <pipeline>` on a free loopback port with `extra` arguments, once it
/// listens; returns the process and `host:port`.
#[track_caller]
pub(crate) fn serve_on_loopback(
    pipeline: &Pipeline,
    extra: &[&str],
) -> (crate::support::pipeline::Running, String) {
    let mut args = vec![
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--pipeline",
        "{pipeline}",
    ];
    args.extend_from_slice(extra);
    let mut serve = pipeline.spawn(args);
    let address = listening_address(&mut serve);
    (serve, address)
}

/// Waits until `serve` listens and returns the `host:port` it printed.
pub(crate) fn listening_address(serve: &mut crate::support::pipeline::Running) -> String {
    serve.wait_for("==> listening on http://", Duration::from_secs(120));
    serve
        .stdout()
        .lines()
        .find_map(|line| line.strip_prefix("==> listening on http://"))
        .expect("address")
        .trim()
        .to_owned()
}

/// One HTTP/1.1 request (`Bearer token` when given, a JSON `body` when not empty); the status
/// and the body, de-chunked.
pub(crate) fn request(
    address: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, String) {
    let mut stream = TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if !body.is_empty() {
        head.push_str("Content-Type: application/json\r\n");
    }
    if let Some(token) = token {
        let _ = write!(head, "Authorization: Bearer {token}\r\n");
    }
    head.push_str("\r\n");
    head.push_str(body);
    stream.write_all(head.as_bytes()).expect("send");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("read");
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("not HTTP: {}", String::from_utf8_lossy(&response)));
    let headers = String::from_utf8_lossy(&response[..split]).to_ascii_lowercase();
    let status = headers
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("status");
    let mut body = response[split + 4..].to_vec();
    if headers.contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn dechunk(mut chunked: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let Some(end) = chunked.windows(2).position(|w| w == b"\r\n") else {
            return body;
        };
        let size_text = String::from_utf8_lossy(&chunked[..end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .unwrap_or(0);
        if size == 0 {
            return body;
        }
        let start = end + 2;
        body.extend_from_slice(&chunked[start..(start + size).min(chunked.len())]);
        chunked = chunked.get(start + size + 2..).unwrap_or_default();
    }
}

/// `source` → (an approval `gate` when `gate`) → `build` → `deploy`. `build.compile` prints
/// `first-line`, waits `pause` seconds and fails the first time; its second try (the cache
/// kept the marker the first left) prints `second try` and succeeds.
pub(crate) fn flaky_served(name: &str, gate: bool, pause: u32) -> Pipeline {
    let gate = if gate {
        "  - name: gate\n    actions:\n      - {name: approve, type: approval}\n"
    } else {
        ""
    };
    Pipeline::new(&format!(
        r#"name: {name}
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
{gate}  - name: build
    actions:
      - name: compile
        type: build
        inputs: [Src]
        buildspec_inline: |
          version: 0.2
          cache:
            paths:
              - '/root/.flaky/**/*'
          phases:
            build:
              commands:
                - echo first-line
                - if [ -f /root/.flaky/ok ]; then echo "second try"; else sleep {pause}; mkdir -p /root/.flaky && touch /root/.flaky/ok && echo "first try fails" && exit 1; fi
  - name: deploy
    actions:
      - name: ship
        type: build
        inputs: [Src]
        buildspec_inline: |
          version: 0.2
          phases:
            build:
              commands:
                - echo shipped
"#
    ))
    .file("keep.txt", "x\n")
}

/// Retries the API refuses, none of which changes the failed execution `id`.
#[track_caller]
fn assert_retry_refusals(address: &str, id: &str) {
    let retry = format!("/api/v1/executions/{id}/stages/build/retry");
    let refusals = [
        (retry.clone(), None, "", 401),
        (retry.clone(), Some("wrong"), "", 401),
        (format!("{retry}?mode=bogus"), Some(TOKEN), "", 400),
        (retry.clone(), Some(TOKEN), "{not json", 400),
        (
            format!("/api/v1/executions/{id}/stages/nope/retry"),
            Some(TOKEN),
            "",
            404,
        ),
        (
            "/api/v1/executions/nope/stages/build/retry".to_owned(),
            Some(TOKEN),
            "",
            404,
        ),
        (
            format!("/api/v1/executions/{id}/stages/source/retry"),
            Some(TOKEN),
            "",
            409,
        ),
        (
            format!("/api/v1/executions/{id}/stages/deploy/retry"),
            Some(TOKEN),
            "",
            409,
        ),
    ];
    for (path, token, body, expected) in refusals {
        let (status, text) = request(address, "POST", &path, token, body);
        assert_eq!(status, expected, "{path} {token:?} {body}: {text}");
    }
}

/// The stream of the ended execution `id`: every line of the latest attempts, their phases,
/// then the end.
#[track_caller]
fn assert_stream_replays(address: &str, id: &str) {
    let (status, text) = request(
        address,
        "GET",
        &format!("/api/v1/executions/{id}/logs/stream"),
        None,
        "",
    );
    assert_eq!(status, 200, "{text}");
    assert!(
        text.starts_with("event: status\ndata: {\"status\":\"Succeeded\"}"),
        "{text}"
    );
    assert!(
        text.contains(
            "event: phase\ndata: {\"action\":\"build.compile\",\"attempt\":2,\"phase\":\"BUILD\"}"
        ),
        "{text}"
    );
    assert!(text.contains(r#""line":"second try""#), "{text}");
    assert!(text.contains(r#""line":"shipped""#), "{text}");
    assert!(
        !text.contains(r#""line":"first try fails""#),
        "only the latest attempts: {text}"
    );
    assert!(
        text.ends_with("event: end\ndata: {\"status\":\"Succeeded\"}\n\n"),
        "{text}"
    );
}

#[test]
fn api_retry_reruns_a_failed_stage_and_refuses_what_p37_refuses() {
    let pipeline = flaky_served("retried", false, 0);
    let (mut serve, address) = serve_with_token(&pipeline);
    let (status, text) = request(
        &address,
        "POST",
        "/api/v1/pipelines/retried/executions",
        Some(TOKEN),
        "",
    );
    assert_eq!(status, 202, "{text}");
    let id = serve.execution_id();
    serve.wait_for(
        &format!("==> execution {id} Failed"),
        Duration::from_secs(180),
    );
    assert_retry_refusals(&address, &id);
    assert_eq!(
        pipeline.status(Some(&id)).status,
        "Failed",
        "refusals change nothing"
    );

    let retry = format!("/api/v1/executions/{id}/stages/build/retry");
    let (status, text) = request(
        &address,
        "POST",
        &retry,
        Some(TOKEN),
        r#"{"mode": "failed_actions"}"#,
    );
    assert_eq!(status, 202, "{text}");
    assert!(text.contains(&format!(r#""execution":"{id}""#)), "{text}");
    assert!(text.contains(r#""mode":"FAILED_ACTIONS""#), "{text}");
    // Marked InProgress before the answer: a second request is refused at once.
    let (status, text) = request(&address, "POST", &retry, Some(TOKEN), "");
    assert_eq!(status, 409, "{text}");
    assert!(text.contains("is still in progress"), "{text}");
    serve.wait_for(
        &format!("==> execution {id} Succeeded"),
        Duration::from_secs(180),
    );

    let status = pipeline.status(Some(&id));
    assert_eq!(status.status, "Succeeded");
    assert_eq!(status.action("build", "compile").attempt, 2);
    assert_eq!(status.action("deploy", "ship").status, "Succeeded");
    assert_eq!(
        status.stage("build").retry_mode.as_deref(),
        Some("FAILED_ACTIONS")
    );
    let (status, text) = request(&address, "POST", &retry, Some(TOKEN), "");
    assert_eq!(status, 409, "{text}");
    assert!(text.contains("there is nothing to retry (P37)"), "{text}");
    assert_stream_replays(&address, &id);

    std::process::Command::new("kill")
        .args(["-TERM", &serve.pid().to_string()])
        .status()
        .expect("kill");
    serve.finish(Duration::from_secs(60)).code(0);
}

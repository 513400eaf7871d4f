//! AWS faults against moto (issue 4): an endpoint that does not answer when `runner run` starts
//! fails it clearly before any execution is recorded; a KMS key disabled mid-execution fails the
//! action that writes an artifact, naming the key, and `runner retry` succeeds once it is enabled
//! again. (An interrupted upload leaving no object under the final key is covered at the store
//! level by `artifacts::s3::tests::interrupted_multipart_upload_leaves_no_object_and_no_parts`.)

use std::process::Stdio;
use std::time::Duration;

use crate::support::aws::{aws, moto, unique};
use crate::support::pipeline::{Pipeline, SRC};

/// Source → `gate` (a manual approval) → `build` (an action that writes the artifact `Out`), with
/// its artifacts in `bucket` under `key`.
fn gated_pipeline(name: &str, bucket: &str, key: &str) -> Pipeline {
    Pipeline::new(&format!(
        "name: {name}
source:
  repo: {SRC}
  branch: main
artifact_store:
  type: s3
  bucket: {bucket}
  kms_key_id: {key}
defaults:
  image: runner/test
  timeout: 5m
stages:
  - name: source
    actions:
      - {{name: checkout, type: source, outputs: [Src]}}
  - name: gate
    actions:
      - {{name: approve, type: approval}}
  - name: build
    actions:
      - name: package
        type: build
        inputs: [Src]
        outputs: [Out]
        buildspec_inline: |
          version: 0.2
          phases:
            build:
              commands:
                - cp readme.txt packaged.txt
          artifacts:
            files: [packaged.txt]
"
    ))
    .file("readme.txt", "hello\n")
}

#[test]
fn an_endpoint_down_at_start_fails_clearly_and_records_no_execution() {
    if !moto() {
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let pipeline = gated_pipeline("down", "runner-fault-down", "alias/runner-fault-down");
    let output = pipeline
        .command(["run", "--pipeline", "{pipeline}"])
        .env("AWS_ENDPOINT_URL", &endpoint)
        .stdin(Stdio::null())
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "reach the AWS endpoint {endpoint} (HeadBucket on s3://runner-fault-down)"
        )),
        "{stderr}"
    );
    let list = pipeline.run(["list"]);
    list.code(0);
    assert_eq!(
        list.stdout.lines().count(),
        1,
        "only the header: no execution may be recorded\n{}",
        list.stdout
    );
    pipeline
        .run(["status"])
        .code(2)
        .stderr_has("there are no executions yet");
}

#[test]
fn a_disabled_kms_key_fails_the_writing_action_naming_it_until_enabled_and_retried() {
    if !moto() {
        return;
    }
    let suffix = unique();
    let key = aws(&[
        "kms",
        "create-key",
        "--query",
        "KeyMetadata.KeyId",
        "--output",
        "text",
    ]);
    let bucket = format!("runner-fault-{suffix}");
    aws(&["s3api", "create-bucket", "--bucket", &bucket]);
    let pipeline = gated_pipeline(&format!("kms-{suffix}"), &bucket, &key);

    let mut running = pipeline.spawn(["run", "--pipeline", "{pipeline}"]);
    let id = running.execution_id();
    running.wait_for("==> gate.approve started", Duration::from_secs(60));
    aws(&["kms", "disable-key", "--key-id", &key]);
    pipeline
        .run(["approve", id.as_str(), "gate/approve"])
        .code(0);
    running.finish(Duration::from_secs(120)).code(1);
    let failed = pipeline.status(Some(&id));
    assert_eq!(failed.status, "Failed");
    assert_eq!(failed.stage("build").status, "Failed");
    let error = failed
        .action("build", "package")
        .error
        .clone()
        .unwrap_or_default();
    assert!(
        error.contains(&format!("KMS key `{key}`")) && error.contains("disabled"),
        "the error must name the disabled key: {error}"
    );

    aws(&["kms", "enable-key", "--key-id", &key]);
    pipeline.retry("build", &[]).code(0);
    let retried = pipeline.status(Some(&id));
    assert_eq!(retried.status, "Succeeded");
    assert_eq!(retried.stage("build").status, "Succeeded");
    let written = aws(&[
        "s3api",
        "list-objects-v2",
        "--bucket",
        &bucket,
        "--query",
        "length(Contents)",
    ]);
    assert_eq!(written, "2", "the source and the packaged artifact");
}

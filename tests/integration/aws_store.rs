//! The pipeline's artifact store in S3 with SSE-KMS, against moto (issue 4): every artifact
//! object the runner writes is encrypted with the pipeline's key.

use std::process::Command;

use crate::support::pipeline::Pipeline;

/// The AWS CLI from the moto venv `.ci/moto.sh` sets up.
fn aws(args: &[&str]) -> String {
    let venv =
        std::env::var("RUNNER_CI_VENV").unwrap_or_else(|_| "/var/cache/runner-ci/venv".into());
    let output = Command::new(format!("{venv}/bin/aws"))
        .args(args)
        .output()
        .expect("run the AWS CLI from the moto venv");
    assert!(
        output.status.success(),
        "aws {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

#[test]
fn p14_example_pipeline_with_an_s3_kms_artifact_store() {
    if std::env::var("AWS_ENDPOINT_URL").is_err() {
        eprintln!(
            "skipped: AWS_ENDPOINT_URL is not set (run `eval \"$(bash .ci/moto.sh)\"` for moto)"
        );
        return;
    }
    let key = aws(&[
        "kms",
        "create-key",
        "--query",
        "KeyMetadata.KeyId",
        "--output",
        "text",
    ]);
    let bucket = format!("runner-test-{}", &uuid_like()[..12]);
    aws(&["s3api", "create-bucket", "--bucket", &bucket]);
    let store = format!("artifact_store:\n  type: s3\n  bucket: {bucket}\n  kms_key_id: {key}\n");
    let pipeline = Pipeline::example_variant(&[("artifact_store:\n  type: local\n", &store)]);
    let ran = pipeline.run_pipeline(&[]);
    ran.code(0);
    let keys = aws(&[
        "s3api",
        "list-objects-v2",
        "--bucket",
        &bucket,
        "--query",
        "Contents[].Key",
        "--output",
        "text",
    ]);
    let keys: Vec<&str> = keys.split_whitespace().collect();
    // The source, InfraOutput, two service packages and the site.
    assert!(keys.len() >= 5, "objects: {keys:?}");
    for object in keys {
        let head = aws(&[
            "s3api",
            "head-object",
            "--bucket",
            &bucket,
            "--key",
            object,
            "--output",
            "json",
        ]);
        assert!(
            head.contains("\"ServerSideEncryption\": \"aws:kms\""),
            "{object}: {head}"
        );
        assert!(
            head.contains(&key),
            "{object} is not encrypted with {key}: {head}"
        );
    }
    // A second execution reuses the store; nothing is written locally for artifacts.
    assert!(
        !pipeline.data().join("artifacts/objects").exists()
            || pipeline.artifact_objects().is_empty()
    );
}

fn uuid_like() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_nanos()
    )
}

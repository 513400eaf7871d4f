//! The pipeline's artifact store in S3 with SSE-KMS, against moto (issue 4): every artifact is a
//! ZIP object (P13) encrypted with the pipeline's key (P14).

use std::process::Command;

use crate::support::aws::{aws, moto, unique};
use crate::support::pipeline::Pipeline;

/// A new KMS key and bucket, and the bundled example pipeline storing its artifacts there
/// under `prefix`; returns the pipeline, the bucket and the key id.
fn example_on_s3(prefix: Option<&str>) -> (Pipeline, String, String) {
    let key = aws(&[
        "kms",
        "create-key",
        "--query",
        "KeyMetadata.KeyId",
        "--output",
        "text",
    ]);
    let bucket = format!("runner-test-{}", unique());
    aws(&["s3api", "create-bucket", "--bucket", &bucket]);
    let prefix = prefix.map_or_else(String::new, |p| format!("  prefix: {p}\n"));
    let store =
        format!("artifact_store:\n  type: s3\n  bucket: {bucket}\n{prefix}  kms_key_id: {key}\n");
    let pipeline = Pipeline::example_variant(&[("artifact_store:\n  type: local\n", &store)]);
    (pipeline, bucket, key)
}

/// The keys of every object in `bucket`.
fn object_keys(bucket: &str) -> Vec<String> {
    let keys = aws(&[
        "s3api",
        "list-objects-v2",
        "--bucket",
        bucket,
        "--query",
        "Contents[].Key",
        "--output",
        "text",
    ]);
    keys.split_whitespace().map(str::to_owned).collect()
}

/// P13: each output artifact is one ZIP object in the pipeline's bucket. Deviation, by design:
/// keys are `<prefix>/<SHA-256 of the ZIP>` (content-addressed, shared by every store), not
/// `<pipeline>/<artifact>/<random id>`; the prefix is where a per-pipeline folder goes.
#[test]
fn p13_each_output_artifact_is_a_zip_object_named_by_its_digest() {
    if !moto() {
        return;
    }
    let (pipeline, bucket, _) = example_on_s3(Some("p13/shop"));
    pipeline.run_pipeline(&[]).code(0);
    let keys = object_keys(&bucket);
    // The source, InfraOutput, two service packages and the site.
    assert!(keys.len() >= 5, "objects: {keys:?}");
    let download = tempfile::tempdir().expect("temp dir");
    for key in keys {
        let digest = key
            .strip_prefix("p13/shop/")
            .unwrap_or_else(|| panic!("{key} is not under the prefix"));
        let path = download.path().join(digest);
        aws(&[
            "s3api",
            "get-object",
            "--bucket",
            &bucket,
            "--key",
            &key,
            path.to_str().expect("utf-8"),
        ]);
        let body = std::fs::read(&path).expect("read the object");
        assert!(body.starts_with(b"PK\x03\x04"), "{key} is not a ZIP");
        let sha = Command::new("sha256sum")
            .arg(&path)
            .output()
            .expect("run sha256sum");
        let sha = String::from_utf8_lossy(&sha.stdout);
        assert_eq!(sha.split_whitespace().next(), Some(digest), "{key}");
    }
}

#[test]
fn p14_example_pipeline_with_an_s3_kms_artifact_store() {
    if !moto() {
        return;
    }
    let (pipeline, bucket, key) = example_on_s3(None);
    let ran = pipeline.run_pipeline(&[]);
    ran.code(0);
    let keys = object_keys(&bucket);
    // The source, InfraOutput, two service packages and the site.
    assert!(keys.len() >= 5, "objects: {keys:?}");
    for object in &keys {
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

//! Real S3 + KMS tests against moto: run `eval "$(bash .ci/moto.sh)"` first. They skip, saying
//! so, only when `AWS_ENDPOINT_URL` is unset; CI always sets it.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use aws_sdk_s3::types::ServerSideEncryption;
use base64::Engine as _;
use tokio::io::ReadBuf;

use super::*;
use crate::aws::AwsError;

/// The moto endpoint, or `None` after saying why the test does nothing.
#[expect(clippy::print_stderr, reason = "a skipped test must say why")]
fn endpoint() -> Option<String> {
    match std::env::var("AWS_ENDPOINT_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!(
                "skipping: AWS_ENDPOINT_URL is not set; run `eval \"$(bash .ci/moto.sh)\"` first"
            );
            None
        }
    }
}

fn unique(kind: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("runner-{kind}-{}-{nanos}-{count}", std::process::id())
}

struct Fixture {
    aws: AwsConfig,
    bucket: String,
    key_id: String,
    dir: tempfile::TempDir,
}

impl Fixture {
    /// A fresh bucket and KMS key on moto.
    async fn new() -> Option<Self> {
        let endpoint = endpoint()?;
        let aws = AwsConfig::load(Some("us-east-1".to_owned()), Some(endpoint))
            .await
            .unwrap();
        let bucket = unique("bucket");
        aws.s3()
            .sdk()
            .create_bucket()
            .bucket(&bucket)
            .send()
            .await
            .unwrap();
        let key = aws.kms().sdk().create_key().send().await.unwrap();
        let key_id = key.key_metadata.unwrap().key_id;
        Some(Self {
            aws,
            bucket,
            key_id,
            dir: tempfile::tempdir().unwrap(),
        })
    }

    fn config(&self, encryption: S3Encryption) -> S3StoreConfig {
        S3StoreConfig {
            bucket: self.bucket.clone(),
            prefix: "pipelines/demo/".to_owned(),
            encryption,
        }
    }

    async fn store(&self, encryption: S3Encryption) -> S3ArtifactStore {
        S3ArtifactStore::connect(&self.aws, self.config(encryption))
            .await
            .unwrap()
            .with_temp_dir(self.dir.path())
    }

    fn sse(&self) -> S3Encryption {
        S3Encryption::SseKms {
            key_id: self.key_id.clone(),
        }
    }

    fn envelope(&self) -> S3Encryption {
        S3Encryption::Envelope {
            key_id: self.key_id.clone(),
        }
    }

    fn file(&self, name: &str, content: &[u8]) -> PathBuf {
        let path = self.dir.path().join(name);
        fs_err::write(&path, content).unwrap();
        path
    }

    /// `HeadObject` of the object for `reference`, with the checksums S3 keeps for it.
    async fn head(
        &self,
        store: &S3ArtifactStore,
        reference: &ArtifactRef,
    ) -> aws_sdk_s3::operation::head_object::HeadObjectOutput {
        self.aws
            .s3()
            .sdk()
            .head_object()
            .bucket(&self.bucket)
            .key(store.object_key(&reference.digest))
            .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
            .send()
            .await
            .unwrap()
    }

    /// The stored bytes of the object for `reference`, as S3 returns them.
    async fn raw_object(&self, store: &S3ArtifactStore, reference: &ArtifactRef) -> Vec<u8> {
        let output = self
            .aws
            .s3()
            .sdk()
            .get_object()
            .bucket(&self.bucket)
            .key(store.object_key(&reference.digest))
            .send()
            .await
            .unwrap();
        output.body.collect().await.unwrap().to_vec()
    }

    async fn set_key_enabled(&self, enabled: bool) {
        let kms = self.aws.kms();
        if enabled {
            kms.sdk()
                .enable_key()
                .key_id(&self.key_id)
                .send()
                .await
                .unwrap();
        } else {
            kms.sdk()
                .disable_key()
                .key_id(&self.key_id)
                .send()
                .await
                .unwrap();
        }
    }
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|index| u8::try_from(index * 7 % 253).unwrap())
        .collect()
}

/// The error and its sources, joined as `{:#}` would print them.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[tokio::test]
async fn sse_kms_round_trip_records_the_pipeline_key() {
    let Some(fixture) = Fixture::new().await else {
        return;
    };
    let store = fixture.store(fixture.sse()).await;
    let content = b"zip bytes".repeat(1000);
    let reference = store.put(&fixture.file("a.zip", &content)).await.unwrap();
    assert_eq!(reference.digest, Sha256Hex::of_bytes(&content));
    let key = store.object_key(&reference.digest);
    assert_eq!(key, format!("pipelines/demo/{}", reference.digest));

    let head = fixture.head(&store, &reference).await;
    assert_eq!(
        head.server_side_encryption(),
        Some(&ServerSideEncryption::AwsKms)
    );
    assert!(head.ssekms_key_id().unwrap().ends_with(&fixture.key_id));
    let metadata = head.metadata().unwrap();
    assert_eq!(metadata[META_SHA256], reference.digest.as_str());
    assert_eq!(metadata[META_FORMAT], FORMAT_PLAIN);

    let dest = fixture.dir.path().join("out.zip");
    store.get(&reference, &dest).await.unwrap();
    assert_eq!(fs_err::read(&dest).unwrap(), content);
    assert!(store.exists(&reference).await.unwrap());
}

#[tokio::test]
async fn envelope_round_trip_stores_no_plaintext() {
    let Some(fixture) = Fixture::new().await else {
        return;
    };
    let store = fixture.store(fixture.envelope()).await;
    let content = b"SECRET-TOKEN ".repeat(20_000);
    let reference = store.put(&fixture.file("a.zip", &content)).await.unwrap();
    let raw = fixture.raw_object(&store, &reference).await;
    assert_eq!(&raw[..4], b"RNAE");
    assert_eq!(raw[5], crate::artifacts::envelope::KeyScheme::AwsKms.id());
    assert!(!raw.windows(13).any(|window| window == b"SECRET-TOKEN "));

    let dest = fixture.dir.path().join("out.zip");
    store.get(&reference, &dest).await.unwrap();
    assert_eq!(fs_err::read(&dest).unwrap(), content);
}

#[tokio::test]
async fn forty_mib_file_goes_multipart_and_round_trips() {
    let Some(fixture) = Fixture::new().await else {
        return;
    };
    let content = pattern(40 * 1024 * 1024);
    let source = fixture.file("big.zip", &content);
    for encryption in [fixture.sse(), fixture.envelope()] {
        let store = fixture.store(encryption).await;
        let reference = store.put(&source).await.unwrap();
        assert_eq!(reference.size, content.len() as u64);
        let head = fixture.head(&store, &reference).await;
        // A multipart ETag ends in `-<number of parts>`: parts of 8 MiB (the envelope adds a
        // little, so it may need one more).
        let size = u64::try_from(head.content_length().unwrap()).unwrap();
        let parts = size.div_ceil(8 * 1024 * 1024);
        assert!(parts >= 5);
        let etag = head.e_tag().unwrap().trim_matches('"').to_owned();
        assert!(
            etag.ends_with(&format!("-{parts}")),
            "{etag} for {size} bytes"
        );
        // Every part went with its CRC32: S3 keeps their composite checksum, as for the CLI's.
        let stored = fixture.raw_object(&store, &reference).await;
        // S3 writes the part count after a `-`; moto's HeadObject leaves it out.
        let reported = head.checksum_crc32().unwrap();
        let (crc, count) = composite_crc32(&stored, 8 * 1024 * 1024);
        assert!(
            reported == crc || reported == format!("{crc}-{count}"),
            "{reported} is not the composite CRC32 {crc} of {count} parts"
        );
        let dest = fixture.dir.path().join("big.out");
        store.get(&reference, &dest).await.unwrap();
        assert!(fs_err::read(&dest).unwrap() == content);
    }
}

#[tokio::test]
async fn single_put_carries_its_crc32() {
    let Some(fixture) = Fixture::new().await else {
        return;
    };
    let store = fixture.store(fixture.sse()).await;
    let content = pattern(100_000);
    let reference = store.put(&fixture.file("a.zip", &content)).await.unwrap();
    let head = fixture.head(&store, &reference).await;
    let expected =
        base64::engine::general_purpose::STANDARD.encode(crc32fast::hash(&content).to_be_bytes());
    assert_eq!(head.checksum_crc32(), Some(expected.as_str()));
}

/// S3's composite CRC32 of an object uploaded in parts of `part` bytes (the CRC32 of the
/// parts' CRC32s, base64), and the number of parts.
fn composite_crc32(bytes: &[u8], part: usize) -> (String, usize) {
    let crcs: Vec<u8> = bytes
        .chunks(part)
        .flat_map(|chunk| crc32fast::hash(chunk).to_be_bytes())
        .collect();
    let crc = crc32fast::hash(&crcs).to_be_bytes();
    (
        base64::engine::general_purpose::STANDARD.encode(crc),
        bytes.len().div_ceil(part),
    )
}

#[tokio::test]
async fn overwritten_object_is_reported_as_tampered() {
    let Some(fixture) = Fixture::new().await else {
        return;
    };
    for encryption in [fixture.sse(), fixture.envelope()] {
        let store = fixture.store(encryption).await;
        let reference = store
            .put(&fixture.file("a.zip", b"original"))
            .await
            .unwrap();
        fixture
            .aws
            .s3()
            .sdk()
            .put_object()
            .bucket(&fixture.bucket)
            .key(store.object_key(&reference.digest))
            .body(b"forged!!"[..].to_vec().into())
            .send()
            .await
            .unwrap();
        let dest = fixture.file("dest", b"untouched");
        let error = store.get(&reference, &dest).await.unwrap_err();
        assert!(matches!(error, ArtifactError::Tampered { .. }), "{error:?}");
        assert_eq!(fs_err::read(&dest).unwrap(), b"untouched");
    }
}

#[tokio::test]
async fn missing_bucket_is_named() {
    let Some(fixture) = Fixture::new().await else {
        return;
    };
    let config = S3StoreConfig {
        bucket: unique("absent"),
        ..fixture.config(fixture.sse())
    };
    let error = S3ArtifactStore::connect(&fixture.aws, config.clone())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ArtifactError::Aws(AwsError::NoSuchBucket { bucket, .. }) if *bucket == config.bucket),
        "{error:?}"
    );
    assert!(error.to_string().contains(&config.bucket));

    // A bucket that disappears after startup is named too.
    let store = fixture.store(fixture.sse()).await;
    fixture
        .aws
        .s3()
        .sdk()
        .delete_bucket()
        .bucket(&fixture.bucket)
        .send()
        .await
        .unwrap();
    let error = store.put(&fixture.file("a.zip", b"x")).await.unwrap_err();
    assert!(
        matches!(&error, ArtifactError::Aws(AwsError::NoSuchBucket { .. })),
        "{error:?}"
    );
    assert!(error.to_string().contains(&fixture.bucket), "{error}");
}

#[tokio::test]
async fn missing_kms_key_is_named() {
    let Some(fixture) = Fixture::new().await else {
        return;
    };
    let config = fixture.config(S3Encryption::SseKms {
        key_id: "alias/runner-no-such-key".to_owned(),
    });
    let error = S3ArtifactStore::connect(&fixture.aws, config)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ArtifactError::Aws(AwsError::KmsKeyNotFound { .. })),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("alias/runner-no-such-key"),
        "{error}"
    );
}

#[tokio::test]
async fn disabled_kms_key_fails_put_naming_the_key_until_enabled_again() {
    let Some(fixture) = Fixture::new().await else {
        return;
    };
    let source = fixture.file("a.zip", b"artifact");
    for encryption in [fixture.sse(), fixture.envelope()] {
        let store = fixture.store(encryption).await;
        fixture.set_key_enabled(false).await;
        let error = store.put(&source).await.unwrap_err();
        assert!(
            matches!(&error, ArtifactError::Aws(AwsError::KmsKeyDisabled { .. })),
            "{error:?}"
        );
        assert!(chain(&error).contains(&fixture.key_id), "{error}");
        assert!(chain(&error).contains("disabled"), "{error}");
        fixture.set_key_enabled(true).await;
        let reference = store.put(&source).await.unwrap();
        assert!(store.exists(&reference).await.unwrap());
    }
}

#[tokio::test]
async fn unreachable_endpoint_is_named() {
    if endpoint().is_none() {
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let aws = AwsConfig::load(Some("us-east-1".to_owned()), Some(url.clone()))
        .await
        .unwrap();
    let config = S3StoreConfig {
        bucket: "artifacts".to_owned(),
        prefix: String::new(),
        encryption: S3Encryption::ManagedKey,
    };
    let error = S3ArtifactStore::connect(&aws, config).await.unwrap_err();
    assert!(
        matches!(&error, ArtifactError::Aws(AwsError::Unreachable { .. })),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!("reach the AWS endpoint {url} (HeadBucket on s3://artifacts)")
    );
}

/// Yields `remaining` bytes, then fails: a disk or pipe that breaks mid-upload.
struct FailingReader {
    remaining: usize,
}

impl tokio::io::AsyncRead for FailingReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _context: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.remaining == 0 {
            return Poll::Ready(Err(io::Error::other("the disk went away")));
        }
        let count = self.remaining.min(buf.remaining());
        buf.put_slice(&vec![0x42; count]);
        self.remaining -= count;
        Poll::Ready(Ok(()))
    }
}

#[tokio::test]
async fn interrupted_multipart_upload_leaves_no_object_and_no_parts() {
    let Some(fixture) = Fixture::new().await else {
        return;
    };
    let store = fixture.store(fixture.sse()).await;
    let reference = ArtifactRef {
        digest: Sha256Hex::of_bytes(b"never completed"),
        size: 40 * 1024 * 1024,
    };
    let source = fixture.dir.path().join("broken.zip");
    let expected = upload::Expected {
        len: reference.size,
        digest: Some(&reference.digest),
        source: &source,
    };
    let reader = FailingReader {
        remaining: 20 * 1024 * 1024,
    };
    let error = store
        .upload(&reference, reader, expected, FORMAT_PLAIN)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ArtifactError::Io { action: "read", .. }),
        "{error:?}"
    );

    assert!(!store.exists(&reference).await.unwrap());
    let uploads = fixture
        .aws
        .s3()
        .sdk()
        .list_multipart_uploads()
        .bucket(&fixture.bucket)
        .send()
        .await
        .unwrap();
    assert!(uploads.uploads().is_empty(), "{:?}", uploads.uploads());
}

#[tokio::test]
async fn deleted_artifact_is_missing() {
    let Some(fixture) = Fixture::new().await else {
        return;
    };
    let store = fixture.store(S3Encryption::ManagedKey).await;
    let reference = store
        .put(&fixture.file("a.zip", b"short-lived"))
        .await
        .unwrap();
    assert!(store.exists(&reference).await.unwrap());
    store.delete(&reference).await.unwrap();
    store.delete(&reference).await.unwrap();
    assert!(!store.exists(&reference).await.unwrap());
    let error = store
        .get(&reference, &fixture.dir.path().join("out"))
        .await
        .unwrap_err();
    assert!(matches!(error, ArtifactError::Missing { .. }), "{error:?}");
}

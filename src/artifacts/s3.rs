//! The S3 artifact store: objects under `<prefix>/<digest>`, always SSE-KMS, optionally also
//! sealed client-side in the [`envelope`](super::envelope) format with a KMS data key.
//!
//! Keys are content-addressed, not P13's `<pipeline>/<artifact>/<random id>`: the
//! [`ArtifactStore`] trait names objects by digest, so refs mean the same in every store and
//! equal content is stored once. A caller wanting D-13's per-pipeline prefix passes it as
//! `prefix`. `put` hashes the file first (the digest names the object), then uploads it from a
//! bounded buffer, hashing again so a file that changed in between is refused. `get` streams
//! the body into a temporary file beside `dest`, checks digest and size, then renames it.

mod download;
mod key_wrapper;
#[cfg(all(test, feature = "aws-tests"))]
mod tests;
mod upload;

use std::io::{BufWriter, Read as _, Seek as _};
use std::path::{Path, PathBuf};

use tokio_util::io::SyncIoBridge;

use self::download::{Failure, lift_kms_failure, restore, temp_file_in};
use super::digest::Hashing;
use super::envelope::{EnvelopeError, Header, Opener, Sealer};
use super::{ArtifactError, ArtifactRef, ArtifactStore, Sha256Hex, io_error};
use crate::aws::{AwsConfig, AwsError, KmsClient, NewObject, Resource, S3Client};

pub use key_wrapper::KmsKeyWrapper;

/// Object metadata: SHA-256 of the plaintext.
const META_SHA256: &str = "runner-sha256";
/// Object metadata: plaintext length.
const META_SIZE: &str = "runner-size";
/// Object metadata: `plain`, or [`FORMAT_ENVELOPE`] for a client-side sealed object.
const META_FORMAT: &str = "runner-format";
const FORMAT_PLAIN: &str = "plain";
const FORMAT_ENVELOPE: &str = "envelope-v1";

/// How objects are encrypted. S3 always encrypts with SSE-KMS, as CodePipeline's store does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum S3Encryption {
    /// SSE-KMS under the account's AWS-managed `aws/s3` key (CodePipeline's default, P14).
    ManagedKey,
    /// SSE-KMS under this customer-managed symmetric key (id, ARN or alias).
    SseKms {
        /// The KMS key.
        key_id: String,
    },
    /// SSE-KMS under this key, and before that, sealed on the runner with a data key from it.
    Envelope {
        /// The KMS key.
        key_id: String,
    },
}

impl S3Encryption {
    /// The customer-managed key, if any.
    pub fn key_id(&self) -> Option<&str> {
        match self {
            Self::ManagedKey => None,
            Self::SseKms { key_id } | Self::Envelope { key_id } => Some(key_id),
        }
    }
}

/// Where the store keeps its objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3StoreConfig {
    /// Bucket name.
    pub bucket: String,
    /// Key prefix, without a trailing `/`; empty for the bucket's root.
    pub prefix: String,
    /// Encryption of new objects.
    pub encryption: S3Encryption,
}

/// An [`ArtifactStore`] in an S3 bucket, encrypted with KMS.
#[derive(Debug, Clone)]
pub struct S3ArtifactStore {
    s3: S3Client,
    kms: KmsClient,
    config: S3StoreConfig,
    wrapper: Option<KmsKeyWrapper>,
    temp_dir: PathBuf,
}

impl S3ArtifactStore {
    /// Connects to the bucket, checking that it exists and that the KMS key is usable, so a
    /// wrong bucket, key or endpoint is reported at startup rather than at the first artifact.
    pub async fn connect(aws: &AwsConfig, config: S3StoreConfig) -> Result<Self, ArtifactError> {
        let (s3, kms) = (aws.s3(), aws.kms());
        // Both checks at once; the bucket's error, if any, is the one reported.
        let (bucket, key) = tokio::join!(
            s3.check_bucket(&config.bucket),
            check_key(&kms, &config.encryption)
        );
        bucket.and(key)?;
        let wrapper = config
            .encryption
            .key_id()
            .map(|key_id| KmsKeyWrapper::new(kms.clone(), key_id));
        let prefix = config.prefix.trim_end_matches('/').to_owned();
        Ok(Self {
            s3,
            kms,
            config: S3StoreConfig { prefix, ..config },
            wrapper,
            temp_dir: std::env::temp_dir(),
        })
    }

    /// Where envelope mode seals objects before uploading them (default: the system temp dir).
    #[must_use]
    pub fn with_temp_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.temp_dir = dir.into();
        self
    }

    /// The bucket and prefix.
    pub fn config(&self) -> &S3StoreConfig {
        &self.config
    }

    /// `s3://bucket/prefix`, for messages.
    pub fn location(&self) -> String {
        if self.config.prefix.is_empty() {
            format!("s3://{}", self.config.bucket)
        } else {
            format!("s3://{}/{}", self.config.bucket, self.config.prefix)
        }
    }

    /// The object key of `digest`.
    pub fn object_key(&self, digest: &Sha256Hex) -> String {
        if self.config.prefix.is_empty() {
            digest.as_str().to_owned()
        } else {
            format!("{}/{digest}", self.config.prefix)
        }
    }

    /// Uploads `body`, of exactly `expected.len` bytes, to the object for `reference`.
    async fn upload(
        &self,
        reference: &ArtifactRef,
        body: impl tokio::io::AsyncRead + Unpin + Send,
        expected: upload::Expected<'_>,
        format: &str,
    ) -> Result<(), ArtifactError> {
        let key = self.object_key(&reference.digest);
        let size = reference.size.to_string();
        let metadata = [
            (META_SHA256, reference.digest.as_str()),
            (META_SIZE, size.as_str()),
            (META_FORMAT, format),
        ];
        let object = NewObject {
            bucket: &self.config.bucket,
            key: &key,
            kms_key_id: self.config.encryption.key_id(),
            metadata: &metadata,
        };
        upload::upload(&self.s3, &object, body, expected).await
    }
}

impl ArtifactStore for S3ArtifactStore {
    async fn put(&self, path: &Path) -> Result<ArtifactRef, ArtifactError> {
        // S3 does not check the key until it encrypts, and local servers never do: check first.
        let check_key = async {
            check_key(&self.kms, &self.config.encryption)
                .await
                .map_err(ArtifactError::from)
        };
        let source = path.to_path_buf();
        if !matches!(self.config.encryption, S3Encryption::Envelope { .. }) {
            // The key check and the first hashing pass overlap.
            let (key, reference) = tokio::join!(check_key, blocking(move || hash_file(&source)));
            key?;
            let reference = reference?;
            let file = tokio::fs::File::open(path)
                .await
                .map_err(io_error("open", path))?;
            let expected = upload::Expected {
                len: reference.size,
                digest: Some(&reference.digest),
                source: path,
            };
            self.upload(&reference, file, expected, FORMAT_PLAIN)
                .await?;
            return Ok(reference);
        }
        check_key.await?;
        let wrapper = self
            .wrapper
            .as_ref()
            .expect("envelope mode always has a key");
        let sealer = Sealer::new(wrapper).await.map_err(|error| {
            lift_kms_failure(error).unwrap_or_else(|source| ArtifactError::Crypto { source })
        })?;
        let temp_dir = self.temp_dir.clone();
        let (ciphertext, len, reference) =
            blocking(move || seal_to_temp(sealer, &source, &temp_dir)).await?;
        let expected = upload::Expected {
            len,
            digest: None,
            source: &self.temp_dir,
        };
        let body = tokio::fs::File::from_std(ciphertext);
        self.upload(&reference, body, expected, FORMAT_ENVELOPE)
            .await?;
        Ok(reference)
    }

    async fn get(&self, reference: &ArtifactRef, dest: &Path) -> Result<(), ArtifactError> {
        let key = self.object_key(&reference.digest);
        let Some((head, body)) = self.s3.get_object(&self.config.bucket, &key).await? else {
            return Err(ArtifactError::Missing {
                digest: reference.digest.clone(),
            });
        };
        let envelope = head.metadata.get(META_FORMAT).map(String::as_str) == Some(FORMAT_ENVELOPE);
        let failure = Failure {
            digest: reference.digest.clone(),
            object: Resource::object(&self.config.bucket, &key),
        };
        let mut reader = SyncIoBridge::new(Box::pin(body.into_async_read()));
        let dir = match dest.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let header_failure = failure.clone();
        let (reader, temp, header) = blocking(move || {
            let temp = temp_file_in(&dir)?;
            let header = if envelope {
                Some(Header::read_from(&mut reader).map_err(|error| header_failure.of(error))?)
            } else {
                None
            };
            Ok((reader, temp, header))
        })
        .await?;
        let opener = match header {
            None => None,
            Some(header) => Some(self.opener(header, &failure).await?),
        };
        let (reference, dest) = (reference.clone(), dest.to_path_buf());
        blocking(move || restore(reader, opener, temp, &reference, &dest, &failure)).await
    }

    async fn exists(&self, reference: &ArtifactRef) -> Result<bool, ArtifactError> {
        let key = self.object_key(&reference.digest);
        let head = self.s3.head_object(&self.config.bucket, &key).await?;
        Ok(head.is_some())
    }

    async fn delete(&self, reference: &ArtifactRef) -> Result<(), ArtifactError> {
        let key = self.object_key(&reference.digest);
        Ok(self.s3.delete_object(&self.config.bucket, &key).await?)
    }
}

impl S3ArtifactStore {
    async fn opener(&self, header: Header, failure: &Failure) -> Result<Opener, ArtifactError> {
        let Some(wrapper) = &self.wrapper else {
            return Err(ArtifactError::Unwrap {
                digest: failure.digest.clone(),
                source: EnvelopeError::KeyService {
                    scheme: header.scheme(),
                    source:
                        "the object is sealed with a KMS data key but the store names no KMS key"
                            .into(),
                },
            });
        };
        Opener::new(wrapper, header)
            .await
            .map_err(|error| failure.of(error))
    }
}

/// Checks that the customer-managed key of `encryption`, if any, can protect artifacts.
async fn check_key(kms: &KmsClient, encryption: &S3Encryption) -> Result<(), AwsError> {
    match encryption.key_id() {
        Some(key_id) => kms.check_key(key_id).await,
        None => Ok(()),
    }
}

/// Read size of the first hashing pass.
const HASH_BUFFER: usize = 1024 * 1024;

/// Hashes the file at `path` (first pass: the digest names the object).
fn hash_file(path: &Path) -> Result<ArtifactRef, ArtifactError> {
    let file = fs_err::File::open(path).map_err(io_error("open", path))?;
    let mut reader = Hashing::new(file);
    // Large reads: the hash, not the syscalls, should be the cost.
    let mut buffer = vec![0; HASH_BUFFER];
    while reader.read(&mut buffer).map_err(io_error("read", path))? > 0 {}
    let (digest, size) = reader.finish();
    Ok(ArtifactRef { digest, size })
}

/// Seals `source` into an anonymous temporary file in `temp_dir`, rewound for reading.
fn seal_to_temp(
    sealer: Sealer,
    source: &Path,
    temp_dir: &Path,
) -> Result<(std::fs::File, u64, ArtifactRef), ArtifactError> {
    let plaintext = fs_err::File::open(source).map_err(io_error("open", source))?;
    let mut ciphertext = tempfile::tempfile_in(temp_dir)
        .map_err(io_error("create a temporary file in", temp_dir))?;
    let mut plaintext = Hashing::new(plaintext);
    sealer
        .seal(&mut plaintext, BufWriter::new(&ciphertext))
        .map_err(|error| match error {
            EnvelopeError::Read(error) => io_error("read", source)(error),
            EnvelopeError::Write(error) => io_error("write into", temp_dir)(error),
            other => ArtifactError::Crypto { source: other },
        })?;
    let len = ciphertext
        .stream_position()
        .map_err(io_error("seek in", temp_dir))?;
    ciphertext.rewind().map_err(io_error("seek in", temp_dir))?;
    let (digest, size) = plaintext.finish();
    Ok((ciphertext, len, ArtifactRef { digest, size }))
}

/// Runs file work on the blocking pool so the async API never stalls the runtime.
async fn blocking<T: Send + 'static>(
    task: impl FnOnce() -> Result<T, ArtifactError> + Send + 'static,
) -> Result<T, ArtifactError> {
    tokio::task::spawn_blocking(task)
        .await
        .map_err(|source| ArtifactError::Task { source })?
}

//! Pipeline artifact store: immutable objects named by the SHA-256 of their content, encrypted at rest.
//!
//! [`ArtifactStore`] is the port the engine uses. [`LocalArtifactStore`] is the embedded default;
//! the S3 store implements the same trait and writes the same object format ([`envelope`]). Stores
//! move bytes in and out by digest: they know nothing of pipelines, runs or which references are
//! still live (deleting is the caller's decision, and one object may back several references).

mod any;
pub mod envelope;

mod digest;
mod local;
mod master_key;
mod s3;

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::aws::AwsError;

pub use any::AnyArtifactStore;
pub use digest::Sha256Hex;
pub use envelope::EnvelopeError;
pub use local::LocalArtifactStore;
pub use master_key::{KeyFileProblem, LocalMasterKey};
pub use s3::{KmsKeyWrapper, S3ArtifactStore, S3Encryption, S3StoreConfig};

/// Names a stored artifact: the SHA-256 of its plaintext and its length in bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ArtifactRef {
    /// SHA-256 of the plaintext, the object's address.
    pub digest: Sha256Hex,
    /// Plaintext length in bytes, checked again on every read.
    pub size: u64,
}

/// Stores artifact files (usually ZIPs) and hands them back, verified.
///
/// Every method streams: no implementation may hold a whole artifact in memory.
pub trait ArtifactStore: Send + Sync {
    /// Streams the local file at `path` into the store and returns its reference.
    ///
    /// Storing the same content twice yields the same reference and one object.
    fn put(&self, path: &Path) -> impl Future<Output = Result<ArtifactRef, ArtifactError>> + Send;

    /// Streams the artifact out to `dest`, replacing it atomically once the SHA-256 and size of the
    /// plaintext match `reference`. On any error `dest` is left untouched.
    fn get(
        &self,
        reference: &ArtifactRef,
        dest: &Path,
    ) -> impl Future<Output = Result<(), ArtifactError>> + Send;

    /// Whether an object for `reference` is stored (without verifying its content).
    fn exists(
        &self,
        reference: &ArtifactRef,
    ) -> impl Future<Output = Result<bool, ArtifactError>> + Send;

    /// Removes the object for `reference`; removing an absent object succeeds.
    fn delete(
        &self,
        reference: &ArtifactRef,
    ) -> impl Future<Output = Result<(), ArtifactError>> + Send;
}

/// Why an artifact store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// A file operation failed.
    #[error("{action} {}", path.display())]
    Io {
        /// What we were doing (`open`, `read`, `rename into`...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// No object is stored under the digest.
    #[error("find artifact {digest}")]
    Missing {
        /// The digest asked for.
        digest: Sha256Hex,
    },
    /// The stored object does not decrypt to the content its digest names.
    #[error("verify artifact {digest}: the stored object was altered or truncated")]
    Tampered {
        /// The digest asked for.
        digest: Sha256Hex,
        /// What gave it away.
        #[source]
        evidence: TamperEvidence,
    },
    /// The master key file exists but cannot be used safely.
    #[error("use master key {}", path.display())]
    Key {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        problem: KeyFileProblem,
    },
    /// The object's data key could not be unwrapped (usually: a different master key).
    #[error("unwrap the data key of artifact {digest}")]
    Unwrap {
        /// The digest asked for.
        digest: Sha256Hex,
        /// The key wrapper's error.
        #[source]
        source: EnvelopeError,
    },
    /// A fresh data key or nonce could not be made for a new object.
    #[error("prepare the encryption of an artifact")]
    Crypto {
        /// The envelope's error.
        #[source]
        source: EnvelopeError,
    },
    /// A digest is not 64 lowercase hex digits.
    #[error("parse artifact digest `{value}`: expected 64 lowercase hex digits")]
    InvalidDigest {
        /// The rejected text.
        value: String,
    },
    /// An S3 or KMS call failed; the error names the bucket, object or key.
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// The file's content changed between hashing it and uploading it.
    #[error("store {}: the file changed while it was being uploaded", path.display())]
    Changed {
        /// The file.
        path: PathBuf,
    },
    /// The blocking task doing the file work panicked or was cancelled.
    #[error("finish the artifact file task")]
    Task {
        /// Tokio's error.
        #[source]
        source: tokio::task::JoinError,
    },
}

/// How a stored object was found to be altered.
#[derive(Debug, thiserror::Error)]
pub enum TamperEvidence {
    /// The envelope is malformed or a chunk failed authentication.
    #[error("the encrypted object does not open")]
    Envelope(#[source] EnvelopeError),
    /// It decrypted, but to different content (e.g. another object moved into its place).
    #[error("the plaintext has digest {actual}")]
    Digest {
        /// Digest of what was decrypted.
        actual: Sha256Hex,
    },
    /// It decrypted, but to a different length.
    #[error("the plaintext is {actual} bytes, not {expected}")]
    Size {
        /// Length the reference records.
        expected: u64,
        /// Length decrypted.
        actual: u64,
    },
}

/// Builds a mapper from an I/O error to [`ArtifactError::Io`].
/// Checks what was written to `temp` (its digest and size) against `reference`, then syncs it
/// and renames it to `dest`; a mismatch leaves `dest` untouched.
fn verify_and_persist(
    temp: tempfile::NamedTempFile,
    reference: &ArtifactRef,
    actual: Sha256Hex,
    size: u64,
    dest: &Path,
) -> Result<(), ArtifactError> {
    let tampered = |evidence| ArtifactError::Tampered {
        digest: reference.digest.clone(),
        evidence,
    };
    if actual != reference.digest {
        return Err(tampered(TamperEvidence::Digest { actual }));
    }
    if size != reference.size {
        return Err(tampered(TamperEvidence::Size {
            expected: reference.size,
            actual: size,
        }));
    }
    temp.as_file()
        .sync_all()
        .map_err(io_error("sync", temp.path()))?;
    temp.persist(dest)
        .map_err(|error| io_error("rename into", dest)(error.error))?;
    Ok(())
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> ArtifactError {
    move |source| ArtifactError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn io_error_names_action_and_path() {
        let error = io_error("open", Path::new("/store/objects"))(io::ErrorKind::NotFound.into());
        assert_eq!(error.to_string(), "open /store/objects");
        assert!(error.source().is_some());
    }

    #[test]
    fn tampered_error_chains_its_evidence() {
        let digest = Sha256Hex::of_bytes(b"x");
        let error = ArtifactError::Tampered {
            digest: digest.clone(),
            evidence: TamperEvidence::Size {
                expected: 2,
                actual: 1,
            },
        };
        assert_eq!(
            error.to_string(),
            format!("verify artifact {digest}: the stored object was altered or truncated")
        );
        let evidence = error.source().map(ToString::to_string);
        assert_eq!(evidence.as_deref(), Some("the plaintext is 1 bytes, not 2"));
    }
}

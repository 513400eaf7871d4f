//! The read side of the S3 store: the downloaded plaintext goes into a temporary file beside the
//! destination and is renamed into place only once its digest and size match the reference.

use std::io::{self, BufWriter};
use std::path::Path;

use tempfile::NamedTempFile;

use crate::artifacts::digest::Hashing;
use crate::artifacts::envelope::{EnvelopeError, Opener};
use crate::artifacts::{ArtifactError, ArtifactRef, Sha256Hex, TamperEvidence, io_error};
use crate::aws::{AwsError, Resource};

/// Writes the plaintext (decrypting it if `opener` is set) into `temp`, checks it against
/// `reference`, and only then renames it to `dest`.
pub(super) fn restore(
    object: impl io::Read,
    opener: Option<Opener>,
    temp: NamedTempFile,
    reference: &ArtifactRef,
    dest: &Path,
    failure: &Failure,
) -> Result<(), ArtifactError> {
    let mut plaintext = Hashing::new(BufWriter::new(temp.as_file()));
    let written = match opener {
        Some(opener) => opener.open(object, &mut plaintext),
        None => copy(object, &mut plaintext),
    };
    written.map_err(|error| match error {
        EnvelopeError::Write(error) => io_error("write", temp.path())(error),
        other => failure.of(other),
    })?;
    let (actual, size) = plaintext.finish();
    crate::artifacts::verify_and_persist(temp, reference, actual, size, dest)
}

/// Copies a plain object, telling read errors (the download) from write errors (the file).
fn copy(mut object: impl io::Read, plaintext: &mut impl io::Write) -> Result<(), EnvelopeError> {
    let mut buffer = vec![0; 64 * 1024];
    loop {
        let count = object.read(&mut buffer).map_err(EnvelopeError::Read)?;
        if count == 0 {
            return plaintext.flush().map_err(EnvelopeError::Write);
        }
        plaintext
            .write_all(&buffer[..count])
            .map_err(EnvelopeError::Write)?;
    }
}

/// Classifies errors met while reading one object.
#[derive(Debug, Clone)]
pub(super) struct Failure {
    pub(super) digest: Sha256Hex,
    pub(super) object: Resource,
}

impl Failure {
    pub(super) fn of(&self, error: EnvelopeError) -> ArtifactError {
        let error = match lift_kms_failure(error) {
            Ok(lifted) => return lifted,
            Err(error) => error,
        };
        match error {
            EnvelopeError::Read(source) => ArtifactError::Aws(AwsError::Body {
                operation: "GetObject",
                resource: self.object.clone(),
                source: Box::new(source),
            }),
            error if error.is_key_failure() => ArtifactError::Unwrap {
                digest: self.digest.clone(),
                source: error,
            },
            error => ArtifactError::Tampered {
                digest: self.digest.clone(),
                evidence: TamperEvidence::Envelope(error),
            },
        }
    }
}

/// Lifts a KMS outage, refusal or key problem out of an envelope error, so the message names the
/// key and endpoint; other errors (a rejected ciphertext: altered or foreign) stay as they are.
pub(super) fn lift_kms_failure(error: EnvelopeError) -> Result<ArtifactError, EnvelopeError> {
    let EnvelopeError::KeyService { scheme, source } = error else {
        return Err(error);
    };
    match source.downcast::<AwsError>() {
        Ok(aws) if !matches!(*aws, AwsError::Service { .. }) => Ok(ArtifactError::Aws(*aws)),
        Ok(aws) => Err(EnvelopeError::KeyService {
            scheme,
            source: aws,
        }),
        Err(source) => Err(EnvelopeError::KeyService { scheme, source }),
    }
}

pub(super) fn temp_file_in(dir: &Path) -> Result<NamedTempFile, ArtifactError> {
    tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(io_error("create a temporary file in", dir))
}

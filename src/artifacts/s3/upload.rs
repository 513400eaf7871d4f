//! Streams one object into S3: a single `PutObject` up to [`PART_SIZE`], a multipart upload
//! above it, reading parts in order and hashing what it sends, with a few parts uploading at
//! once (memory stays at [`PARTS_IN_FLIGHT`] parts). Every request carries the CRC32 of its
//! bytes, so S3 refuses a part that was damaged on the way (see [`S3Client::upload_part`]).
//!
//! A multipart upload that fails or is dropped midway is aborted, so no object and no orphaned
//! parts remain under the key (a bucket lifecycle rule for incomplete uploads is still wise, for
//! a process killed outright).

use std::path::Path;
use std::sync::Arc;

use aws_sdk_s3::types::CompletedPart;
use bytes::{Bytes, BytesMut};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt as _};
use tokio::task::JoinSet;

use crate::artifacts::{ArtifactError, Sha256Hex, io_error};
use crate::aws::{NewObject, S3Client};

/// Largest object sent in one `PutObject`.
pub(super) const PART_SIZE: usize = 16 * 1024 * 1024;
/// The usual part of a multipart upload (the AWS CLI's default too).
const MULTIPART_PART_SIZE: usize = 8 * 1024 * 1024;
/// Parts uploading at once (the AWS CLI's default is 10 of 8 MiB); memory stays at this many
/// parts.
const PARTS_IN_FLIGHT: usize = 8;
/// S3's limit on the number of parts in one upload.
const MAX_PARTS: u64 = 10_000;

/// What the upload must find in the bytes it sends; a mismatch means the file changed.
#[derive(Debug, Clone, Copy)]
pub(super) struct Expected<'a> {
    /// Exact length.
    pub(super) len: u64,
    /// SHA-256, when the bytes are the plaintext the object is named by.
    pub(super) digest: Option<&'a Sha256Hex>,
    /// The file, for messages.
    pub(super) source: &'a Path,
}

/// Sends `body` to `object`; the object appears only if every byte was read and matched.
pub(super) async fn upload(
    s3: &S3Client,
    object: &NewObject<'_>,
    mut body: impl AsyncRead + Unpin + Send,
    expected: Expected<'_>,
) -> Result<(), ArtifactError> {
    let mut seen = Seen::default();
    if expected.len <= PART_SIZE as u64 {
        // One byte more than allowed shows a file that grew since it was hashed.
        let part = read_part(&mut body, PART_SIZE + 1, expected.source).await?;
        seen.record(&part);
        seen.check(&expected)?;
        s3.put_object(object, part).await?;
        return Ok(());
    }
    let upload_id = s3.create_multipart_upload(object).await?;
    let guard = AbortGuard {
        s3: s3.clone(),
        bucket: object.bucket.to_owned(),
        key: object.key.to_owned(),
        upload_id: Some(upload_id.clone()),
    };
    let result = async {
        let parts = send_parts(s3, object, &upload_id, &mut body, &mut seen, &expected).await?;
        seen.check(&expected)?;
        s3.complete_multipart_upload(object, &upload_id, parts)
            .await
            .map_err(ArtifactError::from)
    }
    .await;
    match result {
        Ok(()) => guard.disarm(),
        Err(_) => guard.abort().await,
    }
    result
}

/// Reads parts in order and keeps up to [`PARTS_IN_FLIGHT`] of them uploading at once (memory
/// stays at that many parts); returns the completed parts in part-number order.
///
/// Each part uploads in its own task, so sending goes on while the next part is read and
/// hashed. Dropping the set (an error, or the put cancelled) aborts the parts still sending.
async fn send_parts(
    s3: &S3Client,
    object: &NewObject<'_>,
    upload_id: &str,
    body: &mut (impl AsyncRead + Unpin + Send),
    seen: &mut Seen,
    expected: &Expected<'_>,
) -> Result<Vec<CompletedPart>, ArtifactError> {
    let part_size = part_size(expected.len);
    let target = Arc::new(PartTarget {
        s3: s3.clone(),
        bucket: object.bucket.to_owned(),
        key: object.key.to_owned(),
        kms_key_id: object.kms_key_id.map(str::to_owned),
        upload_id: upload_id.to_owned(),
    });
    let mut parts = Vec::new();
    let mut in_flight = JoinSet::new();
    let mut part_number = 0;
    loop {
        if in_flight.len() >= PARTS_IN_FLIGHT {
            if let Some(done) = in_flight.join_next().await {
                parts.push(joined(done)?);
            }
            continue;
        }
        let part = read_part(body, part_size, expected.source).await?;
        if part.is_empty() {
            break;
        }
        seen.record(&part);
        if seen.len > expected.len {
            return Err(ArtifactError::Changed {
                path: expected.source.to_path_buf(),
            });
        }
        let last = part.len() < part_size;
        part_number += 1;
        let target = Arc::clone(&target);
        in_flight.spawn(async move { target.send(part_number, part).await });
        if last {
            break;
        }
    }
    while let Some(done) = in_flight.join_next().await {
        parts.push(joined(done)?);
    }
    parts.sort_by_key(CompletedPart::part_number);
    Ok(parts)
}

/// Where the parts of one multipart upload go, owned so each part's task can hold it.
struct PartTarget {
    s3: S3Client,
    bucket: String,
    key: String,
    kms_key_id: Option<String>,
    upload_id: String,
}

impl PartTarget {
    async fn send(&self, part_number: i32, body: Bytes) -> Result<CompletedPart, ArtifactError> {
        let object = NewObject {
            bucket: &self.bucket,
            key: &self.key,
            kms_key_id: self.kms_key_id.as_deref(),
            metadata: &[],
        };
        Ok(self
            .s3
            .upload_part(&object, &self.upload_id, part_number, body)
            .await?)
    }
}

/// The result of a part's task; a task that panicked fails the upload.
fn joined(
    done: Result<Result<CompletedPart, ArtifactError>, tokio::task::JoinError>,
) -> Result<CompletedPart, ArtifactError> {
    done.map_err(|source| ArtifactError::Task { source })?
}

/// The part size for an object of `len` bytes: [`MULTIPART_PART_SIZE`], or more to stay within
/// [`MAX_PARTS`] parts, rounded up to whole MiB.
fn part_size(len: u64) -> usize {
    const MIB: u64 = 1024 * 1024;
    let needed = len.div_ceil(MAX_PARTS).div_ceil(MIB) * MIB;
    usize::try_from(needed).map_or(usize::MAX, |needed| needed.max(MULTIPART_PART_SIZE))
}

/// Reads up to `size` bytes, fewer only at the end of the input.
async fn read_part(
    body: &mut (impl AsyncRead + Unpin + Send),
    size: usize,
    source: &Path,
) -> Result<Bytes, ArtifactError> {
    let mut buffer = BytesMut::with_capacity(size);
    while buffer.len() < size {
        let limit = (size - buffer.len()) as u64;
        let count = body
            .take(limit)
            .read_buf(&mut buffer)
            .await
            .map_err(io_error("read", source))?;
        if count == 0 {
            break;
        }
    }
    Ok(buffer.freeze())
}

/// Hash and length of the bytes sent so far.
#[derive(Default)]
struct Seen {
    hasher: Sha256,
    len: u64,
}

impl Seen {
    fn record(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
        self.len += bytes.len() as u64;
    }

    fn check(&self, expected: &Expected<'_>) -> Result<(), ArtifactError> {
        let digest_matches = expected.digest.is_none_or(|digest| {
            format!("{:x}", self.hasher.clone().finalize()) == digest.as_str()
        });
        if self.len == expected.len && digest_matches {
            Ok(())
        } else {
            Err(ArtifactError::Changed {
                path: expected.source.to_path_buf(),
            })
        }
    }
}

/// Aborts a multipart upload unless disarmed; on drop (the put was cancelled) it spawns the abort.
struct AbortGuard {
    s3: S3Client,
    bucket: String,
    key: String,
    upload_id: Option<String>,
}

impl AbortGuard {
    fn disarm(mut self) {
        self.upload_id = None;
    }

    async fn abort(mut self) {
        if let Some(upload_id) = self.upload_id.take() {
            abort(&self.s3, &self.bucket, &self.key, &upload_id).await;
        }
    }
}

impl Drop for AbortGuard {
    fn drop(&mut self) {
        let Some(upload_id) = self.upload_id.take() else {
            return;
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (s3, bucket, key) = (self.s3.clone(), self.bucket.clone(), self.key.clone());
            runtime.spawn(async move { abort(&s3, &bucket, &key, &upload_id).await });
        }
    }
}

async fn abort(s3: &S3Client, bucket: &str, key: &str, upload_id: &str) {
    if let Err(error) = s3.abort_multipart_upload(bucket, key, upload_id).await {
        tracing::warn!(
            bucket,
            key,
            upload_id,
            error = &error as &dyn std::error::Error,
            "could not abort a multipart upload; a lifecycle rule will have to remove its parts"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_size_grows_only_past_ten_thousand_parts() {
        let part = MULTIPART_PART_SIZE;
        assert_eq!(part_size(40 * 1024 * 1024), part);
        assert_eq!(part_size(10_000 * part as u64), part);
        let huge = 10_000 * part as u64 + 1;
        assert_eq!(part_size(huge), part + 1024 * 1024);
        assert!(huge.div_ceil(part_size(huge) as u64) <= MAX_PARTS);
    }
}

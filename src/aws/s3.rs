//! [`S3Client`]: the S3 object calls the artifact store needs, every write under SSE-KMS.

use std::collections::HashMap;

use aws_sdk_s3::operation::get_object::GetObjectError;
use aws_sdk_s3::operation::head_object::HeadObjectError;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, ServerSideEncryption,
};
use base64::Engine as _;
use bytes::Bytes;

use super::AwsConfig;
use super::error::{AwsError, Call, Resource};

/// Where a new object goes, how S3 encrypts it, and the user metadata it carries.
#[derive(Debug, Clone, Copy)]
pub struct NewObject<'a> {
    /// Bucket name.
    pub bucket: &'a str,
    /// Object key.
    pub key: &'a str,
    /// SSE-KMS key id, ARN or alias; `None` for the account's AWS-managed `aws/s3` key.
    pub kms_key_id: Option<&'a str>,
    /// User metadata (`x-amz-meta-*`), names without the prefix.
    pub metadata: &'a [(&'a str, &'a str)],
}

/// What `HeadObject` and `GetObject` report about an object.
#[derive(Debug, Clone, Default)]
pub struct ObjectHead {
    /// Stored length in bytes.
    pub size: u64,
    /// User metadata, names without the `x-amz-meta-` prefix.
    pub metadata: HashMap<String, String>,
}

/// An object a deploy writes: its headers and how it is encrypted.
#[derive(Debug, Clone, Copy)]
pub struct ObjectUpload<'a> {
    /// Bucket name.
    pub bucket: &'a str,
    /// Object key.
    pub key: &'a str,
    /// `Content-Type`.
    pub content_type: &'a str,
    /// `Cache-Control`, if any.
    pub cache_control: Option<&'a str>,
    /// SSE-KMS key id, ARN or alias; `None` leaves encryption to the bucket's default.
    pub kms_key_id: Option<&'a str>,
    /// User metadata (`x-amz-meta-*`), names without the prefix.
    pub metadata: &'a [(&'a str, &'a str)],
}

/// One entry of a bucket listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    /// Object key.
    pub key: String,
    /// Length in bytes.
    pub size: u64,
    /// The `ETag` without its quotes (the MD5 of a single-part, unencrypted or SSE-S3 object).
    pub e_tag: String,
}

/// An S3 client whose errors name the bucket, key, KMS key and endpoint.
#[derive(Debug, Clone)]
pub struct S3Client {
    client: aws_sdk_s3::Client,
    endpoint: String,
}

impl S3Client {
    /// A client for `config`; path-style addressing when an endpoint override is set, since
    /// moto and other local servers do not resolve `<bucket>.<host>` names.
    pub fn new(config: &AwsConfig) -> Self {
        // The SDK's default per-request checksums are CRC32 trailers (aws-chunked bodies).
        // Artifact writes send their CRC32 as a header instead (`crc32_of`), computed from the
        // part already in memory, so the SDK's own is switched off where S3 does not require it.
        let s3_config = aws_sdk_s3::config::Builder::from(config.sdk())
            .force_path_style(config.endpoint_url().is_some())
            .request_checksum_calculation(
                aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired,
            )
            .build();
        Self {
            client: aws_sdk_s3::Client::from_conf(s3_config),
            endpoint: config.endpoint_label("s3"),
        }
    }

    /// The SDK client, for calls this wrapper does not cover (tests create buckets).
    pub fn sdk(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    /// Checks with `HeadBucket` that `bucket` exists and these credentials may use it.
    pub async fn check_bucket(&self, bucket: &str) -> Result<(), AwsError> {
        self.client
            .head_bucket()
            .bucket(bucket)
            .send()
            .await
            .map_err(|error| self.bucket_call("HeadBucket", bucket).fail(error))?;
        Ok(())
    }

    /// Writes a whole object in one `PutObject`, with SSE-KMS. Like [`S3Client::upload_part`],
    /// the payload is not hashed for the signature (`UNSIGNED-PAYLOAD`): its CRC32 goes with it,
    /// the artifact store names each object by its SHA-256 and checks it on every read, and
    /// TLS covers the wire.
    pub async fn put_object(&self, object: &NewObject<'_>, body: Bytes) -> Result<(), AwsError> {
        self.client
            .put_object()
            .bucket(object.bucket)
            .key(object.key)
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .set_ssekms_key_id(object.kms_key_id.map(str::to_owned))
            .set_metadata(Some(metadata(object)))
            .content_length(i64::try_from(body.len()).unwrap_or(i64::MAX))
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .checksum_crc32(crc32_of(&body))
            .body(ByteStream::from(body))
            .customize()
            .disable_payload_signing()
            .send()
            .await
            .map_err(|error| self.new_object_call("PutObject", object).fail(error))?;
        Ok(())
    }

    /// Starts a multipart upload with SSE-KMS and returns its upload id. Its parts carry CRC32
    /// checksums that S3 checks as each part arrives (a composite checksum, as the AWS CLI's).
    pub async fn create_multipart_upload(
        &self,
        object: &NewObject<'_>,
    ) -> Result<String, AwsError> {
        let output = self
            .client
            .create_multipart_upload()
            .bucket(object.bucket)
            .key(object.key)
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .set_ssekms_key_id(object.kms_key_id.map(str::to_owned))
            .set_metadata(Some(metadata(object)))
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .send()
            .await
            .map_err(|error| {
                self.new_object_call("CreateMultipartUpload", object)
                    .fail(error)
            })?;
        Ok(output.upload_id.unwrap_or_default())
    }

    /// Uploads part `part_number` (from 1) of a multipart upload.
    pub async fn upload_part(
        &self,
        object: &NewObject<'_>,
        upload_id: &str,
        part_number: i32,
        body: Bytes,
    ) -> Result<CompletedPart, AwsError> {
        let checksum = crc32_of(&body);
        let output = self
            .client
            .upload_part()
            .bucket(object.bucket)
            .key(object.key)
            .upload_id(upload_id)
            .part_number(part_number)
            .content_length(i64::try_from(body.len()).unwrap_or(i64::MAX))
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .checksum_crc32(checksum.clone())
            .body(ByteStream::from(body))
            .customize()
            .disable_payload_signing()
            .send()
            .await
            .map_err(|error| self.new_object_call("UploadPart", object).fail(error))?;
        Ok(CompletedPart::builder()
            .part_number(part_number)
            .set_e_tag(output.e_tag)
            .checksum_crc32(checksum)
            .build())
    }

    /// Completes a multipart upload: only now does the object appear under its key.
    pub async fn complete_multipart_upload(
        &self,
        object: &NewObject<'_>,
        upload_id: &str,
        parts: Vec<CompletedPart>,
    ) -> Result<(), AwsError> {
        self.client
            .complete_multipart_upload()
            .bucket(object.bucket)
            .key(object.key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|error| {
                self.new_object_call("CompleteMultipartUpload", object)
                    .fail(error)
            })?;
        Ok(())
    }

    /// Abandons a multipart upload and frees its parts.
    pub async fn abort_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<(), AwsError> {
        self.client
            .abort_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await
            .map_err(|error| {
                self.object_call("AbortMultipartUpload", bucket, key)
                    .fail(error)
            })?;
        Ok(())
    }

    /// The object's length and metadata, or `None` when no object has that key.
    pub async fn head_object(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<ObjectHead>, AwsError> {
        match self
            .client
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
        {
            Ok(output) => Ok(Some(ObjectHead {
                size: length(output.content_length),
                metadata: output.metadata.unwrap_or_default(),
            })),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(HeadObjectError::is_not_found) =>
            {
                Ok(None)
            }
            Err(error) => Err(self.object_call("HeadObject", bucket, key).fail(error)),
        }
    }

    /// Starts reading the object: its head and its body stream, or `None` when there is none.
    pub async fn get_object(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<(ObjectHead, ByteStream)>, AwsError> {
        match self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
        {
            Ok(output) => Ok(Some((
                ObjectHead {
                    size: length(output.content_length),
                    metadata: output.metadata.unwrap_or_default(),
                },
                output.body,
            ))),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(GetObjectError::is_no_such_key) =>
            {
                Ok(None)
            }
            Err(error) => Err(self.object_call("GetObject", bucket, key).fail(error)),
        }
    }

    /// Every object under `prefix` (all pages of `ListObjectsV2`).
    pub async fn list_objects(
        &self,
        bucket: &str,
        prefix: &str,
    ) -> Result<Vec<ListedObject>, AwsError> {
        let mut objects = Vec::new();
        let mut token = None;
        loop {
            let output = self
                .client
                .list_objects_v2()
                .bucket(bucket)
                .prefix(prefix)
                .set_continuation_token(token)
                .send()
                .await
                .map_err(|error| self.bucket_call("ListObjectsV2", bucket).fail(error))?;
            for object in output.contents() {
                objects.push(ListedObject {
                    key: object.key().unwrap_or_default().to_owned(),
                    size: length(object.size),
                    e_tag: object
                        .e_tag()
                        .unwrap_or_default()
                        .trim_matches('"')
                        .to_owned(),
                });
            }
            token = output
                .next_continuation_token
                .filter(|_| output.is_truncated == Some(true));
            if token.is_none() {
                return Ok(objects);
            }
        }
    }

    /// Writes a whole object in one `PutObject` with its content headers; SSE-KMS only when
    /// the upload names a key.
    pub async fn upload_object(
        &self,
        object: &ObjectUpload<'_>,
        body: Bytes,
    ) -> Result<(), AwsError> {
        let encryption = object.kms_key_id.map(|_| ServerSideEncryption::AwsKms);
        let metadata = object
            .metadata
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        self.client
            .put_object()
            .bucket(object.bucket)
            .key(object.key)
            .content_type(object.content_type)
            .set_cache_control(object.cache_control.map(str::to_owned))
            .set_server_side_encryption(encryption)
            .set_ssekms_key_id(object.kms_key_id.map(str::to_owned))
            .set_metadata(Some(metadata))
            .content_length(i64::try_from(body.len()).unwrap_or(i64::MAX))
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|error| {
                Call {
                    kms_key_id: object.kms_key_id,
                    ..self.object_call("PutObject", object.bucket, object.key)
                }
                .fail(error)
            })?;
        Ok(())
    }

    /// Deletes the object; deleting an absent key succeeds.
    pub async fn delete_object(&self, bucket: &str, key: &str) -> Result<(), AwsError> {
        self.client
            .delete_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|error| self.object_call("DeleteObject", bucket, key).fail(error))?;
        Ok(())
    }

    fn bucket_call(&self, operation: &'static str, bucket: &str) -> Call<'_> {
        Call {
            operation,
            endpoint: &self.endpoint,
            resource: Resource::Bucket {
                bucket: bucket.to_owned(),
            },
            kms_key_id: None,
        }
    }

    fn object_call(&self, operation: &'static str, bucket: &str, key: &str) -> Call<'_> {
        Call {
            operation,
            endpoint: &self.endpoint,
            resource: Resource::object(bucket, key),
            kms_key_id: None,
        }
    }

    fn new_object_call<'a>(&'a self, operation: &'static str, object: &NewObject<'a>) -> Call<'a> {
        Call {
            kms_key_id: object.kms_key_id,
            ..self.object_call(operation, object.bucket, object.key)
        }
    }
}

/// The CRC32 of `body`, base64 as S3's `x-amz-checksum-crc32` carries it; S3 refuses a write
/// whose bytes arrive with another, so corruption on the way is caught when it is written.
fn crc32_of(body: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(crc32fast::hash(body).to_be_bytes())
}

fn metadata(object: &NewObject<'_>) -> HashMap<String, String> {
    object
        .metadata
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect()
}

fn length(content_length: Option<i64>) -> u64 {
    content_length
        .and_then(|len| u64::try_from(len).ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::crc32_of;

    #[test]
    fn crc32_header_is_the_big_endian_crc_in_base64() {
        // CRC-32 (ISO-HDLC) check value of "123456789" is 0xCBF43926.
        assert_eq!(crc32_of(b"123456789"), "y/Q5Jg==");
        assert_eq!(crc32_of(b""), "AAAAAA==");
    }
}

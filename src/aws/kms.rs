//! [`KmsClient`]: the KMS calls artifact encryption needs (key check, data keys, decrypt).

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{DataKeySpec, KeySpec, KeyState, KeyUsageType};
use zeroize::Zeroizing;

use super::AwsConfig;
use super::error::{AwsError, Call, Resource};

/// A fresh data key from `GenerateDataKey`: the plaintext (zeroed on drop) and its KMS ciphertext.
pub struct DataKeyPair {
    /// The plaintext AES-256 key.
    pub plaintext: Zeroizing<Vec<u8>>,
    /// The key encrypted under the KMS key (the blob `Decrypt` takes).
    pub wrapped: Vec<u8>,
}

impl std::fmt::Debug for DataKeyPair {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("DataKeyPair")
            .field("wrapped_len", &self.wrapped.len())
            .finish_non_exhaustive()
    }
}

/// A KMS client whose errors name the key and the endpoint.
#[derive(Debug, Clone)]
pub struct KmsClient {
    client: aws_sdk_kms::Client,
    endpoint: String,
}

impl KmsClient {
    /// A client for `config`'s region and endpoint.
    pub fn new(config: &AwsConfig) -> Self {
        Self {
            client: aws_sdk_kms::Client::new(config.sdk()),
            endpoint: config.endpoint_label("kms"),
        }
    }

    /// The SDK client, for calls this wrapper does not cover (tests create and disable keys).
    pub fn sdk(&self) -> &aws_sdk_kms::Client {
        &self.client
    }

    /// Checks with `DescribeKey` that `key_id` exists, is enabled, and is a symmetric
    /// encryption key: the only kind that can protect artifacts.
    pub async fn check_key(&self, key_id: &str) -> Result<(), AwsError> {
        let output = self
            .client
            .describe_key()
            .key_id(key_id)
            .send()
            .await
            .map_err(|error| self.call("DescribeKey", key_id).fail(error))?;
        let Some(metadata) = output.key_metadata() else {
            return Err(AwsError::KmsKeyNotFound {
                key_id: key_id.to_owned(),
                operation: "DescribeKey",
            });
        };
        match metadata.key_state() {
            Some(KeyState::Enabled) | None => {}
            Some(KeyState::Disabled) => {
                return Err(AwsError::KmsKeyDisabled {
                    key_id: key_id.to_owned(),
                    operation: "DescribeKey",
                });
            }
            Some(state) => {
                return Err(AwsError::KmsKeyUnusable {
                    key_id: key_id.to_owned(),
                    operation: "DescribeKey",
                    state: state.as_str().to_owned(),
                });
            }
        }
        let spec = metadata.key_spec().unwrap_or(&KeySpec::SymmetricDefault);
        let usage = metadata
            .key_usage()
            .unwrap_or(&KeyUsageType::EncryptDecrypt);
        if *spec != KeySpec::SymmetricDefault || *usage != KeyUsageType::EncryptDecrypt {
            return Err(AwsError::KmsKeyNotSymmetric {
                key_id: key_id.to_owned(),
                spec: spec.as_str().to_owned(),
                usage: usage.as_str().to_owned(),
            });
        }
        Ok(())
    }

    /// A fresh AES-256 data key under `key_id` (`GenerateDataKey`).
    pub async fn generate_data_key(&self, key_id: &str) -> Result<DataKeyPair, AwsError> {
        let output = self
            .client
            .generate_data_key()
            .key_id(key_id)
            .key_spec(DataKeySpec::Aes256)
            .send()
            .await
            .map_err(|error| self.call("GenerateDataKey", key_id).fail(error))?;
        let plaintext = Zeroizing::new(output.plaintext.map(Blob::into_inner).unwrap_or_default());
        let wrapped = output
            .ciphertext_blob
            .map(Blob::into_inner)
            .unwrap_or_default();
        Ok(DataKeyPair { plaintext, wrapped })
    }

    /// Decrypts a data key wrapped under `key_id` (`Decrypt`, which also checks it is that key).
    pub async fn decrypt(
        &self,
        key_id: &str,
        wrapped: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, AwsError> {
        let output = self
            .client
            .decrypt()
            .key_id(key_id)
            .ciphertext_blob(Blob::new(wrapped))
            .send()
            .await
            .map_err(|error| self.call("Decrypt", key_id).fail(error))?;
        Ok(Zeroizing::new(
            output.plaintext.map(Blob::into_inner).unwrap_or_default(),
        ))
    }

    fn call<'a>(&'a self, operation: &'static str, key_id: &'a str) -> Call<'a> {
        Call {
            operation,
            endpoint: &self.endpoint,
            resource: Resource::KmsKey {
                key_id: key_id.to_owned(),
            },
            kms_key_id: Some(key_id),
        }
    }
}

//! [`KmsKeyWrapper`]: envelope data keys from AWS KMS (`GenerateDataKey` / `Decrypt`).

use crate::artifacts::envelope::{DataKey, EnvelopeError, KeyScheme, KeyWrapper};
use crate::aws::{AwsError, KmsClient};

/// Wraps envelope data keys under a KMS key: the wrapped form is the KMS ciphertext blob.
#[derive(Debug, Clone)]
pub struct KmsKeyWrapper {
    kms: KmsClient,
    key_id: String,
}

impl KmsKeyWrapper {
    /// A wrapper that asks `kms` for data keys under `key_id` (id, ARN or alias).
    pub fn new(kms: KmsClient, key_id: impl Into<String>) -> Self {
        Self {
            kms,
            key_id: key_id.into(),
        }
    }

    /// The KMS key.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }
}

impl KeyWrapper for KmsKeyWrapper {
    fn scheme(&self) -> KeyScheme {
        KeyScheme::AwsKms
    }

    async fn new_data_key(&self) -> Result<(DataKey, Vec<u8>), EnvelopeError> {
        let pair = self
            .kms
            .generate_data_key(&self.key_id)
            .await
            .map_err(key_service)?;
        Ok((DataKey::from_slice(&pair.plaintext)?, pair.wrapped))
    }

    async fn unwrap_key(&self, wrapped: &[u8]) -> Result<DataKey, EnvelopeError> {
        let plaintext = self
            .kms
            .decrypt(&self.key_id, wrapped)
            .await
            .map_err(key_service)?;
        DataKey::from_slice(&plaintext)
    }
}

fn key_service(error: AwsError) -> EnvelopeError {
    EnvelopeError::KeyService {
        scheme: KeyScheme::AwsKms,
        source: Box::new(error),
    }
}

//! [`SecretsClient`]: Secrets Manager secret values (`GetSecretValue`), for build secrets (B12).

use super::AwsConfig;
use super::error::{AwsError, Call, Resource};

/// Which version of a secret to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SecretVersion<'a> {
    /// The version labelled `AWSCURRENT`.
    #[default]
    Current,
    /// The version carrying this staging label.
    Stage(&'a str),
    /// The version with this id.
    Id(&'a str),
}

/// A Secrets Manager client whose errors name the secret, its version and the endpoint.
#[derive(Debug, Clone)]
pub struct SecretsClient {
    client: aws_sdk_secretsmanager::Client,
    endpoint: String,
}

impl SecretsClient {
    /// A client for `config`'s region and endpoint.
    pub fn new(config: &AwsConfig) -> Self {
        Self {
            client: aws_sdk_secretsmanager::Client::new(config.sdk()),
            endpoint: config.endpoint_label("secretsmanager"),
        }
    }

    /// The text (`SecretString`) of `version` of the secret `secret_id` (a name or an ARN).
    pub async fn get_secret_string(
        &self,
        secret_id: &str,
        version: SecretVersion<'_>,
    ) -> Result<String, AwsError> {
        let mut request = self.client.get_secret_value().secret_id(secret_id);
        request = match version {
            SecretVersion::Current => request,
            SecretVersion::Stage(stage) => request.version_stage(stage),
            SecretVersion::Id(id) => request.version_id(id),
        };
        let output = request.send().await.map_err(|error| {
            Call {
                operation: "GetSecretValue",
                endpoint: &self.endpoint,
                resource: resource(secret_id, version),
                kms_key_id: None,
            }
            .fail(error)
        })?;
        match output.secret_string {
            Some(text) => Ok(text),
            None => Err(AwsError::SecretNotText {
                resource: resource(secret_id, version),
            }),
        }
    }
}

fn resource(secret_id: &str, version: SecretVersion<'_>) -> Resource {
    Resource::Secret {
        secret_id: secret_id.to_owned(),
        version: match version {
            SecretVersion::Current => None,
            SecretVersion::Stage(stage) => Some(format!("version stage `{stage}`")),
            SecretVersion::Id(id) => Some(format!("version id `{id}`")),
        },
    }
}

//! AWS SDK setup and thin typed wrappers over the S3, KMS, Lambda, SSM and Secrets Manager calls
//! the runner makes.
//!
//! [`AwsConfig`] resolves region and credentials with the SDK's standard chain (environment,
//! profile, SSO, web identity, ECS and EC2 instance metadata) and honours `AWS_ENDPOINT_URL`.
//! [`S3Client`], [`KmsClient`], [`LambdaClient`], [`SsmClient`] and [`SecretsClient`] turn every
//! SDK failure into an [`AwsError`] that names the operation, the bucket, object, key, parameter
//! or secret, and the endpoint. This module knows nothing of runs, pipelines, builds or
//! artifacts.
//!
//! Retries are the SDK's standard mode (3 attempts, exponential backoff with jitter, for
//! throttling, 5xx and connection errors); the error after the last attempt is the one returned.

mod error;
mod kms;
mod lambda;
mod s3;
mod secrets;
mod ssm;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::config::retry::RetryConfig;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};

pub use error::{AwsError, Resource};
pub use kms::{DataKeyPair, KmsClient};
pub use lambda::{CodeSource, DIRECT_UPLOAD_LIMIT, FunctionState, LambdaClient, NewFunction};
pub use s3::{ListedObject, NewObject, ObjectHead, ObjectUpload, S3Client};
pub use secrets::{SecretVersion, SecretsClient};
pub use ssm::{GET_PARAMETERS_BATCH, SsmClient};

/// Resolved AWS settings shared by every client: region, credentials, endpoint, retries.
#[derive(Debug, Clone)]
pub struct AwsConfig {
    sdk: SdkConfig,
}

impl AwsConfig {
    /// Resolves the configuration with the SDK's standard provider chains.
    ///
    /// `region` and `endpoint` override what the chain finds (`AWS_REGION`/`AWS_DEFAULT_REGION`
    /// or the profile; `AWS_ENDPOINT_URL` or the profile's `endpoint_url`).
    pub async fn load(region: Option<String>, endpoint: Option<String>) -> Result<Self, AwsError> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http_client())
            .retry_config(RetryConfig::standard());
        if let Some(region) = region {
            loader = loader.region(Region::new(region));
        }
        if let Some(endpoint) = endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        let sdk = loader.load().await;
        // An empty `AWS_REGION` is no region: the SDK would sign for "" and call a host that
        // cannot exist.
        if sdk.region().is_none_or(|region| region.as_ref().is_empty()) {
            return Err(AwsError::NoRegion);
        }
        Ok(Self { sdk })
    }

    /// The SDK's configuration, for building other service clients.
    pub fn sdk(&self) -> &SdkConfig {
        &self.sdk
    }

    /// The region every client talks to.
    pub fn region(&self) -> &str {
        self.sdk.region().map_or("", Region::as_ref)
    }

    /// The credentials and region a build receives, as environment variables, like the
    /// service role CodeBuild hands its builds (issue 4): resolved through the standard chain
    /// (short-lived ones stay short-lived), plus `AWS_ENDPOINT_URL` when one is set. Returns the
    /// variables and the values to mask.
    pub async fn build_environment(
        &self,
    ) -> Result<(Vec<(String, String)>, Vec<String>), AwsError> {
        use aws_credential_types::provider::ProvideCredentials as _;
        let mut env = vec![
            ("AWS_REGION".to_owned(), self.region().to_owned()),
            ("AWS_DEFAULT_REGION".to_owned(), self.region().to_owned()),
        ];
        let mut secrets = Vec::new();
        if let Some(provider) = self.sdk().credentials_provider() {
            let credentials =
                provider
                    .provide_credentials()
                    .await
                    .map_err(|error| AwsError::Credentials {
                        reason: error.to_string(),
                    })?;
            env.push((
                "AWS_ACCESS_KEY_ID".to_owned(),
                credentials.access_key_id().to_owned(),
            ));
            env.push((
                "AWS_SECRET_ACCESS_KEY".to_owned(),
                credentials.secret_access_key().to_owned(),
            ));
            secrets.push(credentials.access_key_id().to_owned());
            secrets.push(credentials.secret_access_key().to_owned());
            if let Some(token) = credentials.session_token() {
                env.push(("AWS_SESSION_TOKEN".to_owned(), token.to_owned()));
                secrets.push(token.to_owned());
            }
        }
        if let Some(endpoint) = self.endpoint_url() {
            env.push(("AWS_ENDPOINT_URL".to_owned(), endpoint.to_owned()));
        }
        Ok((env, secrets))
    }

    /// The endpoint override (`AWS_ENDPOINT_URL`, e.g. a moto server), if any.
    pub fn endpoint_url(&self) -> Option<&str> {
        self.sdk.endpoint_url()
    }

    /// An S3 client; path-style addressing when an endpoint override is set (moto, `MinIO`).
    pub fn s3(&self) -> S3Client {
        S3Client::new(self)
    }

    /// A KMS client.
    pub fn kms(&self) -> KmsClient {
        KmsClient::new(self)
    }

    /// A Lambda client.
    pub fn lambda(&self) -> LambdaClient {
        LambdaClient::new(self)
    }

    /// An SSM Parameter Store client.
    pub fn ssm(&self) -> SsmClient {
        SsmClient::new(self)
    }

    /// A Secrets Manager client.
    pub fn secrets(&self) -> SecretsClient {
        SecretsClient::new(self)
    }

    /// How errors name the endpoint of `service`: the override, or the regional AWS endpoint.
    fn endpoint_label(&self, service: &str) -> String {
        self.endpoint_url().map_or_else(
            || format!("https://{service}.{}.amazonaws.com", self.region()),
            str::to_owned,
        )
    }
}

/// HTTPS client: rustls with ring and the system's trust store (which also trusts a
/// TLS-intercepting proxy's CA when the host does). Chosen over the SDK's default aws-lc stack,
/// which takes minutes to build; plain `http://` endpoints (moto) work as well.
fn http_client() -> aws_sdk_s3::config::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

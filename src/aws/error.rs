//! [`AwsError`]: every failed AWS call, classified, naming what it touched.

use std::error::Error as StdError;
use std::fmt;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

type BoxError = Box<dyn StdError + Send + Sync>;

/// What an AWS call acted on, as error messages name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// An S3 bucket.
    Bucket {
        /// Bucket name.
        bucket: String,
    },
    /// An S3 object.
    Object {
        /// Bucket name.
        bucket: String,
        /// Object key.
        key: String,
    },
    /// A KMS key.
    KmsKey {
        /// Key id, ARN or alias.
        key_id: String,
    },
    /// A Lambda function (or one of its aliases).
    Function {
        /// Function name or ARN.
        name: String,
    },
    /// One batch of SSM parameters.
    Parameters {
        /// Parameter names (or ARNs, or `name:version` selectors), as asked for.
        names: Vec<String>,
    },
    /// A Secrets Manager secret, or one version of it.
    Secret {
        /// Secret name or ARN.
        secret_id: String,
        /// `version stage X` or `version id Y`, when one was asked for.
        version: Option<String>,
    },
}

impl Resource {
    /// An object resource.
    pub fn object(bucket: &str, key: &str) -> Self {
        Self::Object {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
        }
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bucket { bucket } => write!(formatter, "s3://{bucket}"),
            Self::Object { bucket, key } => write!(formatter, "s3://{bucket}/{key}"),
            Self::KmsKey { key_id } => write!(formatter, "KMS key `{key_id}`"),
            Self::Function { name } => write!(formatter, "Lambda function `{name}`"),
            Self::Parameters { names } => {
                write!(
                    formatter,
                    "SSM parameter{} {}",
                    plural(names),
                    quoted(names)
                )
            }
            Self::Secret {
                secret_id,
                version: None,
            } => write!(formatter, "secret `{secret_id}`"),
            Self::Secret {
                secret_id,
                version: Some(version),
            } => write!(formatter, "secret `{secret_id}` ({version})"),
        }
    }
}

/// Why an AWS call failed.
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    /// No region came from the arguments, the environment or the profile.
    #[error("find an AWS region: set AWS_REGION or a profile's `region`")]
    NoRegion,
    /// The endpoint did not answer (connection refused, DNS, timeout) on any attempt.
    #[error("reach the AWS endpoint {endpoint} ({operation} on {resource})")]
    Unreachable {
        /// The endpoint URL.
        endpoint: String,
        /// The API operation.
        operation: &'static str,
        /// What it acted on.
        resource: Resource,
        /// The SDK's error.
        #[source]
        source: BoxError,
    },
    /// The bucket does not exist.
    #[error("find S3 bucket `{bucket}` ({operation}): it does not exist")]
    NoSuchBucket {
        /// Bucket name.
        bucket: String,
        /// The API operation.
        operation: &'static str,
    },
    /// The credentials are not allowed to do this.
    #[error("get permission for {operation} on {resource}: access denied")]
    AccessDenied {
        /// The API operation.
        operation: &'static str,
        /// What it acted on.
        resource: Resource,
        /// The SDK's error.
        #[source]
        source: BoxError,
    },
    /// The KMS key does not exist (or is not visible to these credentials).
    #[error("find KMS key `{key_id}` ({operation}): it does not exist")]
    KmsKeyNotFound {
        /// Key id, ARN or alias.
        key_id: String,
        /// The API operation.
        operation: &'static str,
    },
    /// The KMS key is disabled.
    #[error("use KMS key `{key_id}` ({operation}): the key is disabled")]
    KmsKeyDisabled {
        /// Key id, ARN or alias.
        key_id: String,
        /// The API operation.
        operation: &'static str,
    },
    /// The KMS key is in a state that forbids use (pending deletion, pending import...).
    #[error("use KMS key `{key_id}` ({operation}): the key is {state}")]
    KmsKeyUnusable {
        /// Key id, ARN or alias.
        key_id: String,
        /// The API operation.
        operation: &'static str,
        /// The key state KMS reports.
        state: String,
    },
    /// The KMS key cannot encrypt artifacts: only symmetric encryption keys can (P14).
    #[error(
        "use KMS key `{key_id}`: it is a {spec} key for {usage}, not a symmetric encryption key"
    )]
    KmsKeyNotSymmetric {
        /// Key id, ARN or alias.
        key_id: String,
        /// Its key spec.
        spec: String,
        /// Its key usage.
        usage: String,
    },
    /// The Lambda function does not exist.
    #[error("find Lambda function `{function}` ({operation}): it does not exist")]
    FunctionNotFound {
        /// Function name or ARN.
        function: String,
        /// The API operation.
        operation: &'static str,
    },
    /// Lambda refused the execution role of a new function (it does not exist, or its trust
    /// policy does not let Lambda assume it).
    #[error(
        "create Lambda function `{function}`: its role `{role}` does not exist or cannot be assumed by Lambda"
    )]
    LambdaRoleNotAssumable {
        /// Function name.
        function: String,
        /// The role ARN.
        role: String,
        /// The SDK's error.
        #[source]
        source: BoxError,
    },
    /// The function's `LastUpdateStatus` became `Failed`.
    #[error("finish updating Lambda function `{function}`: the update failed ({reason})")]
    LambdaUpdateFailed {
        /// Function name or ARN.
        function: String,
        /// `LastUpdateStatusReason`.
        reason: String,
    },
    /// The function was still updating when the wait ran out.
    #[error(
        "finish updating Lambda function `{function}`: still {status} after {}",
        humantime::format_duration(*waited)
    )]
    LambdaUpdateTimedOut {
        /// Function name or ARN.
        function: String,
        /// The last `LastUpdateStatus` seen.
        status: String,
        /// How long the wait lasted.
        waited: std::time::Duration,
    },
    /// SSM has no parameter of these names (`GetParameters` listed them as invalid).
    #[error("find SSM parameter{} {}: not found", plural(names), quoted(names))]
    ParametersNotFound {
        /// The names, as asked for.
        names: Vec<String>,
    },
    /// Secrets Manager has no such secret, or no such version of it.
    #[error("find {resource} in Secrets Manager ({operation}): it does not exist")]
    SecretNotFound {
        /// The secret (and version) asked for.
        resource: Resource,
        /// The API operation.
        operation: &'static str,
    },
    /// The secret's value is binary (`SecretBinary`), not text.
    #[error("read {resource} as text: it holds binary data")]
    SecretNotText {
        /// The secret (and version).
        resource: Resource,
    },
    /// The credential chain could not give builds credentials.
    #[error("resolve AWS credentials for builds ({reason})")]
    Credentials {
        /// What the credential chain said.
        reason: String,
    },
    /// Any other service error, with AWS's error code.
    #[error("call {operation} on {resource} (error code {code})")]
    Service {
        /// The API operation.
        operation: &'static str,
        /// What it acted on.
        resource: Resource,
        /// The service's error code, or `unknown`.
        code: String,
        /// The SDK's error.
        #[source]
        source: BoxError,
    },
    /// Reading a response body failed midway.
    #[error("read the body of {resource} ({operation})")]
    Body {
        /// The API operation.
        operation: &'static str,
        /// What it acted on.
        resource: Resource,
        /// The stream's error.
        #[source]
        source: BoxError,
    },
}

fn plural(names: &[String]) -> &'static str {
    if names.len() == 1 { "" } else { "s" }
}

fn quoted(names: &[String]) -> String {
    let list: Vec<String> = names.iter().map(|name| format!("`{name}`")).collect();
    list.join(", ")
}

/// One AWS call, for classifying its failure.
#[derive(Debug)]
pub(crate) struct Call<'a> {
    /// The API operation.
    pub(crate) operation: &'static str,
    /// The endpoint label.
    pub(crate) endpoint: &'a str,
    /// What it acts on.
    pub(crate) resource: Resource,
    /// The KMS key involved (a KMS call's key, or the key an S3 call encrypts with).
    pub(crate) kms_key_id: Option<&'a str>,
}

impl Call<'_> {
    /// Classifies `error` by its kind, error code and HTTP status.
    pub(crate) fn fail<E>(self, error: SdkError<E, HttpResponse>) -> AwsError
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    {
        let unreachable = match &error {
            SdkError::DispatchFailure(failure) => failure.is_io() || failure.is_timeout(),
            SdkError::TimeoutError(_) => true,
            _ => false,
        };
        if unreachable {
            return AwsError::Unreachable {
                endpoint: self.endpoint.to_owned(),
                operation: self.operation,
                resource: self.resource,
                source: Box::new(error),
            };
        }
        let status = error
            .raw_response()
            .map(|response| response.status().as_u16());
        let code = match (error.code(), status) {
            (Some(code), _) => code.to_owned(),
            (None, Some(403)) => "AccessDenied".to_owned(),
            (None, Some(404)) => "NotFound".to_owned(),
            (None, _) => "unknown".to_owned(),
        };
        self.classify(&code, Box::new(error))
    }

    fn classify(self, code: &str, source: BoxError) -> AwsError {
        let operation = self.operation;
        let key_id = || {
            self.kms_key_id
                .unwrap_or("aws/s3 (the AWS-managed default)")
                .to_owned()
        };
        // SSM and Secrets Manager do not say which key protects a value: their KMS failures
        // stay service errors that name the parameter or secret and keep KMS's code.
        let kms_key_known = self.kms_key_id.is_some()
            || matches!(
                self.resource,
                Resource::Bucket { .. } | Resource::Object { .. } | Resource::KmsKey { .. }
            );
        match (code.strip_prefix("KMS.").unwrap_or(code), &self.resource) {
            ("NoSuchBucket", Resource::Bucket { bucket } | Resource::Object { bucket, .. })
            | ("NotFound", Resource::Bucket { bucket }) => AwsError::NoSuchBucket {
                bucket: bucket.clone(),
                operation,
            },
            ("AccessDenied" | "AccessDeniedException" | "Forbidden", _) => AwsError::AccessDenied {
                operation,
                resource: self.resource,
                source,
            },
            ("ResourceNotFoundException", Resource::Function { name }) => {
                AwsError::FunctionNotFound {
                    function: name.clone(),
                    operation,
                }
            }
            ("ResourceNotFoundException", Resource::Secret { .. }) => AwsError::SecretNotFound {
                resource: self.resource,
                operation,
            },
            ("NotFoundException", _) if kms_key_known => AwsError::KmsKeyNotFound {
                key_id: key_id(),
                operation,
            },
            ("DisabledException", _) if kms_key_known => AwsError::KmsKeyDisabled {
                key_id: key_id(),
                operation,
            },
            ("KMSInvalidStateException" | "KeyUnavailableException", _) if kms_key_known => {
                AwsError::KmsKeyUnusable {
                    key_id: key_id(),
                    operation,
                    state: "not in a usable state".to_owned(),
                }
            }
            _ => AwsError::Service {
                operation,
                resource: self.resource,
                code: code.to_owned(),
                source,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(resource: Resource) -> Call<'static> {
        Call {
            operation: "PutObject",
            endpoint: "http://127.0.0.1:1",
            resource,
            kms_key_id: Some("1234abcd"),
        }
    }

    fn classify(code: &str, resource: Resource) -> AwsError {
        call(resource).classify(code, "boom".into())
    }

    #[test]
    fn codes_map_to_variants_that_name_the_resource() {
        let object = Resource::object("artifacts", "p/abc");
        let bucket = Resource::Bucket {
            bucket: "artifacts".to_owned(),
        };
        assert_eq!(
            classify("NoSuchBucket", object.clone()).to_string(),
            "find S3 bucket `artifacts` (PutObject): it does not exist"
        );
        assert!(matches!(
            classify("NotFound", bucket),
            AwsError::NoSuchBucket { .. }
        ));
        assert_eq!(
            classify("KMS.DisabledException", object.clone()).to_string(),
            "use KMS key `1234abcd` (PutObject): the key is disabled"
        );
        assert!(matches!(
            classify("NotFoundException", object.clone()),
            AwsError::KmsKeyNotFound { .. }
        ));
        assert_eq!(
            classify("AccessDenied", object.clone()).to_string(),
            "get permission for PutObject on s3://artifacts/p/abc: access denied"
        );
        assert_eq!(
            classify("SlowDown", object).to_string(),
            "call PutObject on s3://artifacts/p/abc (error code SlowDown)"
        );
    }

    #[test]
    fn parameters_and_secrets_are_named() {
        let secret = Resource::Secret {
            secret_id: "prod/api".to_owned(),
            version: Some("version stage `AWSPENDING`".to_owned()),
        };
        let mut call = call(secret);
        call.operation = "GetSecretValue";
        call.kms_key_id = None;
        assert_eq!(
            call.classify("ResourceNotFoundException", "boom".into())
                .to_string(),
            "find secret `prod/api` (version stage `AWSPENDING`) in Secrets Manager (GetSecretValue): it does not exist"
        );
        let names = vec!["/a".to_owned(), "/b".to_owned()];
        assert_eq!(
            AwsError::ParametersNotFound {
                names: names.clone()
            }
            .to_string(),
            "find SSM parameters `/a`, `/b`: not found"
        );
        let mut call = self::call(Resource::Parameters { names });
        call.kms_key_id = None;
        assert_eq!(
            call.classify("KMS.DisabledException", "boom".into())
                .to_string(),
            "call PutObject on SSM parameters `/a`, `/b` (error code KMS.DisabledException)"
        );
    }
}

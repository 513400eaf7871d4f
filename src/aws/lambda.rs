//! [`LambdaClient`]: the Lambda calls a code deploy makes (read, update or create a function,
//! wait for the update, publish a version, move an alias).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_sdk_lambda::error::ProvideErrorMetadata as _;
use aws_sdk_lambda::operation::get_alias::GetAliasError;
use aws_sdk_lambda::operation::get_function::GetFunctionError;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{Environment, FunctionCode, LastUpdateStatus, Runtime};
use bytes::Bytes;

use super::AwsConfig;
use super::error::{AwsError, Call, Resource};

/// Lambda takes a ZIP of at most this many bytes in the request itself; larger ones go through S3.
pub const DIRECT_UPLOAD_LIMIT: usize = 50 * 1024 * 1024;

/// What `GetFunction` and the update calls report about a function's `$LATEST`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FunctionState {
    /// Base64 SHA-256 of the deployed ZIP.
    pub code_sha256: String,
    /// `$LATEST` for the unpublished function, or a version number.
    pub version: String,
    /// `State` (`Pending` right after a create, `Active`, `Failed`...), when reported.
    pub state: Option<String>,
    /// `LastUpdateStatus` (`Successful`, `InProgress`, `Failed`), when reported.
    pub last_update_status: Option<String>,
    /// Why the last update failed, when it did.
    pub last_update_reason: Option<String>,
}

/// Where new function code comes from.
#[derive(Debug, Clone)]
pub enum CodeSource {
    /// The ZIP itself, at most [`DIRECT_UPLOAD_LIMIT`] bytes.
    Zip(Bytes),
    /// A ZIP already uploaded to S3.
    S3 {
        /// Bucket name.
        bucket: String,
        /// Object key.
        key: String,
    },
}

/// The settings of a function to create.
#[derive(Debug, Clone)]
pub struct NewFunction<'a> {
    /// Function name.
    pub name: &'a str,
    /// Execution role ARN.
    pub role: &'a str,
    /// Runtime, e.g. `python3.11`.
    pub runtime: &'a str,
    /// Handler, e.g. `handler.lambda_handler`.
    pub handler: &'a str,
    /// Memory in MB; Lambda's default when `None`.
    pub memory: Option<u32>,
    /// Timeout in seconds; Lambda's default when `None`.
    pub timeout: Option<u32>,
    /// Environment variables.
    pub env: &'a [(String, String)],
}

/// A Lambda client whose errors name the function and the endpoint.
#[derive(Debug, Clone)]
pub struct LambdaClient {
    client: aws_sdk_lambda::Client,
    endpoint: String,
}

impl LambdaClient {
    /// A client for `config`'s region and endpoint.
    pub fn new(config: &AwsConfig) -> Self {
        Self {
            client: aws_sdk_lambda::Client::new(config.sdk()),
            endpoint: config.endpoint_label("lambda"),
        }
    }

    /// The SDK client, for calls this wrapper does not cover.
    pub fn sdk(&self) -> &aws_sdk_lambda::Client {
        &self.client
    }

    /// The function's `$LATEST` state, or `None` when it does not exist.
    pub async fn get_function(&self, name: &str) -> Result<Option<FunctionState>, AwsError> {
        match self.client.get_function().function_name(name).send().await {
            Ok(output) => Ok(Some(
                output
                    .configuration()
                    .map(|config| FunctionState {
                        code_sha256: config.code_sha256().unwrap_or_default().to_owned(),
                        version: config.version().unwrap_or_default().to_owned(),
                        state: config.state().map(|state| state.as_str().to_owned()),
                        last_update_status: config
                            .last_update_status()
                            .map(|status| status.as_str().to_owned()),
                        last_update_reason: config.last_update_status_reason().map(str::to_owned),
                    })
                    .unwrap_or_default(),
            )),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(GetFunctionError::is_resource_not_found_exception) =>
            {
                Ok(None)
            }
            Err(error) => Err(self.call("GetFunction", name).fail(error)),
        }
    }

    /// Replaces the function's code; returns the new `CodeSha256` (the update may still be in
    /// progress: see [`LambdaClient::wait_until_updated`]).
    pub async fn update_function_code(
        &self,
        name: &str,
        code: CodeSource,
    ) -> Result<String, AwsError> {
        let request = self.client.update_function_code().function_name(name);
        let request = match code {
            CodeSource::Zip(bytes) => request.zip_file(Blob::new(bytes)),
            CodeSource::S3 { bucket, key } => request.s3_bucket(bucket).s3_key(key),
        };
        let output = request
            .send()
            .await
            .map_err(|error| self.call("UpdateFunctionCode", name).fail(error))?;
        Ok(output.code_sha256().unwrap_or_default().to_owned())
    }

    /// Creates the function; returns its `CodeSha256`. A role Lambda cannot use is
    /// [`AwsError::LambdaRoleNotAssumable`].
    pub async fn create_function(
        &self,
        function: &NewFunction<'_>,
        code: CodeSource,
    ) -> Result<String, AwsError> {
        let code = match code {
            CodeSource::Zip(bytes) => FunctionCode::builder().zip_file(Blob::new(bytes)),
            CodeSource::S3 { bucket, key } => FunctionCode::builder().s3_bucket(bucket).s3_key(key),
        }
        .build();
        let variables: HashMap<String, String> = function.env.iter().cloned().collect();
        let output = self
            .client
            .create_function()
            .function_name(function.name)
            .role(function.role)
            .runtime(Runtime::from(function.runtime))
            .handler(function.handler)
            .code(code)
            .set_memory_size(function.memory.and_then(|mb| i32::try_from(mb).ok()))
            .set_timeout(function.timeout.and_then(|s| i32::try_from(s).ok()))
            .environment(
                Environment::builder()
                    .set_variables(Some(variables))
                    .build(),
            )
            .send()
            .await
            .map_err(|error| {
                let role_refused = error.code() == Some("InvalidParameterValueException")
                    && error.message().is_some_and(|text| text.contains("role"));
                if role_refused {
                    AwsError::LambdaRoleNotAssumable {
                        function: function.name.to_owned(),
                        role: function.role.to_owned(),
                        source: Box::new(error),
                    }
                } else {
                    self.call("CreateFunction", function.name).fail(error)
                }
            })?;
        Ok(output.code_sha256().unwrap_or_default().to_owned())
    }

    /// Polls `GetFunction` every `interval` until the function is no longer `Pending` (a new
    /// one) and its `LastUpdateStatus` is `Successful` (or absent, as for a function never
    /// updated); fails when the update becomes `Failed` or `timeout` passes.
    pub async fn wait_until_updated(
        &self,
        name: &str,
        timeout: Duration,
        interval: Duration,
    ) -> Result<FunctionState, AwsError> {
        let started = Instant::now();
        loop {
            let state =
                self.get_function(name)
                    .await?
                    .ok_or_else(|| AwsError::FunctionNotFound {
                        function: name.to_owned(),
                        operation: "GetFunction",
                    })?;
            let pending = state.state.as_deref() == Some("Pending");
            let status = match state.last_update_status.as_deref() {
                None | Some("Successful") if pending => Some(LastUpdateStatus::InProgress),
                status => status.map(LastUpdateStatus::from),
            };
            match status {
                None | Some(LastUpdateStatus::Successful) => return Ok(state),
                Some(LastUpdateStatus::Failed) => {
                    return Err(AwsError::LambdaUpdateFailed {
                        function: name.to_owned(),
                        reason: state
                            .last_update_reason
                            .unwrap_or_else(|| "no reason given".to_owned()),
                    });
                }
                Some(other) if started.elapsed() >= timeout => {
                    return Err(AwsError::LambdaUpdateTimedOut {
                        function: name.to_owned(),
                        status: other.as_str().to_owned(),
                        waited: started.elapsed(),
                    });
                }
                Some(_) => tokio::time::sleep(interval).await,
            }
        }
    }

    /// Publishes `$LATEST` as a new version, only if its code is still `code_sha256`; returns
    /// the version number.
    pub async fn publish_version(&self, name: &str, code_sha256: &str) -> Result<String, AwsError> {
        let output = self
            .client
            .publish_version()
            .function_name(name)
            .code_sha256(code_sha256)
            .send()
            .await
            .map_err(|error| self.call("PublishVersion", name).fail(error))?;
        Ok(output.version().unwrap_or_default().to_owned())
    }

    /// The version `alias` points at, or `None` when there is no such alias.
    pub async fn alias_version(&self, name: &str, alias: &str) -> Result<Option<String>, AwsError> {
        match self
            .client
            .get_alias()
            .function_name(name)
            .name(alias)
            .send()
            .await
        {
            Ok(output) => Ok(output.function_version().map(str::to_owned)),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(GetAliasError::is_resource_not_found_exception) =>
            {
                Ok(None)
            }
            Err(error) => Err(self.call("GetAlias", name).fail(error)),
        }
    }

    /// Points `alias` at `version`, creating the alias when it does not exist.
    pub async fn point_alias(
        &self,
        name: &str,
        alias: &str,
        version: &str,
    ) -> Result<(), AwsError> {
        if self.alias_version(name, alias).await?.is_some() {
            self.client
                .update_alias()
                .function_name(name)
                .name(alias)
                .function_version(version)
                .send()
                .await
                .map_err(|error| self.call("UpdateAlias", name).fail(error))?;
        } else {
            self.client
                .create_alias()
                .function_name(name)
                .name(alias)
                .function_version(version)
                .send()
                .await
                .map_err(|error| self.call("CreateAlias", name).fail(error))?;
        }
        Ok(())
    }

    fn call(&self, operation: &'static str, name: &str) -> Call<'_> {
        Call {
            operation,
            endpoint: &self.endpoint,
            resource: Resource::Function {
                name: name.to_owned(),
            },
            kms_key_id: None,
        }
    }
}

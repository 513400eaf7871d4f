//! `lambda-deploy`: each function's code from a ZIP in the input artifact, several functions at
//! once (bounded by `parallelism`).
//!
//! A function whose deployed `CodeSha256` already equals the ZIP's is left alone; otherwise its
//! code is updated (or the function created), the update waited for, and a version published and
//! an alias moved when the pipeline asks. Output variables: `<function>_CodeSha256`,
//! `<function>_Version` and `<function>_Status` (`created`, `updated` or `unchanged`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use futures_util::StreamExt as _;
use sha2::{Digest as _, Sha256};
use tokio_util::sync::CancellationToken;

use super::{DeployError, Job, aws_config, relative_path, work_dir};
use crate::artifacts::ArtifactStore;
use crate::aws::{
    CodeSource, DIRECT_UPLOAD_LIMIT, LambdaClient, NewFunction, ObjectUpload, S3Client,
};
use crate::engine::event::ActionOutputs;
use crate::pipeline::{LambdaDeployAction, LambdaFunction, Publish};

/// How long a function may stay `InProgress` after an update before the action fails.
const UPDATE_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// How often the update status is polled.
const UPDATE_POLL: Duration = Duration::from_secs(1);

/// What happened to one function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Created,
    Updated,
    Unchanged,
}

impl Change {
    fn as_str(self) -> &'static str {
        match self {
            Change::Created => "created",
            Change::Updated => "updated",
            Change::Unchanged => "unchanged",
        }
    }
}

/// One function's result.
#[derive(Debug)]
struct Deployed {
    name: String,
    change: Change,
    code_sha256: String,
    version: String,
}

/// A function with its settings resolved and its ZIP read.
struct Resolved<'a> {
    spec: &'a LambdaFunction,
    name: String,
    role: Option<String>,
    env: Vec<(String, String)>,
    zip: Bytes,
}

/// The clients and settings every function of the action shares.
struct Clients<'a> {
    lambda: LambdaClient,
    s3: S3Client,
    upload_bucket: Option<&'a str>,
}

pub(super) async fn run<E, S: ArtifactStore>(
    job: &Job<'_, E, S>,
    deploy: &LambdaDeployAction,
    cancel: &CancellationToken,
) -> Result<ActionOutputs, DeployError> {
    let work = work_dir()?;
    let functions = resolve_functions(job, deploy, work.path()).await?;
    let upload_bucket = deploy
        .upload_bucket
        .as_deref()
        .map(|bucket| job.resolve(bucket))
        .transpose()?;
    let config = aws_config(deploy.region.as_deref()).await?;
    let clients = Clients {
        lambda: config.lambda(),
        s3: config.s3(),
        upload_bucket: upload_bucket.as_deref(),
    };
    // The futures are made first: a closure inside the stream trips the `Send` check of the
    // spawned action job.
    let deploys: Vec<_> = functions
        .iter()
        .map(|function| deploy_function(&clients, function, cancel))
        .collect();
    let results: Vec<Result<Deployed, DeployError>> = futures_util::stream::iter(deploys)
        .buffer_unordered(deploy.parallelism.max(1))
        .collect()
        .await;
    if cancel.is_cancelled() {
        return Err(DeployError::Stopped);
    }
    let mut outputs = ActionOutputs::default();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    for result in results {
        match result {
            Ok(deployed) => {
                let line = match deployed.change {
                    Change::Unchanged => format!(
                        "lambda {}: unchanged (CodeSha256 {}, version {})",
                        deployed.name, deployed.code_sha256, deployed.version
                    ),
                    change => format!(
                        "lambda {}: {} (CodeSha256 {}, version {})",
                        deployed.name,
                        change.as_str(),
                        deployed.code_sha256,
                        deployed.version
                    ),
                };
                job.log(&line);
                *counts.entry(deployed.change.as_str()).or_default() += 1;
                let variables = &mut outputs.variables;
                variables.insert(
                    format!("{}_CodeSha256", deployed.name),
                    deployed.code_sha256,
                );
                variables.insert(format!("{}_Version", deployed.name), deployed.version);
                variables.insert(
                    format!("{}_Status", deployed.name),
                    deployed.change.as_str().to_owned(),
                );
            }
            Err(error) => {
                let text = super::super::event::error_chain(&error);
                job.log(&format!("lambda: failed: {text}"));
                failures.push(text);
            }
        }
    }
    let count = |change: Change| counts.get(change.as_str()).copied().unwrap_or(0);
    job.log(&format!(
        "lambda-deploy: {} created, {} updated, {} unchanged, {} failed",
        count(Change::Created),
        count(Change::Updated),
        count(Change::Unchanged),
        failures.len()
    ));
    match failures.len() {
        0 => Ok(outputs),
        1 => Err(DeployError::Prepare(failures.remove(0))),
        _ => Err(DeployError::Several { failures }),
    }
}

/// Resolves every function's texts and reads its ZIP, before any AWS call.
async fn resolve_functions<'a, E, S: ArtifactStore>(
    job: &Job<'_, E, S>,
    deploy: &'a LambdaDeployAction,
    work: &Path,
) -> Result<Vec<Resolved<'a>>, DeployError> {
    let unpacked = if deploy.functions.iter().any(|f| f.zip.is_some()) {
        Some(job.unpack_input(work).await?)
    } else {
        None
    };
    let whole = if deploy.functions.iter().any(|f| f.zip.is_none()) {
        let path = work.join("artifact.zip");
        job.input_zip(&path).await?;
        Some(read(&path).await?)
    } else {
        None
    };
    let mut resolved = Vec::with_capacity(deploy.functions.len());
    for spec in &deploy.functions {
        let zip = match (&spec.zip, &unpacked, &whole) {
            (Some(path), Some(dir), _) => {
                let path = job.resolve(path)?;
                let file = dir.join(relative_path(&path)?);
                if !file.is_file() {
                    return Err(DeployError::ZipMissing {
                        path,
                        artifact: job.input()?.to_owned(),
                    });
                }
                read(&file).await?
            }
            (None, _, Some(bytes)) => bytes.clone(),
            // Both forms were fetched above for the functions that use them.
            _ => {
                return Err(DeployError::Prepare(
                    "the input artifact was not fetched".into(),
                ));
            }
        };
        let env = spec
            .env
            .iter()
            .map(|(name, value)| Ok((name.clone(), job.resolve(value)?)))
            .collect::<Result<_, DeployError>>()?;
        resolved.push(Resolved {
            spec,
            name: job.resolve(&spec.name)?,
            role: spec
                .role
                .as_deref()
                .map(|role| job.resolve(role))
                .transpose()?,
            env,
            zip,
        });
    }
    Ok(resolved)
}

async fn read(path: &Path) -> Result<Bytes, DeployError> {
    fs_err::tokio::read(path)
        .await
        .map(Bytes::from)
        .map_err(|source| DeployError::Read {
            path: PathBuf::from(path),
            source,
        })
}

/// `CodeSha256` as Lambda reports it: the base64 SHA-256 of the ZIP.
fn code_sha256(zip: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(zip))
}

async fn deploy_function(
    clients: &Clients<'_>,
    function: &Resolved<'_>,
    cancel: &CancellationToken,
) -> Result<Deployed, DeployError> {
    if cancel.is_cancelled() {
        return Err(DeployError::Stopped);
    }
    let name = function.name.as_str();
    let sha = code_sha256(&function.zip);
    let lambda = &clients.lambda;
    let current = lambda.get_function(name).await?;
    let change = match &current {
        Some(state) if state.code_sha256 == sha => Change::Unchanged,
        Some(state) => {
            if state.last_update_status.as_deref() == Some("InProgress") {
                lambda
                    .wait_until_updated(name, UPDATE_TIMEOUT, UPDATE_POLL)
                    .await?;
            }
            let code = code_source(clients, function, &sha).await?;
            lambda.update_function_code(name, code).await?;
            Change::Updated
        }
        None => {
            let spec = function.spec;
            let missing = |key: &'static str| DeployError::CreateSettingMissing {
                function: name.to_owned(),
                key,
            };
            let new = NewFunction {
                name,
                role: function.role.as_deref().ok_or_else(|| missing("role"))?,
                runtime: spec.runtime.as_deref().ok_or_else(|| missing("runtime"))?,
                handler: spec.handler.as_deref().ok_or_else(|| missing("handler"))?,
                memory: spec.memory,
                timeout: spec.timeout,
                env: &function.env,
            };
            let code = code_source(clients, function, &sha).await?;
            lambda.create_function(&new, code).await?;
            Change::Created
        }
    };
    let state = if change == Change::Unchanged {
        current.unwrap_or_default()
    } else {
        lambda
            .wait_until_updated(name, UPDATE_TIMEOUT, UPDATE_POLL)
            .await?
    };
    let version = version(lambda, function, change, &state.code_sha256).await?;
    Ok(Deployed {
        name: name.to_owned(),
        change,
        code_sha256: state.code_sha256,
        version,
    })
}

/// Publishes a version and moves the alias when the pipeline asks and the code changed (or the
/// alias is missing); returns the version the function now runs as.
async fn version(
    lambda: &LambdaClient,
    function: &Resolved<'_>,
    change: Change,
    code_sha256: &str,
) -> Result<String, DeployError> {
    let name = function.name.as_str();
    if function.spec.publish == Publish::LatestOnly {
        return Ok("$LATEST".to_owned());
    }
    let alias = function.spec.alias.as_deref();
    if change == Change::Unchanged {
        // An unchanged function keeps the version its alias points at; without an alias there
        // is nothing to look it up by.
        let Some(alias) = alias else {
            return Ok("$LATEST".to_owned());
        };
        if let Some(version) = lambda.alias_version(name, alias).await? {
            return Ok(version);
        }
    }
    let version = lambda.publish_version(name, code_sha256).await?;
    if let Some(alias) = alias {
        lambda.point_alias(name, alias, &version).await?;
    }
    Ok(version)
}

/// The ZIP in the request, or through `upload_bucket` when it is too large for that.
async fn code_source(
    clients: &Clients<'_>,
    function: &Resolved<'_>,
    sha: &str,
) -> Result<CodeSource, DeployError> {
    let size = function.zip.len();
    if size <= DIRECT_UPLOAD_LIMIT {
        return Ok(CodeSource::Zip(function.zip.clone()));
    }
    let Some(bucket) = clients.upload_bucket else {
        return Err(DeployError::ZipTooLarge {
            function: function.name.clone(),
            size,
            limit: DIRECT_UPLOAD_LIMIT,
        });
    };
    let digest = hex::encode(Sha256::digest(&function.zip));
    let key = format!("runner/lambda/{}/{digest}.zip", function.name);
    let upload = ObjectUpload {
        bucket,
        key: &key,
        content_type: "application/zip",
        cache_control: None,
        kms_key_id: None,
        metadata: &[("code-sha256", sha)],
    };
    clients
        .s3
        .upload_object(&upload, function.zip.clone())
        .await?;
    Ok(CodeSource::S3 {
        bucket: bucket.to_owned(),
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_sha256_is_lambdas_base64_digest() {
        // `printf hello | openssl dgst -sha256 -binary | base64`.
        assert_eq!(
            code_sha256(b"hello"),
            "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ="
        );
    }
}

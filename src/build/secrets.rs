//! Resolves `env.parameter-store` and `env.secrets-manager` (B12) before a build's container
//! exists, through SSM `GetParameters` (decrypted, ten names a call) and Secrets Manager
//! `GetSecretValue`.
//!
//! A reference in `env.secrets-manager` is `secret-id[:json-key[:version-stage[:version-id]]]`,
//! CodeBuild's four colon-separated fields; empty fields are absent. `secret-id` is a name or a
//! whole ARN (`arn:<partition>:secretsmanager:<region>:<account>:secret:<name>`, whose colons are
//! its own). Without a JSON key the whole secret text is the value; without a stage or a version
//! id the version is `AWSCURRENT`.
//!
//! Decisions where the spec is silent:
//! - A failure ends `DOWNLOAD_SOURCE` as `FAILED` with CodeBuild's observed status codes,
//!   `Decrypted Variables Error` for Parameter Store (message `parameter does not exist: <name>`)
//!   and `Secrets Manager Error`, each message naming the buildspec variable too. A reference that
//!   cannot be read, or a runner without AWS, is a `CLIENT_ERROR`. No container is started.
//! - A stage and a version id together are refused (CodeBuild's docs say to give one).
//! - A JSON key whose value is not a string yields that value's JSON text.
//! - A binary secret (`SecretBinary`) is refused.

use std::collections::BTreeMap;
use std::error::Error;
use std::fmt::Write as _;

use futures_util::future::join_all;

use crate::aws::{AwsConfig, AwsError, SecretVersion};
use crate::buildspec::SecretRef;

/// Where `env.parameter-store` and `env.secrets-manager` values come from (B12's "pluggable
/// secret provider").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SecretProvider {
    /// None: a buildspec that uses either section fails before any container exists.
    #[default]
    None,
    /// SSM Parameter Store and Secrets Manager through the runner's AWS configuration (the SDK's
    /// standard chain; `AWS_ENDPOINT_URL` honoured), loaded only for builds that need it.
    Aws,
}

/// The phase context of a failed resolution: status code and message.
pub(super) type Failure = (String, String);

const CLIENT_ERROR: &str = "CLIENT_ERROR";
const SSM_ERROR: &str = "Decrypted Variables Error";
const SECRETS_ERROR: &str = "Secrets Manager Error";

/// A parsed `env.secrets-manager` reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SecretsManagerRef<'a> {
    /// Secret name or ARN.
    pub(super) secret_id: &'a str,
    /// The key to read from a JSON secret; `None` for the whole text.
    pub(super) json_key: Option<&'a str>,
    /// Which version.
    pub(super) version: SecretVersion<'a>,
}

/// Parses `secret-id[:json-key[:version-stage[:version-id]]]`; the error says what is wrong.
pub(super) fn parse_reference(text: &str) -> Result<SecretsManagerRef<'_>, String> {
    let (secret_id, rest) = if text.starts_with("arn:") {
        let end = text
            .match_indices(':')
            .nth(6)
            .map_or(text.len(), |(index, _)| index);
        if text[..end].split(':').count() < 7 {
            return Err(format!(
                "`{text}` is not a whole Secrets Manager ARN (arn:<partition>:secretsmanager:<region>:<account>:secret:<name>)"
            ));
        }
        (&text[..end], text.get(end + 1..))
    } else {
        match text.split_once(':') {
            Some((id, rest)) => (id, Some(rest)),
            None => (text, None),
        }
    };
    if secret_id.is_empty() {
        return Err(format!("`{text}` has no secret id"));
    }
    let fields: Vec<&str> = rest
        .map(|rest| rest.split(':').collect())
        .unwrap_or_default();
    if fields.len() > 3 {
        return Err(format!(
            "`{text}` has {} fields; expected secret-id[:json-key[:version-stage[:version-id]]]",
            fields.len() + 1
        ));
    }
    let field = |index: usize| fields.get(index).copied().filter(|f| !f.is_empty());
    let version = match (field(1), field(2)) {
        (None, None) => SecretVersion::Current,
        (Some(stage), None) => SecretVersion::Stage(stage),
        (None, Some(id)) => SecretVersion::Id(id),
        (Some(_), Some(_)) => {
            return Err(format!(
                "`{text}` gives both a version stage and a version id; give one"
            ));
        }
    };
    Ok(SecretsManagerRef {
        secret_id,
        json_key: field(0),
        version,
    })
}

/// Problems visible without AWS: a reference that cannot be read, or no provider at all.
pub(super) fn check(
    secrets: &BTreeMap<String, SecretRef>,
    provider: SecretProvider,
) -> Option<Failure> {
    let (name, _) = secrets.iter().next()?;
    if provider == SecretProvider::None {
        return Some((
            CLIENT_ERROR.into(),
            format!(
                "env.parameter-store / env.secrets-manager variable {name} needs an AWS secret provider, which this runner does not have"
            ),
        ));
    }
    secrets.iter().find_map(|(name, secret)| match secret {
        SecretRef::SecretsManager(text) => parse_reference(text).err().map(|why| {
            (
                CLIENT_ERROR.into(),
                format!("env.secrets-manager.{name}: {why}"),
            )
        }),
        SecretRef::ParameterStore(_) => None,
    })
}

/// The value of every variable in `secrets`, by name. Call [`check`] first.
pub(super) async fn resolve(
    secrets: &BTreeMap<String, SecretRef>,
    provider: SecretProvider,
) -> Result<Vec<(String, String)>, Failure> {
    let Some((first, _)) = secrets.iter().next() else {
        return Ok(Vec::new());
    };
    if let Some(failure) = check(secrets, provider) {
        return Err(failure);
    }
    let aws = AwsConfig::load(None, None).await.map_err(|error| {
        (
            CLIENT_ERROR.to_owned(),
            format!(
                "env.parameter-store / env.secrets-manager variable {first} needs AWS, and none is configured: {}",
                chain(&error)
            ),
        )
    })?;
    let mut values = parameters(&aws, secrets).await?;
    values.extend(secrets_manager(&aws, secrets).await?);
    Ok(values)
}

/// `env.parameter-store`: one `GetParameters` per ten names.
async fn parameters(
    aws: &AwsConfig,
    secrets: &BTreeMap<String, SecretRef>,
) -> Result<Vec<(String, String)>, Failure> {
    let wanted: Vec<(&String, &String)> = secrets
        .iter()
        .filter_map(|(name, secret)| match secret {
            SecretRef::ParameterStore(parameter) => Some((name, parameter)),
            SecretRef::SecretsManager(_) => None,
        })
        .collect();
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let names: Vec<String> = wanted.iter().map(|(_, p)| (*p).clone()).collect();
    let variables_of = |parameter: &str| {
        let variables: Vec<String> = wanted
            .iter()
            .filter(|(_, p)| p.as_str() == parameter)
            .map(|(name, _)| format!("env.parameter-store.{name}"))
            .collect();
        variables.join(", ")
    };
    let values = aws.ssm().get_parameters(&names).await.map_err(|error| {
        let message = match &error {
            AwsError::ParametersNotFound { names } => {
                let mut message = String::from("parameter does not exist: ");
                for (index, parameter) in names.iter().enumerate() {
                    let separator = if index == 0 { "" } else { ", " };
                    let _ = write!(
                        message,
                        "{separator}{parameter} ({})",
                        variables_of(parameter)
                    );
                }
                message
            }
            other => {
                let variables: Vec<String> = wanted
                    .iter()
                    .map(|(name, _)| format!("env.parameter-store.{name}"))
                    .collect();
                format!("{} ({})", chain(other), variables.join(", "))
            }
        };
        (SSM_ERROR.to_owned(), message)
    })?;
    Ok(wanted
        .into_iter()
        .filter_map(|(name, parameter)| Some((name.clone(), values.get(parameter)?.clone())))
        .collect())
}

/// `env.secrets-manager`: one `GetSecretValue` per distinct secret version, all at once.
async fn secrets_manager(
    aws: &AwsConfig,
    secrets: &BTreeMap<String, SecretRef>,
) -> Result<Vec<(String, String)>, Failure> {
    let wanted: Vec<(&String, SecretsManagerRef<'_>)> = secrets
        .iter()
        .filter_map(|(name, secret)| match secret {
            SecretRef::SecretsManager(text) => Some((name, parse_reference(text).ok()?)),
            SecretRef::ParameterStore(_) => None,
        })
        .collect();
    let mut versions: Vec<(&str, SecretVersion<'_>)> = Vec::new();
    for (_, reference) in &wanted {
        let version = (reference.secret_id, reference.version);
        if !versions.contains(&version) {
            versions.push(version);
        }
    }
    let client = aws.secrets();
    let fetched = join_all(
        versions
            .iter()
            .map(|(id, version)| client.get_secret_string(id, *version)),
    )
    .await;
    let mut values = Vec::new();
    for (name, reference) in wanted {
        let failed = |message: String| {
            (
                SECRETS_ERROR.to_owned(),
                format!("{message} (env.secrets-manager.{name})"),
            )
        };
        let index = versions
            .iter()
            .position(|v| *v == (reference.secret_id, reference.version))
            .expect("every reference's version was fetched");
        let text = fetched[index]
            .as_ref()
            .map_err(|error| failed(chain(error)))?;
        let value = match reference.json_key {
            None => text.clone(),
            Some(key) => json_value(text, key)
                .map_err(|why| failed(format!("secret `{}` {why}", reference.secret_id)))?,
        };
        values.push((name.clone(), value));
    }
    Ok(values)
}

/// The value under `key` of a JSON-object secret: a string as is, anything else as JSON text.
fn json_value(text: &str, key: &str) -> Result<String, String> {
    let Ok(serde_json::Value::Object(object)) = serde_json::from_str::<serde_json::Value>(text)
    else {
        return Err(format!(
            "is not a JSON object, so it has no JSON key `{key}`"
        ));
    };
    match object.get(key) {
        Some(serde_json::Value::String(value)) => Ok(value.clone()),
        Some(other) => Ok(other.to_string()),
        None => Err(format!("has no JSON key `{key}`")),
    }
}

/// `error` and its causes, joined with `: `.
fn chain(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let _ = write!(text, ": {cause}");
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> (&str, Option<&str>, SecretVersion<'_>) {
        let reference = parse_reference(text).expect(text);
        (reference.secret_id, reference.json_key, reference.version)
    }

    #[test]
    fn b12_secrets_manager_reference_fields() {
        assert_eq!(
            parsed("prod/api"),
            ("prod/api", None, SecretVersion::Current)
        );
        assert_eq!(
            parsed("prod/api:token"),
            ("prod/api", Some("token"), SecretVersion::Current)
        );
        assert_eq!(
            parsed("prod/api:token:AWSPREVIOUS"),
            (
                "prod/api",
                Some("token"),
                SecretVersion::Stage("AWSPREVIOUS")
            )
        );
        assert_eq!(
            parsed("prod/api:::0b1c"),
            ("prod/api", None, SecretVersion::Id("0b1c"))
        );
        assert_eq!(
            parsed("prod/api::"),
            ("prod/api", None, SecretVersion::Current)
        );
    }

    #[test]
    fn b12_an_arn_keeps_its_own_colons() {
        let arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:t-AbCdEf";
        assert_eq!(parsed(arn), (arn, None, SecretVersion::Current));
        assert_eq!(parsed(&format!("{arn}:key::v1")).1, Some("key"),);
        assert_eq!(
            parsed("arn:aws:secretsmanager:eu-west-1:1:secret:t:key::v1"),
            (
                "arn:aws:secretsmanager:eu-west-1:1:secret:t",
                Some("key"),
                SecretVersion::Id("v1")
            )
        );
    }

    #[test]
    fn b12_unreadable_references_say_why() {
        for (text, why) in [
            ("a:b:c:d:e", "has 5 fields"),
            ("a:k:AWSCURRENT:v1", "both a version stage and a version id"),
            (":key", "has no secret id"),
            (
                "arn:aws:secretsmanager:eu-west-1",
                "not a whole Secrets Manager ARN",
            ),
            (
                "arn:aws:secretsmanager:r:1:secret:t:a:b:c:d",
                "has 5 fields",
            ),
        ] {
            let error = parse_reference(text).expect_err(text);
            assert!(error.contains(why), "{text}: {error}");
        }
    }

    #[test]
    fn b12_json_keys() {
        let text = r#"{"user":"admin","port":5432,"nested":{"a":1}}"#;
        assert_eq!(json_value(text, "user").as_deref(), Ok("admin"));
        assert_eq!(json_value(text, "port").as_deref(), Ok("5432"));
        assert_eq!(json_value(text, "nested").as_deref(), Ok(r#"{"a":1}"#));
        assert!(
            json_value(text, "password")
                .unwrap_err()
                .contains("`password`")
        );
        assert!(
            json_value("plain", "k")
                .unwrap_err()
                .contains("not a JSON object")
        );
    }

    #[test]
    fn b12_without_a_provider_the_variable_is_named() {
        let secrets =
            BTreeMap::from([("DB".to_owned(), SecretRef::ParameterStore("/db".to_owned()))]);
        let (code, message) = check(&secrets, SecretProvider::None).expect("refused");
        assert_eq!(code, "CLIENT_ERROR");
        assert!(message.contains("DB"), "{message}");
        assert_eq!(check(&secrets, SecretProvider::Aws), None);
        assert_eq!(check(&BTreeMap::new(), SecretProvider::None), None);
    }
}

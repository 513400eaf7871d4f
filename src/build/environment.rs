//! Assembles a build's environment in CodeBuild's order of precedence (B48, Section B).
//!
//! Lowest to highest: the image's `ENV` (Docker applies it underneath), the CA-bundle variables,
//! the `CODEBUILD_*` and AWS built-ins, the buildspec's `env` (`variables`, and the resolved
//! `parameter-store` and `secrets-manager` values, whose names never clash, B50), the project's
//! variables, then the start-build override (a pipeline action's variables rank here, B49).
//!
//! [`assemble`] leaves the secrets out (cache keys are expanded from it and become paths on
//! disk); [`with_secrets`] adds them for the container.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::buildspec::Buildspec;

/// Where the CA bundle goes inside the container.
pub const CA_BUNDLE_PATH: &str = "/usr/local/share/runner/ca-bundle.crt";

/// The variables that point TLS clients at a CA bundle.
pub const CA_BUNDLE_VARIABLES: [&str; 6] = [
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "PIP_CERT",
    "NODE_EXTRA_CA_CERTS",
    "AWS_CA_BUNDLE",
    "GIT_SSL_CAINFO",
];

/// Who and what a build is, as CodeBuild reports it in `CODEBUILD_*` variables.
#[derive(Debug, Clone)]
pub struct BuildIdentity {
    /// Project name.
    pub project: String,
    /// The uuid half of the build id.
    pub uuid: String,
    /// Build counter for the project, from 1.
    pub number: u64,
    /// `CODEBUILD_INITIATOR`.
    pub initiator: String,
    /// `CODEBUILD_SOURCE_VERSION`: what was asked for.
    pub source_version: String,
    /// `CODEBUILD_RESOLVED_SOURCE_VERSION`: the commit, if known.
    pub resolved_source_version: Option<String>,
    /// `CODEBUILD_SOURCE_REPO_URL`.
    pub source_repo_url: String,
    /// Pseudo region.
    pub region: String,
    /// Pseudo account id.
    pub account: String,
    /// When the build started.
    pub start_time: DateTime<Utc>,
    /// `CODEBUILD_KMS_KEY_ID`, if artifacts are encrypted.
    pub kms_key_id: Option<String>,
}

impl BuildIdentity {
    /// `<project>:<uuid>`.
    pub fn build_id(&self) -> String {
        format!("{}:{}", self.project, self.uuid)
    }
}

/// The environment layers a caller supplies.
#[derive(Debug, Clone, Default)]
pub struct EnvLayers {
    /// The project's variables (level 2).
    pub project: Vec<(String, String)>,
    /// The start-build override (level 1).
    pub overrides: Vec<(String, String)>,
}

/// A user variable whose name CodeBuild reserves (B11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservedName(pub String);

/// Checks the user layers for `CODEBUILD_` names (B11).
pub fn check_reserved(layers: &EnvLayers) -> Result<(), ReservedName> {
    match layers
        .project
        .iter()
        .chain(&layers.overrides)
        .find(|(name, _)| name.starts_with("CODEBUILD_"))
    {
        Some((name, _)) => Err(ReservedName(name.clone())),
        None => Ok(()),
    }
}

/// The container environment, lowest precedence first, each name once.
pub fn assemble(
    buildspec: &Buildspec,
    identity: &BuildIdentity,
    image: &str,
    src_dir: &str,
    secondary_dirs: &[(String, String)],
    layers: &EnvLayers,
    ca_bundle: bool,
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = Vec::new();
    if ca_bundle {
        for name in CA_BUNDLE_VARIABLES {
            env.push((name.to_owned(), CA_BUNDLE_PATH.to_owned()));
        }
    }
    let build_id = identity.build_id();
    let mut builtins = vec![
        ("CODEBUILD_BUILD_ID", build_id.clone()),
        (
            "CODEBUILD_BUILD_ARN",
            format!(
                "arn:aws:codebuild:{}:{}:build/{build_id}",
                identity.region, identity.account
            ),
        ),
        ("CODEBUILD_BUILD_NUMBER", identity.number.to_string()),
        ("CODEBUILD_BUILD_SUCCEEDING", "1".to_owned()),
        ("CODEBUILD_BUILD_IMAGE", image.to_owned()),
        ("CODEBUILD_INITIATOR", identity.initiator.clone()),
        ("CODEBUILD_SRC_DIR", src_dir.to_owned()),
        ("CODEBUILD_SOURCE_VERSION", identity.source_version.clone()),
        (
            "CODEBUILD_SOURCE_REPO_URL",
            identity.source_repo_url.clone(),
        ),
        (
            "CODEBUILD_START_TIME",
            identity.start_time.timestamp_millis().to_string(),
        ),
        ("CODEBUILD_LOG_PATH", identity.uuid.clone()),
        (
            "CODEBUILD_PROJECT_ARN",
            format!(
                "arn:aws:codebuild:{}:{}:project/{}",
                identity.region, identity.account, identity.project
            ),
        ),
        ("CODEBUILD_BATCH_BUILD_IDENTIFIER", String::new()),
        ("CODEBUILD_PUBLIC_BUILD_URL", String::new()),
        ("CODEBUILD_CI", "true".to_owned()),
        ("AWS_REGION", identity.region.clone()),
        ("AWS_DEFAULT_REGION", identity.region.clone()),
        ("HOME", "/root".to_owned()),
    ];
    if let Some(commit) = &identity.resolved_source_version {
        builtins.push(("CODEBUILD_RESOLVED_SOURCE_VERSION", commit.clone()));
    }
    if let Some(key) = &identity.kms_key_id {
        builtins.push(("CODEBUILD_KMS_KEY_ID", key.clone()));
    }
    env.extend(builtins.into_iter().map(|(k, v)| (k.to_owned(), v)));
    for (id, dir) in secondary_dirs {
        env.push((format!("CODEBUILD_SRC_DIR_{id}"), dir.clone()));
    }
    env.extend(buildspec.env.variables.clone());
    env.extend(layers.project.iter().cloned());
    env.extend(layers.overrides.iter().cloned());
    dedup_last_wins(env)
}

/// `env` (from [`assemble`]) with the buildspec's resolved secrets at their level (B48): above the
/// built-ins, below the project's variables and the override, which keep their values.
pub fn with_secrets(
    mut env: Vec<(String, String)>,
    secrets: &[(String, String)],
    layers: &EnvLayers,
) -> Vec<(String, String)> {
    for (name, value) in secrets {
        let shadowed = layers
            .project
            .iter()
            .chain(&layers.overrides)
            .any(|(upper, _)| upper == name);
        if shadowed {
            continue;
        }
        match env.iter_mut().find(|(existing, _)| existing == name) {
            Some(entry) => entry.1.clone_from(value),
            None => env.push((name.clone(), value.clone())),
        }
    }
    env
}

/// `env` with start-build overrides served from SSM or Secrets Manager (P43): they outrank
/// every layer, like the plain overrides they sit beside.
pub fn with_overrides(
    mut env: Vec<(String, String)>,
    overrides: &[(String, String)],
) -> Vec<(String, String)> {
    for (name, value) in overrides {
        match env.iter_mut().find(|(existing, _)| existing == name) {
            Some(entry) => entry.1.clone_from(value),
            None => env.push((name.clone(), value.clone())),
        }
    }
    env
}

/// Keeps the last value of each name, in first-seen order.
fn dedup_last_wins(env: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut last: BTreeMap<&str, usize> = BTreeMap::new();
    for (index, (name, _)) in env.iter().enumerate() {
        last.insert(name, index);
    }
    let keep: Vec<bool> = env
        .iter()
        .enumerate()
        .map(|(index, (name, _))| last.get(name.as_str()) == Some(&index))
        .collect();
    env.into_iter()
        .zip(keep)
        .filter_map(|(entry, keep)| keep.then_some(entry))
        .collect()
}

/// Expands `$NAME` and `${NAME}` from `env` (unknown names become empty), as the shell would
/// for the simple forms used in cache keys.
pub fn expand(text: &str, env: &[(String, String)]) -> String {
    let lookup = |name: &str| {
        env.iter()
            .rev()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.as_str())
            .to_owned()
    };
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'{') {
            chars.next();
            let name: String = chars.by_ref().take_while(|&c| c != '}').collect();
            out.push_str(&lookup(&name));
        } else {
            let mut name = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_ascii_alphanumeric() || c == '_' {
                    name.push(c);
                    chars.next();
                } else {
                    break;
                }
            }
            if name.is_empty() {
                out.push('$');
            } else {
                out.push_str(&lookup(&name));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> BuildIdentity {
        BuildIdentity {
            project: "demo".into(),
            uuid: "u-1".into(),
            number: 7,
            initiator: "me".into(),
            source_version: "main".into(),
            resolved_source_version: Some("a".repeat(40)),
            source_repo_url: String::new(),
            region: "us-east-1".into(),
            account: "000000000000".into(),
            start_time: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            kms_key_id: None,
        }
    }

    fn value<'a>(env: &'a [(String, String)], name: &str) -> Option<&'a str> {
        env.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn b48_override_beats_project_beats_buildspec() {
        let mut buildspec = Buildspec::default();
        buildspec.env.variables.insert("X".into(), "spec".into());
        buildspec
            .env
            .variables
            .insert("P".into(), "$PATH:/x".into());
        let mut layers = EnvLayers {
            project: vec![("X".into(), "proj".into())],
            overrides: vec![("X".into(), "over".into())],
        };
        let env = assemble(&buildspec, &identity(), "img", "/s", &[], &layers, false);
        assert_eq!(value(&env, "X"), Some("over"));
        assert_eq!(value(&env, "P"), Some("$PATH:/x"));
        layers.overrides.clear();
        let env = assemble(&buildspec, &identity(), "img", "/s", &[], &layers, false);
        assert_eq!(value(&env, "X"), Some("proj"));
        assert_eq!(env.iter().filter(|(n, _)| n == "X").count(), 1);
    }

    #[test]
    fn b48_buildspec_secrets_rank_with_the_buildspec() {
        let layers = EnvLayers {
            project: vec![("P".into(), "proj".into())],
            overrides: vec![("O".into(), "over".into())],
        };
        let env = assemble(
            &Buildspec::default(),
            &identity(),
            "img",
            "/s",
            &[],
            &layers,
            false,
        );
        let secrets: Vec<(String, String)> = [("P", "s"), ("O", "s"), ("S", "s"), ("HOME", "s")]
            .into_iter()
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect();
        let env = with_secrets(env, &secrets, &layers);
        assert_eq!(value(&env, "P"), Some("proj"));
        assert_eq!(value(&env, "O"), Some("over"));
        assert_eq!(value(&env, "S"), Some("s"));
        assert_eq!(value(&env, "HOME"), Some("s"));
        assert_eq!(env.iter().filter(|(n, _)| n == "HOME").count(), 1);
    }

    #[test]
    fn section_b_variables() {
        let env = assemble(
            &Buildspec::default(),
            &identity(),
            "img",
            "/s",
            &[],
            &EnvLayers::default(),
            true,
        );
        assert_eq!(value(&env, "CODEBUILD_BUILD_ID"), Some("demo:u-1"));
        assert_eq!(value(&env, "CODEBUILD_START_TIME"), Some("1700000000000"));
        assert_eq!(value(&env, "CODEBUILD_BUILD_SUCCEEDING"), Some("1"));
        assert_eq!(value(&env, "PIP_CERT"), Some(CA_BUNDLE_PATH));
        assert_eq!(value(&env, "HOME"), Some("/root"));
    }

    #[test]
    fn b11_reserved_prefix_rejected() {
        let layers = EnvLayers {
            project: vec![],
            overrides: vec![("CODEBUILD_FOO".into(), "x".into())],
        };
        assert_eq!(
            check_reserved(&layers),
            Err(ReservedName("CODEBUILD_FOO".into()))
        );
    }

    #[test]
    fn expand_simple_forms() {
        let env = vec![("A".to_owned(), "1".to_owned())];
        assert_eq!(expand("k-$A-${A}-$B-$", &env), "k-1-1--$");
    }
}

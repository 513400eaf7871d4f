//! Checks made before a build container exists: reserved names, secret references we cannot
//! read or serve, `runtime-versions` against the image (B24), and the build's source directory
//! digits.

use std::collections::BTreeMap;

use super::{BuildRequest, EnvLayers, environment, secrets};
use crate::buildspec::{Buildspec, PhaseName};
use crate::executor::{ImageInfo, LABEL_RUNTIMES};

/// Problems that stop a build before any container exists.
pub(super) fn precheck(request: &BuildRequest) -> Option<(String, String)> {
    if let Err(environment::ReservedName(name)) = environment::check_reserved(&request.layers) {
        return Some((
            "CLIENT_ERROR".into(),
            format!("No user environment variables can start with CODEBUILD_: {name}"),
        ));
    }
    secrets::check(&request.buildspec.env.secrets, request.secret_provider)
        .or_else(|| secrets::check(&request.override_secrets, request.secret_provider))
}

/// Values of AWS credential variables, masked like CodeBuild masks them.
pub(super) fn aws_secret_values(layers: &EnvLayers) -> Vec<String> {
    layers
        .project
        .iter()
        .chain(&layers.overrides)
        .filter(|(name, _)| matches!(name.as_str(), "AWS_SECRET_ACCESS_KEY" | "AWS_SESSION_TOKEN"))
        .map(|(_, value)| value.clone())
        .collect()
}

/// Digits for `/codebuild/output/src<digits>/src`, derived from the build uuid.
pub(super) fn source_digits(uuid: &str) -> String {
    let digits: String = uuid
        .bytes()
        .filter(u8::is_ascii_hexdigit)
        .map(|b| char::from(b'0' + (b % 10)))
        .take(9)
        .collect();
    if digits.is_empty() {
        "0".into()
    } else {
        digits
    }
}

/// The outcome of checking `runtime-versions` against the image (B24).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum RuntimeCheck {
    /// Nothing asked, or everything asked is present.
    Fine,
    /// The image has no runtimes label: warn and carry on.
    Unsupported,
    /// A runtime or version the image lacks.
    Missing(String),
}

pub(super) fn runtime_check(buildspec: &Buildspec, image: &ImageInfo) -> RuntimeCheck {
    let Some(requested) = buildspec
        .phases
        .get(&PhaseName::Install)
        .map(|p| &p.runtime_versions)
        .filter(|r| !r.is_empty())
    else {
        return RuntimeCheck::Fine;
    };
    let Some(label) = image.labels.get(LABEL_RUNTIMES) else {
        return RuntimeCheck::Unsupported;
    };
    let available: BTreeMap<&str, &str> = label
        .split_whitespace()
        .filter_map(|pair| pair.split_once('='))
        .collect();
    for (name, version) in requested {
        let Some(have) = available.get(name.as_str()) else {
            return RuntimeCheck::Missing(format!(
                "Unknown runtime named '{name}'. This build image has the following runtimes: {label}"
            ));
        };
        let wanted = version.trim_matches('"');
        let matches = wanted == "latest"
            || wanted.starts_with('$')
            || wanted
                .trim_end_matches(".x")
                .trim_end_matches('x')
                .is_empty()
            || have.starts_with(wanted.trim_end_matches(".x").trim_end_matches('x'));
        if !matches {
            return RuntimeCheck::Missing(format!(
                "Unknown runtime version named '{wanted}' of {name}. This build image has the following versions: {have}"
            ));
        }
    }
    RuntimeCheck::Fine
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buildspec::Phase;

    #[test]
    fn b24_runtime_versions_checked_against_label() {
        let mut buildspec = Buildspec::default();
        let mut install = Phase::default();
        install
            .runtime_versions
            .insert("python".into(), "3.11".into());
        buildspec.phases.insert(PhaseName::Install, install);
        let mut image = ImageInfo::default();
        assert_eq!(runtime_check(&buildspec, &image), RuntimeCheck::Unsupported);
        image
            .labels
            .insert(LABEL_RUNTIMES.into(), "python=3.11 java=17".into());
        assert_eq!(runtime_check(&buildspec, &image), RuntimeCheck::Fine);
        image
            .labels
            .insert(LABEL_RUNTIMES.into(), "python=3.12".into());
        assert!(matches!(
            runtime_check(&buildspec, &image),
            RuntimeCheck::Missing(_)
        ));
    }

    #[test]
    fn source_digits_are_digits() {
        let digits = source_digits("3f2a9c1e-0000");
        assert!(digits.chars().all(|c| c.is_ascii_digit()));
        assert_eq!(digits.len(), 9);
    }
}

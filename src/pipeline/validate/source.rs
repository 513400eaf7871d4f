//! `source:` (where the repository is, and its triggers) and `artifact_store:`.

use super::super::error::ProblemKind;
use super::super::model::{ArtifactStore, RepoRef, SourceConfig};
use super::super::spec::{ArtifactStoreSpec, SourceSpec};
use super::{Ctx, required_at, triggers};

pub(super) fn source_config(cx: &mut Ctx<'_>, spec: SourceSpec) -> Option<SourceConfig> {
    let repo = required_at(cx, spec.repo, "repo", "source.repo");
    let repo = repo.and_then(|repo| {
        let parsed = parse_repo(&repo);
        if parsed.is_none() {
            cx.report("source.repo", ProblemKind::InvalidRepo { repo });
        }
        parsed
    });
    let branch = required_at(cx, spec.branch, "branch", "source.branch");
    let branch = branch.filter(|branch| {
        let valid = is_branch_name(branch);
        if !valid {
            let branch = branch.clone();
            cx.report("source.branch", ProblemKind::InvalidBranch { branch });
        }
        valid
    });
    let triggers = spec
        .triggers
        .map(|spec| triggers::triggers(cx, spec, "source.triggers"));
    Some(SourceConfig {
        repo: repo?,
        branch: branch?,
        triggers,
    })
}

/// `owner/name`, a git URL, or a local path.
fn parse_repo(repo: &str) -> Option<RepoRef> {
    let is_scp = repo
        .split_once(':')
        .is_some_and(|(host, path)| host.contains('@') && !host.contains('/') && !path.is_empty());
    if repo.contains("://") || is_scp {
        return Some(RepoRef::Url(repo.to_owned()));
    }
    if repo == "." || ["/", "./", "../", "~/"].iter().any(|p| repo.starts_with(p)) {
        return Some(RepoRef::Path(repo.into()));
    }
    let (owner, name) = repo.split_once('/')?;
    let owner_ok =
        !owner.is_empty() && owner.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    let name_ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    (owner_ok && name_ok).then(|| RepoRef::GitHub {
        owner: owner.to_owned(),
        name: name.to_owned(),
    })
}

/// The rules of `git check-ref-format --branch` that matter for names people write.
#[expect(
    clippy::case_sensitive_file_extension_comparisons,
    reason = "git refuses exactly `.lock`; ref names are case-sensitive"
)]
fn is_branch_name(branch: &str) -> bool {
    let bad_char = |c: char| c.is_ascii_control() || " ~^:?*[\\".contains(c);
    !branch.is_empty()
        && branch != "@"
        && !branch.chars().any(bad_char)
        && !branch.contains("..")
        && !branch.contains("@{")
        && !branch.ends_with(".lock")
        && !branch.ends_with('.')
        && branch
            .split('/')
            .all(|part| !part.is_empty() && !part.starts_with('.'))
}

pub(super) fn artifact_store(cx: &mut Ctx<'_>, spec: ArtifactStoreSpec) -> ArtifactStore {
    let Some(kind) = required_at(cx, spec.kind, "type", "artifact_store.type") else {
        return ArtifactStore::Local;
    };
    let table = [("local", false), ("s3", true)];
    match cx.choice(&table, "artifact store type", &kind, "artifact_store.type") {
        Some(false) => {
            let extra = [
                ("bucket", spec.bucket.is_some()),
                ("prefix", spec.prefix.is_some()),
                ("kms_key_id", spec.kms_key_id.is_some()),
            ];
            for (key, _) in extra.into_iter().filter(|(_, present)| *present) {
                let context = "a local artifact store";
                let field = format!("artifact_store.{key}");
                cx.report(field, ProblemKind::KeyNotApplicableTo { key, context });
            }
            ArtifactStore::Local
        }
        Some(true) => {
            let bucket = required_at(cx, spec.bucket, "bucket", "artifact_store.bucket");
            if let Some(bucket) = bucket.as_ref().filter(|bucket| !is_bucket_name(bucket)) {
                let bucket = bucket.clone();
                cx.report(
                    "artifact_store.bucket",
                    ProblemKind::InvalidBucket { bucket },
                );
            }
            let prefix = spec.prefix.filter(|prefix| {
                if prefix.is_empty() {
                    cx.report(
                        "artifact_store.prefix",
                        ProblemKind::Empty { key: "prefix" },
                    );
                }
                !prefix.is_empty()
            });
            let kms_key_id = spec.kms_key_id.filter(|key| {
                if key.is_empty() {
                    let kind = ProblemKind::Empty { key: "kms_key_id" };
                    cx.report("artifact_store.kms_key_id", kind);
                }
                !key.is_empty()
            });
            ArtifactStore::S3 {
                bucket: bucket.unwrap_or_default(),
                prefix,
                kms_key_id,
            }
        }
        None => ArtifactStore::Local,
    }
}

pub(super) fn is_bucket_name(bucket: &str) -> bool {
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    (3..=63).contains(&bucket.len())
        && bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        && edge_ok(bucket.chars().next())
        && edge_ok(bucket.chars().last())
        && !bucket.contains("..")
}

#[cfg(test)]
mod tests {
    use test_case::test_case;

    use super::*;

    #[test_case("futureimadmin/hackathons", Some("github") ; "owner and name")]
    #[test_case("https://github.com/a/b.git", Some("url") ; "https")]
    #[test_case("git@github.com:a/b.git", Some("url") ; "scp form")]
    #[test_case("file:///srv/git/app", Some("url") ; "file url")]
    #[test_case("/srv/git/app", Some("path") ; "absolute path")]
    #[test_case("./app", Some("path") ; "relative path")]
    #[test_case("app", None ; "bare word")]
    #[test_case("a/b/c", None ; "three segments")]
    #[test_case("a b/c", None ; "space")]
    fn repo_forms(repo: &str, expected: Option<&str>) {
        let kind = parse_repo(repo).map(|repo| match repo {
            RepoRef::GitHub { .. } => "github",
            RepoRef::Url(_) => "url",
            RepoRef::Path(_) => "path",
        });
        assert_eq!(kind, expected);
    }

    #[test_case("master", true ; "simple")]
    #[test_case("release/1.0", true ; "nested")]
    #[test_case("feature..x", false ; "double dot")]
    #[test_case("a b", false ; "space")]
    #[test_case("/lead", false ; "leading slash")]
    #[test_case("x.lock", false ; "lock suffix")]
    #[test_case("a/.hidden", false ; "hidden component")]
    fn branch_names(branch: &str, expected: bool) {
        assert_eq!(is_branch_name(branch), expected);
    }

    #[test_case("futureim-pipeline-artifacts-dev", true ; "typical")]
    #[test_case("ab", false ; "too short")]
    #[test_case("Upper", false ; "uppercase")]
    #[test_case("-lead", false ; "leading dash")]
    #[test_case("a..b", false ; "double dot")]
    fn bucket_names(bucket: &str, expected: bool) {
        assert_eq!(is_bucket_name(bucket), expected);
    }
}

//! The Source step: fetch a repository into a local mirror, pin a revision, export its tree.
//!
//! [`Mirror`] (in `git.rs`) wraps a bare git2 repository per pipeline and runs every git2 call
//! inside `spawn_blocking`, so callers only see async functions. [`RepoLocator`] parses where the
//! repository lives; `export.rs` writes a commit's tree as the `CODE_ZIP` source artifact (P17).
//! This module knows nothing of pipelines, runs or artifact stores.

mod export;
mod git;
pub mod github;
mod locator;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

pub use git::{MIRROR_REFSPECS, Mirror, RemoteRef};
pub use locator::{DEFAULT_GITHUB_BASE, RepoLocator};

/// Environment variable holding a token for http(s) remotes (sent as the basic-auth password).
pub const RUNNER_GIT_TOKEN: &str = "RUNNER_GIT_TOKEN";

/// P34: `CommitMessage` is truncated at 100 KB.
pub const COMMIT_MESSAGE_LIMIT: usize = 100 * 1024;

/// Why a source step failed.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A repository location that is none of the accepted forms.
    #[error("parse repository location {input:?}: {reason}")]
    InvalidLocator {
        /// The text as given.
        input: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// A revision that is not a valid branch, tag or commit name.
    #[error("parse revision {revision:?}: not a valid branch, tag or commit id")]
    InvalidRevision {
        /// The text as given.
        revision: String,
    },
    /// The mirror directory could not be created, opened or initialised.
    #[error("open git mirror {}", path.display())]
    Mirror {
        /// The mirror's directory.
        path: PathBuf,
        /// What git2 reported.
        #[source]
        source: git2::Error,
    },
    /// The mirror's parent directory could not be created.
    #[error("create mirror directory {}", path.display())]
    CreateMirrorDir {
        /// The directory.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// Fetching from the remote failed.
    #[error("fetch {url}")]
    Fetch {
        /// The remote URL, secrets redacted.
        url: String,
        /// What git2 reported.
        #[source]
        source: git2::Error,
    },
    /// Listing the remote's refs failed.
    #[error("list refs of {url}")]
    ListRemote {
        /// The remote URL, secrets redacted.
        url: String,
        /// What git2 reported.
        #[source]
        source: git2::Error,
    },
    /// No branch, tag or commit of that name exists in the mirror.
    #[error("resolve revision {revision}: no such {} in {url}", revision.kind())]
    UnknownRevision {
        /// The revision asked for.
        revision: Revision,
        /// The remote URL, secrets redacted.
        url: String,
    },
    /// A git object could not be read.
    #[error("read git object {object}")]
    ReadObject {
        /// The object's id, or the ref being peeled.
        object: String,
        /// What git2 reported.
        #[source]
        source: git2::Error,
    },
    /// Comparing two commits failed.
    #[error("diff commits {from}..{to}")]
    Diff {
        /// The older commit.
        from: String,
        /// The newer commit.
        to: String,
        /// What git2 reported.
        #[source]
        source: git2::Error,
    },
    /// Writing the exported tree failed.
    #[error("export {}", path.display())]
    Export {
        /// The file or directory being written.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// The export destination already has files in it.
    #[error("export into {}: the directory is not empty", path.display())]
    DestinationNotEmpty {
        /// The destination.
        path: PathBuf,
    },
    /// A tree entry whose name would write outside the destination (`..`, `/`, empty).
    #[error("export tree entry {path:?}: it would escape the destination directory")]
    PathEscapes {
        /// The entry's path inside the tree.
        path: String,
    },
    /// A tree entry named `.git`, which the artifact must never contain (P17).
    #[error("export tree entry {path:?}: git metadata is not allowed in a source artifact")]
    GitMetadata {
        /// The entry's path inside the tree.
        path: String,
    },
    /// The blocking task running git2 panicked or was cancelled.
    #[error("run git task {operation}")]
    Task {
        /// What the task was doing.
        operation: &'static str,
        /// Why it did not finish.
        #[source]
        source: tokio::task::JoinError,
    },
}

/// Which revision of a repository to build (P29, P35).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revision {
    /// A branch; if none has this name, a tag of this name is tried.
    Branch(String),
    /// A full 40-hex commit id, lowercase.
    Commit(String),
    /// A tag.
    Tag(String),
}

impl Revision {
    /// A full 40-hex string is a commit; `refs/heads/X` a branch, `refs/tags/X` a tag; anything
    /// else a branch (then tag). Names git would refuse are errors.
    pub fn parse(text: &str) -> Result<Self, SourceError> {
        let invalid = || SourceError::InvalidRevision {
            revision: text.to_owned(),
        };
        if text.len() == 40 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(Self::Commit(text.to_ascii_lowercase()));
        }
        let revision = if let Some(tag) = text.strip_prefix("refs/tags/") {
            Self::Tag(tag.to_owned())
        } else {
            Self::Branch(text.strip_prefix("refs/heads/").unwrap_or(text).to_owned())
        };
        git2::Reference::is_valid_name(&revision.ref_name())
            .then_some(revision)
            .ok_or_else(invalid)
    }

    /// The name as given (branch, tag or sha).
    pub fn name(&self) -> &str {
        match self {
            Self::Branch(name) | Self::Commit(name) | Self::Tag(name) => name,
        }
    }

    /// `refs/heads/X`, `refs/tags/X`, or the sha itself.
    pub(crate) fn ref_name(&self) -> String {
        match self {
            Self::Branch(name) => format!("refs/heads/{name}"),
            Self::Tag(name) => format!("refs/tags/{name}"),
            Self::Commit(sha) => sha.clone(),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::Branch(_) => "branch or tag",
            Self::Commit(_) => "commit",
            Self::Tag(_) => "tag",
        }
    }
}

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.name())
    }
}

/// A resolved commit: what a source action pins and reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    /// Full 40-hex id.
    pub sha: String,
    /// `Name <email>` of the author.
    pub author: String,
    /// Author date, RFC 3339 in UTC (`2024-05-01T12:00:00Z`).
    pub author_date: String,
    /// The full commit message.
    pub message: String,
    /// The branch it was resolved from; `None` for a sha or a tag.
    pub branch: Option<String>,
}

impl Commit {
    /// Reads the fields of a git2 commit; `branch` is what it was resolved from.
    fn from_git2(commit: &git2::Commit<'_>, branch: Option<String>) -> Self {
        let author = commit.author();
        let name = String::from_utf8_lossy(author.name_bytes());
        let email = String::from_utf8_lossy(author.email_bytes());
        let author_date = chrono::DateTime::from_timestamp(author.when().seconds(), 0)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        Self {
            sha: commit.id().to_string(),
            author: format!("{name} <{email}>"),
            author_date,
            message: String::from_utf8_lossy(commit.message_bytes()).into_owned(),
            branch,
        }
    }
}

/// The output variables of a `CodeStarSourceConnection` source action (P34).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SourceVariables {
    /// `CommitId`.
    pub commit_id: String,
    /// `BranchName`: the branch resolved; for a tag or pinned sha it is empty, and the caller
    /// fills in the action's configured branch (P30, P35) or the pushed one (P29).
    pub branch_name: String,
    /// `AuthorDate`, RFC 3339 in UTC.
    pub author_date: String,
    /// `CommitMessage`, truncated at [`COMMIT_MESSAGE_LIMIT`] bytes on a character boundary.
    pub commit_message: String,
    /// `FullRepositoryName`, e.g. `owner/name`.
    pub full_repository_name: String,
    /// `ConnectionArn`: always empty, there are no connections here.
    pub connection_arn: String,
}

impl SourceVariables {
    /// The variables for `commit` fetched from `locator`.
    pub fn new(commit: &Commit, locator: &RepoLocator) -> Self {
        Self {
            commit_id: commit.sha.clone(),
            branch_name: commit.branch.clone().unwrap_or_default(),
            author_date: commit.author_date.clone(),
            commit_message: truncate(&commit.message, COMMIT_MESSAGE_LIMIT).to_owned(),
            full_repository_name: locator.full_repository_name().to_owned(),
            connection_arn: String::new(),
        }
    }

    /// The variables keyed by their CodePipeline names.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        [
            ("AuthorDate", &self.author_date),
            ("BranchName", &self.branch_name),
            ("CommitId", &self.commit_id),
            ("CommitMessage", &self.commit_message),
            ("ConnectionArn", &self.connection_arn),
            ("FullRepositoryName", &self.full_repository_name),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value.clone()))
        .collect()
    }
}

/// Credentials for remotes. http(s) uses the token as a basic-auth password (user
/// `x-access-token` unless the URL names one); ssh asks the running ssh-agent (`SSH_AUTH_SOCK`)
/// for the URL's user, or `git`. file:// and git:// need none.
#[derive(Clone, Default)]
pub struct GitAuth {
    token: Option<String>,
}

impl GitAuth {
    /// No token: public http(s) remotes, ssh through the agent.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends `token` to http(s) remotes that ask for credentials.
    #[must_use]
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into()).filter(|token| !token.is_empty());
        self
    }

    /// Reads the token from [`RUNNER_GIT_TOKEN`] when it is set and not empty.
    pub fn from_env() -> Self {
        std::env::var(RUNNER_GIT_TOKEN)
            .map(|token| Self::new().with_token(token))
            .unwrap_or_default()
    }

    pub(crate) fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }
}

impl fmt::Debug for GitAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let token = self.token.as_ref().map(|_| "***");
        f.debug_struct("GitAuth").field("token", &token).finish()
    }
}

/// The longest prefix of `text` of at most `limit` bytes that ends on a character boundary.
fn truncate(text: &str, limit: usize) -> &str {
    if text.len() <= limit {
        return text;
    }
    let end = (0..=limit)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_parse_by_shape() {
        let sha = "0123456789abcdefABCDEF0123456789abcdef01";
        assert_eq!(
            Revision::parse(sha).expect("sha"),
            Revision::Commit(sha.to_ascii_lowercase())
        );
        assert_eq!(
            Revision::parse("main").expect("branch"),
            Revision::Branch("main".into())
        );
        assert_eq!(
            Revision::parse("refs/heads/feature/x").expect("branch"),
            Revision::Branch("feature/x".into())
        );
        assert_eq!(
            Revision::parse("refs/tags/v1").expect("tag"),
            Revision::Tag("v1".into())
        );
        // A short sha is a name, not a commit.
        assert_eq!(
            Revision::parse("0123456").expect("branch"),
            Revision::Branch("0123456".into())
        );
        for bad in ["", "a..b", "bad name", "x.lock", "refs/heads/"] {
            let error = Revision::parse(bad).expect_err(bad);
            assert!(
                matches!(error, SourceError::InvalidRevision { .. }),
                "{bad}"
            );
        }
    }

    #[test]
    fn variables_truncate_the_message_on_a_char_boundary() {
        let commit = Commit {
            sha: "a".repeat(40),
            author: "A <a@example.com>".into(),
            author_date: "2024-05-01T12:00:00Z".into(),
            message: format!("{}é tail", "x".repeat(COMMIT_MESSAGE_LIMIT - 1)),
            branch: Some("main".into()),
        };
        let locator = RepoLocator::parse("acme/widget").expect("locator");
        let variables = SourceVariables::new(&commit, &locator);
        assert_eq!(variables.commit_message.len(), COMMIT_MESSAGE_LIMIT - 1);
        let map = variables.to_map();
        assert_eq!(
            map.keys().map(String::as_str).collect::<Vec<_>>(),
            [
                "AuthorDate",
                "BranchName",
                "CommitId",
                "CommitMessage",
                "ConnectionArn",
                "FullRepositoryName"
            ]
        );
        assert_eq!(map["FullRepositoryName"], "acme/widget");
        assert_eq!(map["BranchName"], "main");
        assert_eq!(map["ConnectionArn"], "");
    }

    #[test]
    fn auth_debug_hides_the_token() {
        let auth = GitAuth::new().with_token("ghp_secret");
        assert!(!format!("{auth:?}").contains("ghp_secret"));
        assert_eq!(GitAuth::new().with_token("").token(), None);
    }
}

//! `RepoLocator`: where a source repository lives, parsed from a pipeline's `repository` value.
//!
//! Accepts `owner/name` (GitHub, under a configurable base URL), `file://`, `http(s)://`,
//! `ssh://` and `git://` URLs, scp-like `user@host:path`, and absolute or `./`-relative local
//! paths. Pure: it touches neither the network nor the file system.

use std::fmt;
use std::path::Path;

use super::SourceError;

/// Where `owner/name` repositories live unless configured otherwise.
pub const DEFAULT_GITHUB_BASE: &str = "https://github.com";

/// URL schemes passed to git as they are.
const SCHEMES: &[&str] = &["file://", "http://", "https://", "ssh://", "git://"];

/// A parsed repository location: the URL git fetches from and the `owner/name` it reports.
#[derive(Clone, PartialEq, Eq)]
pub struct RepoLocator {
    url: String,
    full_name: String,
}

impl RepoLocator {
    /// Parses `input`, sending `owner/name` to [`DEFAULT_GITHUB_BASE`].
    pub fn parse(input: &str) -> Result<Self, SourceError> {
        Self::parse_with_base(input, DEFAULT_GITHUB_BASE)
    }

    /// Parses `input`, sending `owner/name` to `<github_base>/owner/name.git`.
    ///
    /// A relative local path must start with `./` or `../`; a bare `a/b` always means GitHub.
    pub fn parse_with_base(input: &str, github_base: &str) -> Result<Self, SourceError> {
        let invalid = |reason| SourceError::InvalidLocator {
            input: input.to_owned(),
            reason,
        };
        let text = input.trim();
        if text.is_empty() {
            return Err(invalid("it is empty"));
        }
        if text.chars().any(char::is_control) {
            return Err(invalid("it contains control characters"));
        }
        if let Some((owner, name)) = github_shorthand(text) {
            let base = github_base.trim_end_matches('/');
            return Ok(Self {
                url: format!("{base}/{owner}/{name}.git"),
                full_name: format!("{owner}/{name}"),
            });
        }
        let url = if let Some(scheme) = SCHEMES.iter().find(|s| text.starts_with(**s)) {
            if text.len() == scheme.len() {
                return Err(invalid("the url has no host or path"));
            }
            text.to_owned()
        } else if is_scp_like(text) {
            text.to_owned()
        } else if text.starts_with('/') || text.starts_with("./") || text.starts_with("../") {
            std::path::absolute(text)
                .map_err(|_| invalid("the local path cannot be made absolute"))?
                .to_string_lossy()
                .into_owned()
        } else {
            return Err(invalid(
                "expected owner/name, a file://, http(s)://, ssh:// or git:// url, \
                 user@host:path, or a path starting with /, ./ or ../",
            ));
        };
        let full_name = full_name_from_url(&url);
        Ok(Self { url, full_name })
    }

    /// The URL (or local path) handed to git.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The last two path segments without `.git`, e.g. `owner/name` (P34 `FullRepositoryName`).
    pub fn full_repository_name(&self) -> &str {
        &self.full_name
    }

    /// The URL with any password or token in it replaced by `***`, for messages and logs.
    pub fn redacted_url(&self) -> String {
        redact(&self.url)
    }

    /// Whether credentials for this URL come from a token (http and https).
    pub(crate) fn is_http(&self) -> bool {
        self.url.starts_with("http://") || self.url.starts_with("https://")
    }
}

impl fmt::Display for RepoLocator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted_url())
    }
}

impl fmt::Debug for RepoLocator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RepoLocator")
            .field("url", &self.redacted_url())
            .field("full_name", &self.full_name)
            .finish()
    }
}

/// `owner/name` (an optional `.git` suffix dropped) when `text` is exactly that.
fn github_shorthand(text: &str) -> Option<(&str, &str)> {
    let (owner, name) = text.split_once('/')?;
    let name = name.strip_suffix(".git").unwrap_or(name);
    let valid = |part: &str| {
        !part.is_empty()
            && !part.starts_with('.')
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    (valid(owner) && valid(name)).then_some((owner, name))
}

/// git's rule: `[user@]host:path` with no `/` before the first `:`.
fn is_scp_like(text: &str) -> bool {
    match text.split_once(':') {
        Some((host, path)) => {
            !host.is_empty() && !host.contains('/') && !path.is_empty() && !path.starts_with("//")
        }
        None => false,
    }
}

/// The last two path segments of a URL or path, without a trailing `.git`.
fn full_name_from_url(url: &str) -> String {
    let path = match url.split_once("://") {
        Some((_, rest)) => rest.split_once('/').map_or("", |(_, path)| path),
        None => url.rsplit_once(':').map_or(url, |(_, path)| path),
    };
    let path = path.trim_end_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path);
    let mut segments = Path::new(path)
        .iter()
        .filter_map(|s| s.to_str())
        .filter(|s| *s != "/")
        .rev();
    match (segments.next(), segments.next()) {
        (Some(name), Some(owner)) => format!("{owner}/{name}"),
        (Some(name), None) => name.to_owned(),
        _ => String::new(),
    }
}

/// Replaces the userinfo of a `scheme://user:secret@host` URL with `user:***`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => {
            let user = rest[..at].split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***{}", &rest[at..])
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn parse(input: &str) -> RepoLocator {
        RepoLocator::parse_with_base(input, "file:///srv/git/").expect("locator parses")
    }

    #[test]
    fn owner_name_goes_to_the_configured_base() {
        let locator = parse("acme/widget");
        assert_eq!(locator.url(), "file:///srv/git/acme/widget.git");
        assert_eq!(locator.full_repository_name(), "acme/widget");
        assert_eq!(
            parse("acme/widget.git").url(),
            "file:///srv/git/acme/widget.git"
        );
    }

    #[test]
    fn owner_name_defaults_to_github() {
        let locator = RepoLocator::parse("rust-lang/git2-rs").expect("parses");
        assert_eq!(locator.url(), "https://github.com/rust-lang/git2-rs.git");
    }

    #[test]
    fn urls_pass_through_unchanged() {
        for (input, full_name) in [
            ("https://github.com/acme/widget.git", "acme/widget"),
            ("http://127.0.0.1:8080/acme/widget", "acme/widget"),
            ("ssh://git@example.com:2222/acme/widget.git", "acme/widget"),
            ("git://127.0.0.1/acme/widget.git", "acme/widget"),
            ("file:///tmp/repos/acme/widget.git", "acme/widget"),
            ("git@github.com:acme/widget.git", "acme/widget"),
        ] {
            let locator = parse(input);
            assert_eq!(locator.url(), input);
            assert_eq!(locator.full_repository_name(), full_name, "{input}");
        }
    }

    #[test]
    fn local_paths_become_absolute() {
        let locator = parse("/tmp/repos/widget/");
        assert_eq!(locator.url(), "/tmp/repos/widget/");
        assert_eq!(locator.full_repository_name(), "repos/widget");
        assert!(Path::new(parse("./widget").url()).is_absolute());
    }

    #[test]
    fn errors_name_the_input() {
        for input in ["", "widget", "a/b/c", "https://", "a/.hidden", "bad\nline"] {
            let error = RepoLocator::parse(input).expect_err(input);
            assert!(
                matches!(error, SourceError::InvalidLocator { .. }),
                "{input}"
            );
            assert!(error.to_string().contains(&format!("{input:?}")), "{error}");
        }
    }

    #[test]
    fn secrets_in_urls_are_redacted() {
        let locator = parse("https://bot:s3cret@example.com/acme/widget.git");
        assert_eq!(
            locator.redacted_url(),
            "https://bot:***@example.com/acme/widget.git"
        );
        assert!(!format!("{locator:?} {locator}").contains("s3cret"));
        assert_eq!(
            parse("git@github.com:a/b").redacted_url(),
            "git@github.com:a/b"
        );
    }
}

//! GitHub webhooks without a server: [`verify_signature`] checks `X-Hub-Signature-256`, and
//! [`parse_event`] turns a `ping`, `push` or `pull_request` body into a [`WebhookEvent`].
//!
//! The serde structs are private and read only the fields the triggers need; everything else in
//! the payload is skipped. [`WebhookError::status`] gives the HTTP status to answer with. No I/O,
//! no pipelines: `daemon::trigger` decides what an event starts. Webhooks must send JSON.

use std::collections::BTreeSet;

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

/// The largest body accepted, in bytes. GitHub caps payloads at 25 MB and drops larger ones, so
/// any real delivery fits; a smaller limit would silently lose big pushes, and 25 MiB of memory
/// per request in flight is affordable on a build box.
pub const MAX_BODY_BYTES: usize = 25 * 1024 * 1024;

/// The header that carries the payload's HMAC-SHA256.
pub const SIGNATURE_HEADER: &str = "X-Hub-Signature-256";

/// The header that names the event type.
pub const EVENT_HEADER: &str = "X-GitHub-Event";

/// The header that carries the delivery's unique id (for deduplication).
pub const DELIVERY_HEADER: &str = "X-GitHub-Delivery";

/// GitHub lists at most this many commits in a push payload; a push with more is truncated.
pub const MAX_PUSH_COMMITS: usize = 2048;

/// Why a webhook delivery was refused.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The secret is empty, which would accept a signature anyone can compute.
    #[error("verify webhook signature: the configured secret is empty")]
    EmptySecret,
    /// No `X-Hub-Signature-256` header.
    #[error("verify webhook signature: no {SIGNATURE_HEADER} header")]
    MissingSignature,
    /// The header is not `sha256=` followed by 64 hex digits.
    #[error("verify webhook signature: {SIGNATURE_HEADER} is not `sha256=<64 hex digits>`")]
    MalformedSignature,
    /// The signature does not match the body and secret.
    #[error("verify webhook signature: it does not match the payload")]
    BadSignature,
    /// The body is over [`MAX_BODY_BYTES`].
    #[error("read webhook body: {size} bytes is over the limit of {limit}")]
    TooLarge {
        /// The body's length.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The body is not JSON of the shape the event type has.
    #[error("parse {event} webhook payload")]
    MalformedPayload {
        /// The `X-GitHub-Event` value.
        event: String,
        /// What serde reported.
        #[source]
        source: serde_json::Error,
    },
    /// The JSON parses but a value makes no sense (an empty ref, a commit id that is not hex).
    #[error("check {event} webhook payload: {field} {reason}")]
    InvalidPayload {
        /// The `X-GitHub-Event` value.
        event: String,
        /// The JSON path of the value.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl WebhookError {
    /// The HTTP status a server answers with: 401 for signature problems, 413 for an oversized
    /// body, 400 for a body that is not the expected JSON, 422 for JSON with impossible values,
    /// and 500 for an empty secret (a configuration fault, not the sender's).
    pub fn status(&self) -> u16 {
        match self {
            WebhookError::EmptySecret => 500,
            WebhookError::MissingSignature
            | WebhookError::MalformedSignature
            | WebhookError::BadSignature => 401,
            WebhookError::TooLarge { .. } => 413,
            WebhookError::MalformedPayload { .. } => 400,
            WebhookError::InvalidPayload { .. } => 422,
        }
    }
}

/// Refuses a body longer than [`MAX_BODY_BYTES`]; a server calls it with `Content-Length`
/// before reading the body.
pub fn check_size(size: usize) -> Result<(), WebhookError> {
    if size > MAX_BODY_BYTES {
        return Err(WebhookError::TooLarge {
            size,
            limit: MAX_BODY_BYTES,
        });
    }
    Ok(())
}

/// Checks `X-Hub-Signature-256: sha256=<hex>` against HMAC-SHA256 of `body` keyed by `secret`,
/// comparing in constant time.
#[expect(
    clippy::missing_panics_doc,
    reason = "HMAC takes a key of any length, so `new_from_slice` cannot fail"
)]
pub fn verify_signature(
    secret: &[u8],
    body: &[u8],
    header: Option<&str>,
) -> Result<(), WebhookError> {
    if secret.is_empty() {
        return Err(WebhookError::EmptySecret);
    }
    check_size(body.len())?;
    let header = header.ok_or(WebhookError::MissingSignature)?;
    let hex_digest = header
        .trim()
        .strip_prefix("sha256=")
        .filter(|hex_digest| hex_digest.len() == 64)
        .ok_or(WebhookError::MalformedSignature)?;
    let expected = hex::decode(hex_digest).map_err(|_| WebhookError::MalformedSignature)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts a key of any length");
    mac.update(body);
    mac.verify_slice(&expected)
        .map_err(|_| WebhookError::BadSignature)
}

/// A parsed webhook delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookEvent {
    /// Sent when the webhook is created.
    Ping {
        /// The webhook's id.
        hook_id: Option<u64>,
    },
    /// Commits pushed, or a branch or tag created or deleted.
    Push(PushPayload),
    /// Pull-request activity.
    PullRequest(PullRequestPayload),
    /// An event type the runner does not act on; not an error, so GitHub sees a success.
    Ignored {
        /// The `X-GitHub-Event` value.
        event: String,
    },
}

/// What a `push` delivery says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushPayload {
    /// The full ref: `refs/heads/main`, `refs/tags/v1`.
    pub git_ref: String,
    /// The ref's commit before the push; all zeros when it was created.
    pub before: String,
    /// The ref's commit after the push; all zeros when it was deleted.
    pub after: String,
    /// `owner/name`.
    pub repository: String,
    /// Whether the push created, moved or deleted the ref.
    pub change: RefChange,
    /// The pushed commits, oldest first, at most [`MAX_PUSH_COMMITS`].
    pub commits: Vec<PushCommit>,
    /// The commit the ref now points at; `None` when it was deleted.
    pub head_commit: Option<PushCommit>,
}

impl PushPayload {
    /// The union of files the pushed commits add, modify or remove (P28), or `None` when the
    /// payload may not list them all (more than [`MAX_PUSH_COMMITS`] commits), in which case the
    /// caller diffs `before..after` in the mirror.
    pub fn changed_files(&self) -> Option<BTreeSet<String>> {
        if self.commits.len() >= MAX_PUSH_COMMITS {
            return None;
        }
        let files = self.commits.iter().flat_map(|commit| {
            commit
                .added
                .iter()
                .chain(&commit.modified)
                .chain(&commit.removed)
        });
        Some(files.cloned().collect())
    }
}

/// What a push did to its ref.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefChange {
    /// The ref is new.
    Created,
    /// The ref moved.
    Updated,
    /// The ref was deleted.
    Deleted,
}

/// One commit of a push.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PushCommit {
    /// The commit id.
    pub id: String,
    /// The full message.
    #[serde(default)]
    pub message: String,
    /// Paths the commit adds.
    #[serde(default)]
    pub added: Vec<String>,
    /// Paths the commit changes.
    #[serde(default)]
    pub modified: Vec<String>,
    /// Paths the commit deletes.
    #[serde(default)]
    pub removed: Vec<String>,
}

/// What a `pull_request` delivery says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequestPayload {
    /// What happened.
    pub action: PullRequestAction,
    /// The PR number.
    pub number: u64,
    /// `owner/name` of the base repository.
    pub repository: String,
    /// The head (source) branch's commit, which an execution builds (P29).
    pub head_sha: String,
    /// The head (source) branch, without `refs/heads/`.
    pub head_ref: String,
    /// The base (destination) branch, without `refs/heads/`.
    pub base_ref: String,
    /// The base branch's commit when the event was sent.
    pub base_sha: String,
}

/// A pull-request `action`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullRequestAction {
    /// `opened`.
    Opened,
    /// `reopened`.
    Reopened,
    /// `synchronize`: new commits on the head branch.
    Synchronize,
    /// `closed`, merged or not.
    Closed {
        /// Whether it was merged.
        merged: bool,
    },
    /// Any other action (`labeled`, `edited`, ...), which starts nothing (P29).
    Other(String),
}

impl PullRequestAction {
    /// GitHub's spelling of the action (`opened`, `synchronize`, `labeled`, ...).
    pub fn name(&self) -> &str {
        match self {
            Self::Opened => "opened",
            Self::Reopened => "reopened",
            Self::Synchronize => "synchronize",
            Self::Closed { .. } => "closed",
            Self::Other(action) => action,
        }
    }
}

#[derive(Deserialize)]
struct PingJson {
    hook_id: Option<u64>,
}

#[derive(Deserialize)]
struct RepositoryJson {
    full_name: String,
}

#[derive(Deserialize)]
struct PushJson {
    #[serde(rename = "ref")]
    git_ref: String,
    before: String,
    after: String,
    repository: RepositoryJson,
    #[serde(default)]
    created: bool,
    #[serde(default)]
    deleted: bool,
    #[serde(default)]
    commits: Vec<PushCommit>,
    head_commit: Option<PushCommit>,
}

#[derive(Deserialize)]
struct PullRequestJson {
    action: String,
    number: u64,
    repository: RepositoryJson,
    pull_request: PullRequestInnerJson,
}

#[derive(Deserialize)]
struct PullRequestInnerJson {
    #[serde(default)]
    merged: bool,
    head: BranchJson,
    base: BranchJson,
}

#[derive(Deserialize)]
struct BranchJson {
    sha: String,
    #[serde(rename = "ref")]
    git_ref: String,
}

/// Parses a delivery whose `X-GitHub-Event` is `event_header`. Event types other than `ping`,
/// `push` and `pull_request` come back as [`WebhookEvent::Ignored`] without reading the body.
pub fn parse_event(event_header: &str, body: &[u8]) -> Result<WebhookEvent, WebhookError> {
    check_size(body.len())?;
    let event = event_header.trim();
    let malformed = |source| WebhookError::MalformedPayload {
        event: event.to_owned(),
        source,
    };
    match event {
        "ping" => {
            let ping: PingJson = serde_json::from_slice(body).map_err(malformed)?;
            Ok(WebhookEvent::Ping {
                hook_id: ping.hook_id,
            })
        }
        "push" => {
            let push: PushJson = serde_json::from_slice(body).map_err(malformed)?;
            push_payload(push).map(WebhookEvent::Push)
        }
        "pull_request" => {
            let pr: PullRequestJson = serde_json::from_slice(body).map_err(malformed)?;
            pull_request_payload(pr).map(WebhookEvent::PullRequest)
        }
        other => Ok(WebhookEvent::Ignored {
            event: other.to_owned(),
        }),
    }
}

fn push_payload(push: PushJson) -> Result<PushPayload, WebhookError> {
    let invalid = |field, reason| invalid("push", field, reason);
    if !push.git_ref.starts_with("refs/") {
        return Err(invalid("ref", "does not start with `refs/`"));
    }
    for (field, sha) in [("before", &push.before), ("after", &push.after)] {
        if !is_commit_id(sha) {
            return Err(invalid(field, NOT_A_COMMIT_ID));
        }
    }
    let change = match (push.created, push.deleted) {
        (true, true) => return Err(invalid("created", "and `deleted` are both true")),
        (true, false) => RefChange::Created,
        (false, true) => RefChange::Deleted,
        (false, false) => RefChange::Updated,
    };
    Ok(PushPayload {
        git_ref: push.git_ref,
        before: push.before.to_ascii_lowercase(),
        after: push.after.to_ascii_lowercase(),
        repository: push.repository.full_name,
        change,
        commits: push.commits,
        head_commit: push.head_commit,
    })
}

fn pull_request_payload(pr: PullRequestJson) -> Result<PullRequestPayload, WebhookError> {
    let invalid = |field, reason| invalid("pull_request", field, reason);
    let inner = pr.pull_request;
    if !is_commit_id(&inner.head.sha) {
        return Err(invalid("pull_request.head.sha", NOT_A_COMMIT_ID));
    }
    if inner.base.git_ref.is_empty() {
        return Err(invalid("pull_request.base.ref", "is empty"));
    }
    let action = match pr.action.as_str() {
        "opened" => PullRequestAction::Opened,
        "reopened" => PullRequestAction::Reopened,
        "synchronize" => PullRequestAction::Synchronize,
        "closed" => PullRequestAction::Closed {
            merged: inner.merged,
        },
        _ => PullRequestAction::Other(pr.action),
    };
    Ok(PullRequestPayload {
        action,
        number: pr.number,
        repository: pr.repository.full_name,
        head_sha: inner.head.sha.to_ascii_lowercase(),
        head_ref: strip_heads(&inner.head.git_ref),
        base_ref: strip_heads(&inner.base.git_ref),
        base_sha: inner.base.sha.to_ascii_lowercase(),
    })
}

/// GitHub sends PR branch names bare, but accept a full ref too.
fn strip_heads(git_ref: &str) -> String {
    git_ref
        .strip_prefix("refs/heads/")
        .unwrap_or(git_ref)
        .to_owned()
}

fn invalid(event: &str, field: &'static str, reason: &'static str) -> WebhookError {
    let event = event.to_owned();
    WebhookError::InvalidPayload {
        event,
        field,
        reason,
    }
}

const NOT_A_COMMIT_ID: &str = "is not a 40-digit hex commit id";

fn is_commit_id(text: &str) -> bool {
    text.len() == 40 && text.bytes().all(|byte| byte.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use test_case::test_case;

    use super::*;

    const SHA_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const SHA_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const ZEROS: &str = "0000000000000000000000000000000000000000";

    fn sign(secret: &[u8], body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }

    fn push_body(before: &str, after: &str, created: bool, deleted: bool) -> String {
        let head = if deleted {
            "null".to_owned()
        } else {
            format!(
                r#"{{"id": "{after}", "message": "head", "added": [], "modified": ["src/a.rs"], "removed": []}}"#
            )
        };
        format!(
            r#"{{"ref": "refs/heads/main", "before": "{before}", "after": "{after}",
                "created": {created}, "deleted": {deleted}, "forced": false,
                "repository": {{"full_name": "acme/app", "id": 1}},
                "pusher": {{"name": "octocat"}},
                "commits": [
                  {{"id": "{SHA_A}", "message": "one", "added": ["src/new.rs"], "modified": ["README.md"], "removed": []}},
                  {{"id": "{after}", "message": "two", "added": [], "modified": ["src/a.rs"], "removed": ["old.txt"]}}
                ],
                "head_commit": {head}}}"#
        )
    }

    fn pull_request_body(action: &str, merged: bool) -> String {
        format!(
            r#"{{"action": "{action}", "number": 7,
                "repository": {{"full_name": "acme/app"}},
                "pull_request": {{"merged": {merged}, "title": "x",
                  "head": {{"sha": "{SHA_B}", "ref": "feature/x", "label": "acme:feature/x"}},
                  "base": {{"sha": "{SHA_A}", "ref": "main"}}}}}}"#
        )
    }

    #[test]
    fn verify_accepts_github_documentation_vector() {
        // The example from GitHub's "Validating webhook deliveries" page.
        let header = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        verify_signature(
            b"It's a Secret to Everybody",
            b"Hello, World!",
            Some(header),
        )
        .unwrap();
    }

    #[test_case(b"secret", b"body", None, "MissingSignature" ; "missing header")]
    #[test_case(b"secret", b"body", Some("sha1=0123"), "MalformedSignature" ; "wrong algorithm")]
    #[test_case(b"secret", b"body", Some("sha256=abc"), "MalformedSignature" ; "short digest")]
    #[test_case(b"secret", b"body", Some(&format!("sha256={}", "zz".repeat(32))), "MalformedSignature" ; "not hex")]
    #[test_case(b"other", b"body", Some(&sign(b"secret", b"body")), "BadSignature" ; "wrong secret")]
    #[test_case(b"secret", b"tampered", Some(&sign(b"secret", b"body")), "BadSignature" ; "tampered body")]
    #[test_case(b"", b"body", Some(&sign(b"", b"body")), "EmptySecret" ; "empty secret")]
    fn verify_rejects(secret: &[u8], body: &[u8], header: Option<&str>, expected: &str) {
        let error = verify_signature(secret, body, header).unwrap_err();
        assert!(format!("{error:?}").starts_with(expected), "{error:?}");
    }

    #[test]
    fn verify_accepts_own_signature_with_uppercase_hex_and_whitespace() {
        let header = format!(" {} ", sign(b"secret", b"body").to_ascii_uppercase())
            .replace("SHA256=", "sha256=");
        verify_signature(b"secret", b"body", Some(&header)).unwrap();
    }

    #[test]
    fn oversized_body_is_413_before_any_parsing() {
        let body = vec![b'{'; MAX_BODY_BYTES + 1];
        let error = parse_event("push", &body).unwrap_err();
        assert_eq!(error.status(), 413);
        assert_eq!(
            error.to_string(),
            format!(
                "read webhook body: {} bytes is over the limit of {MAX_BODY_BYTES}",
                MAX_BODY_BYTES + 1
            )
        );
        let error = verify_signature(b"secret", &body, Some("sha256=00")).unwrap_err();
        assert_eq!(error.status(), 413);
        check_size(MAX_BODY_BYTES).unwrap();
    }

    #[test_case(&WebhookError::EmptySecret, 500 ; "empty secret")]
    #[test_case(&WebhookError::MissingSignature, 401 ; "missing")]
    #[test_case(&WebhookError::MalformedSignature, 401 ; "malformed signature")]
    #[test_case(&WebhookError::BadSignature, 401 ; "bad")]
    #[test_case(&WebhookError::TooLarge { size: 2, limit: 1 }, 413 ; "too large")]
    #[test_case(&parse_event("push", b"{").unwrap_err(), 400 ; "malformed json")]
    #[test_case(&WebhookError::InvalidPayload { event: "push".into(), field: "ref", reason: "x" }, 422 ; "invalid")]
    fn status_codes(error: &WebhookError, status: u16) {
        assert_eq!(error.status(), status);
    }

    #[test]
    fn ping() {
        let event = parse_event("ping", br#"{"zen": "Keep it simple.", "hook_id": 42}"#).unwrap();
        assert_eq!(event, WebhookEvent::Ping { hook_id: Some(42) });
    }

    #[test]
    fn push_keeps_the_needed_fields() {
        let body = push_body(SHA_A, SHA_B, false, false);
        let WebhookEvent::Push(push) = parse_event("push", body.as_bytes()).unwrap() else {
            panic!("not a push");
        };
        assert_eq!(push.git_ref, "refs/heads/main");
        assert_eq!((push.before.as_str(), push.after.as_str()), (SHA_A, SHA_B));
        assert_eq!(push.repository, "acme/app");
        assert_eq!(push.change, RefChange::Updated);
        assert_eq!(push.commits.len(), 2);
        assert_eq!(push.commits[1].removed, ["old.txt"]);
        assert_eq!(
            push.head_commit.as_ref().map(|c| c.id.as_str()),
            Some(SHA_B)
        );
        let files: Vec<_> = push.changed_files().unwrap().into_iter().collect();
        assert_eq!(files, ["README.md", "old.txt", "src/a.rs", "src/new.rs"]);
    }

    #[test_case(ZEROS, SHA_B, true, false, RefChange::Created ; "created")]
    #[test_case(SHA_A, ZEROS, false, true, RefChange::Deleted ; "deleted")]
    #[test_case(SHA_A, SHA_B, false, false, RefChange::Updated ; "updated")]
    fn push_ref_change(before: &str, after: &str, created: bool, deleted: bool, change: RefChange) {
        let body = push_body(before, after, created, deleted);
        let WebhookEvent::Push(push) = parse_event("push", body.as_bytes()).unwrap() else {
            panic!("not a push");
        };
        assert_eq!(push.change, change);
        assert_eq!(push.head_commit.is_none(), deleted);
    }

    #[test]
    fn truncated_push_has_unknown_files() {
        let commit = PushCommit {
            id: SHA_A.to_owned(),
            message: String::new(),
            added: vec!["a".to_owned()],
            modified: Vec::new(),
            removed: Vec::new(),
        };
        let push = PushPayload {
            git_ref: "refs/heads/main".to_owned(),
            before: SHA_A.to_owned(),
            after: SHA_B.to_owned(),
            repository: "acme/app".to_owned(),
            change: RefChange::Updated,
            commits: vec![commit; MAX_PUSH_COMMITS],
            head_commit: None,
        };
        assert_eq!(push.changed_files(), None);
    }

    #[test_case("opened", false, PullRequestAction::Opened ; "opened")]
    #[test_case("reopened", false, PullRequestAction::Reopened ; "reopened")]
    #[test_case("synchronize", false, PullRequestAction::Synchronize ; "synchronize")]
    #[test_case("closed", true, PullRequestAction::Closed { merged: true } ; "merged")]
    #[test_case("closed", false, PullRequestAction::Closed { merged: false } ; "closed unmerged")]
    #[test_case("labeled", false, PullRequestAction::Other("labeled".to_owned()) ; "labeled")]
    fn pull_request_actions(action: &str, merged: bool, expected: PullRequestAction) {
        let body = pull_request_body(action, merged);
        let event = parse_event("pull_request", body.as_bytes()).unwrap();
        assert_eq!(
            event,
            WebhookEvent::PullRequest(PullRequestPayload {
                action: expected,
                number: 7,
                repository: "acme/app".to_owned(),
                head_sha: SHA_B.to_owned(),
                head_ref: "feature/x".to_owned(),
                base_ref: "main".to_owned(),
                base_sha: SHA_A.to_owned(),
            })
        );
    }

    #[test_case("issues" ; "issues")]
    #[test_case("workflow_run" ; "workflow run")]
    fn unknown_event_types_are_ignored_without_parsing(event: &str) {
        let parsed = parse_event(event, b"not json").unwrap();
        assert_eq!(
            parsed,
            WebhookEvent::Ignored {
                event: event.to_owned()
            }
        );
    }

    #[test_case("push", "{" ; "truncated json")]
    #[test_case("push", r#"{"ref": "refs/heads/main"}"# ; "missing fields")]
    #[test_case("pull_request", r#"{"action": "opened", "number": "7"}"# ; "wrong type")]
    #[test_case("ping", "[]" ; "array")]
    fn malformed_payload_is_400(event: &str, body: &str) {
        let error = parse_event(event, body.as_bytes()).unwrap_err();
        assert_eq!(error.status(), 400, "{error}");
        assert_eq!(error.to_string(), format!("parse {event} webhook payload"));
    }

    #[test]
    fn impossible_values_are_422() {
        let body = push_body(SHA_A, "not-a-sha", false, false);
        let error = parse_event("push", body.as_bytes()).unwrap_err();
        assert_eq!(error.status(), 422);
        assert_eq!(
            error.to_string(),
            "check push webhook payload: after is not a 40-digit hex commit id"
        );
        let body = push_body(SHA_A, SHA_B, true, true);
        assert_eq!(
            parse_event("push", body.as_bytes()).unwrap_err().status(),
            422
        );
    }
}

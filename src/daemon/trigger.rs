//! Whether a push or pull-request event starts a pipeline (P24–P30), and why: [`decide`] and
//! [`decide_pull_request`] return a [`Decision`] whose reason the service logs either way.
//!
//! Pure: the caller supplies the changed files (from the webhook payload, or a mirror diff when
//! the payload is truncated or the trigger came from polling).

use std::fmt::Write as _;

use crate::pipeline::{Patterns, PullRequestEvent, PushFilter, SourceConfig};
use crate::source::github::{PullRequestAction, PullRequestPayload, PushPayload, RefChange};

/// How many changed files a reason lists before summarising the rest.
const LISTED_FILES: usize = 3;

/// A push to one ref, from a webhook or a poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushEvent {
    /// The full ref: `refs/heads/main`, `refs/tags/v1`.
    pub git_ref: String,
    /// The ref's new tip; `None` when the push deleted it.
    pub revision: Option<String>,
    /// Files the push changed (P28 decision: the union over its commits).
    pub files: Vec<String>,
}

impl PushEvent {
    /// The event a webhook push describes, with `files` for the changed files (use
    /// [`PushPayload::changed_files`], or a mirror diff when that is `None`).
    pub fn from_payload(push: &PushPayload, files: Vec<String>) -> Self {
        PushEvent {
            git_ref: push.git_ref.clone(),
            revision: (push.change != RefChange::Deleted).then(|| push.after.clone()),
            files,
        }
    }
}

/// Pull-request activity with the files changed between its base and head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequestActivity<'a> {
    /// The webhook payload.
    pub payload: &'a PullRequestPayload,
    /// Files changed between the base and the head (P28 decision).
    pub files: &'a [String],
}

/// What to do about an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Start an execution.
    Start {
        /// What to build: the pushed tip or the PR head's commit id, or `refs/heads/<branch>`
        /// for a manual start, which the source step resolves to that branch's HEAD.
        revision: String,
        /// Why, for the log.
        reason: String,
    },
    /// Start nothing.
    Skip {
        /// Why, for the log.
        reason: String,
    },
}

/// The kind of ref a push moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GitRef<'a> {
    /// `refs/heads/<name>`.
    Branch(&'a str),
    /// `refs/tags/<name>`.
    Tag(&'a str),
    /// Anything else (`refs/notes/..`, `refs/pull/..`).
    Other(&'a str),
}

impl<'a> GitRef<'a> {
    /// Splits a full ref name.
    pub fn parse(full: &'a str) -> Self {
        if let Some(name) = full.strip_prefix("refs/heads/") {
            GitRef::Branch(name)
        } else if let Some(name) = full.strip_prefix("refs/tags/") {
            GitRef::Tag(name)
        } else {
            GitRef::Other(full)
        }
    }
}

/// Whether a push starts the pipeline whose source is `source` (P24–P28, P30).
pub fn decide(source: &SourceConfig, push: &PushEvent) -> Decision {
    let git_ref = GitRef::parse(&push.git_ref);
    let subject = match git_ref {
        GitRef::Branch(name) => format!("push to {name}"),
        GitRef::Tag(name) => format!("push of tag {name}"),
        GitRef::Other(name) => {
            return skip(format!("push to {name} is neither a branch nor a tag"));
        }
    };
    let Some(revision) = &push.revision else {
        return skip(format!("{subject} deletes it, which starts nothing"));
    };
    let Some(triggers) = &source.triggers else {
        return match git_ref {
            GitRef::Branch(name) if name == source.branch => start(
                revision,
                format!("{subject}, the source branch (no triggers, P30)"),
            ),
            _ => skip(format!(
                "{subject} starts nothing: without triggers only pushes to branch {} do (P30)",
                source.branch
            )),
        };
    };
    if triggers.push.is_empty() {
        return skip(format!(
            "{subject} starts nothing: the triggers have no push filters"
        ));
    }
    let mut misses = Vec::new();
    for (index, filter) in triggers.push.iter().enumerate() {
        match push_filter(filter, index, git_ref, &push.files) {
            Ok(why) => return start(revision, format!("{subject} {why}")),
            Err(why) => misses.push(why),
        }
    }
    skip(format!("{subject} {}", misses.join(", and ")))
}

/// Whether pull-request activity starts the pipeline (P25, P28, P29). An execution builds the
/// PR head's commit; actions other than open, reopen, synchronize and close start nothing.
pub fn decide_pull_request(source: &SourceConfig, activity: &PullRequestActivity<'_>) -> Decision {
    let pr = activity.payload;
    let Some((event, verb)) = pull_request_event(&pr.action) else {
        return skip(format!(
            "pull request #{} action {} is not open, update or close (P29)",
            pr.number,
            pr.action.name()
        ));
    };
    let subject = format!(
        "pull request #{} ({} into {}) {verb}",
        pr.number, pr.head_ref, pr.base_ref
    );
    let filters = source
        .triggers
        .as_ref()
        .map_or(&[][..], |triggers| &triggers.pull_request[..]);
    if filters.is_empty() {
        return skip(format!(
            "{subject} starts nothing: the triggers have no pull_request filters"
        ));
    }
    let mut misses = Vec::new();
    for (index, filter) in filters.iter().enumerate() {
        let location = format!("pull_request[{index}]");
        if !filter.events.contains(&event) {
            misses.push(format!("the event is not in {location}.events"));
            continue;
        }
        let base = |why| format!("base {} {why}", pr.base_ref);
        let result = explain(
            &filter.branches,
            &pr.base_ref,
            &format!("{location}.branches"),
        )
        .map(base)
        .map_err(base)
        .and_then(|why| {
            let Some(paths) = &filter.file_paths else {
                return Ok(why);
            };
            files_match(paths, activity.files, &location).map(|files| format!("{why} and {files}"))
        });
        match result {
            Ok(why) => return start(&pr.head_sha, format!("{subject}: {why}")),
            Err(why) => misses.push(why),
        }
    }
    skip(format!("{subject}: {}", misses.join(", and ")))
}

/// Whether `pr` can only be decided once its changed files are known: a pull-request filter
/// whose event and base branch match has `file_paths`, and the webhook lists no files.
pub fn pull_request_needs_files(source: &SourceConfig, pr: &PullRequestPayload) -> bool {
    let Some((event, _)) = pull_request_event(&pr.action) else {
        return false;
    };
    source.triggers.as_ref().is_some_and(|triggers| {
        triggers.pull_request.iter().any(|filter| {
            filter.file_paths.is_some()
                && filter.events.contains(&event)
                && explain(&filter.branches, &pr.base_ref, "").is_ok()
        })
    })
}

/// The trigger event of a pull-request action and its verb for reasons; `None` for actions
/// that start nothing (P29).
fn pull_request_event(action: &PullRequestAction) -> Option<(PullRequestEvent, &'static str)> {
    match action {
        PullRequestAction::Opened => Some((PullRequestEvent::Open, "opened")),
        PullRequestAction::Reopened => Some((PullRequestEvent::Open, "reopened")),
        PullRequestAction::Synchronize => Some((PullRequestEvent::Updated, "updated")),
        PullRequestAction::Closed { merged: true } => Some((PullRequestEvent::Closed, "merged")),
        PullRequestAction::Closed { merged: false } => Some((PullRequestEvent::Closed, "closed")),
        PullRequestAction::Other(_) => None,
    }
}

/// What a manual start builds: the HEAD of `source.branch`, whatever the triggers (P30, E15).
pub fn decide_manual(source: &SourceConfig) -> Decision {
    start(
        &format!("refs/heads/{}", source.branch),
        format!(
            "manual start builds the head of branch {} (P30)",
            source.branch
        ),
    )
}

/// One push filter: `Ok` says why it matches, `Err` why not.
fn push_filter(
    filter: &PushFilter,
    index: usize,
    git_ref: GitRef<'_>,
    files: &[String],
) -> Result<String, String> {
    let location = format!("push[{index}]");
    match (filter, git_ref) {
        (PushFilter::Tags(tags), GitRef::Tag(name)) => {
            explain(tags, name, &format!("{location}.tags"))
        }
        (PushFilter::Tags(_), _) => Err(format!("is not a tag push, which {location} needs")),
        (
            PushFilter::Branches {
                branches,
                file_paths,
            },
            GitRef::Branch(name),
        ) => {
            let why = explain(branches, name, &format!("{location}.branches"))?;
            match file_paths {
                None => Ok(why),
                Some(paths) => {
                    files_match(paths, files, &location).map(|files| format!("{why} and {files}"))
                }
            }
        }
        (PushFilter::Branches { .. }, _) => {
            Err(format!("is not a branch push, which {location} needs"))
        }
    }
}

/// Whether `text` passes `patterns` (P27), phrased after a subject.
fn explain(patterns: &Patterns, text: &str, location: &str) -> Result<String, String> {
    if let Some(glob) = patterns.excludes.iter().find(|glob| glob.is_match(text)) {
        return Err(format!("matches exclude {glob} of {location}"));
    }
    if patterns.includes.is_empty() {
        return Ok(format!("is not excluded by {location}"));
    }
    match patterns.includes.iter().find(|glob| glob.is_match(text)) {
        Some(glob) => Ok(format!("matches include {glob} of {location}")),
        None => Err(format!("matches no include of {location}")),
    }
}

/// Whether any changed file passes `paths` (P28 decision).
fn files_match(paths: &Patterns, files: &[String], location: &str) -> Result<String, String> {
    let location = format!("{location}.file_paths");
    for file in files {
        if let Ok(why) = explain(paths, file, &location) {
            return Ok(format!("changes {file}, which {why}"));
        }
    }
    Err(format!(
        "changes no file that passes {location} ({})",
        list_files(files)
    ))
}

fn list_files(files: &[String]) -> String {
    if files.is_empty() {
        return "no files changed".to_owned();
    }
    let mut text = format!(
        "changed: {}",
        files[..files.len().min(LISTED_FILES)].join(", ")
    );
    if files.len() > LISTED_FILES {
        let _ = write!(text, " and {} more", files.len() - LISTED_FILES);
    }
    text
}

fn start(revision: &str, reason: String) -> Decision {
    Decision::Start {
        revision: revision.to_owned(),
        reason,
    }
}

fn skip(reason: String) -> Decision {
    Decision::Skip { reason }
}

#[cfg(test)]
mod tests {
    use test_case::test_case;

    use super::*;
    use crate::pipeline;

    const TIP: &str = "cccccccccccccccccccccccccccccccccccccccc";
    const HEAD: &str = "dddddddddddddddddddddddddddddddddddddddd";
    const E15: &str = "    push:\n      - branches: {includes: ['release/**'], excludes: ['release/old*']}\n        file_paths: {includes: ['src/**']}\n";

    /// `triggers` is the indented YAML under `source.triggers`, or `None` for no `triggers` key.
    fn source(triggers: Option<&str>) -> SourceConfig {
        let triggers = triggers.map_or(String::new(), |text| format!("  triggers:\n{text}"));
        let text = format!(
            "name: demo\nsource:\n  repo: acme/app\n  branch: main\n{triggers}stages:\n  - name: source\n    actions:\n      - {{name: checkout, type: source, outputs: [Src]}}\n  - name: gate\n    actions:\n      - {{name: gate, type: approval}}\n"
        );
        pipeline::parse("pipeline.yml", &text)
            .unwrap_or_else(|error| panic!("{error}"))
            .source
    }

    fn push(git_ref: &str, files: &[&str]) -> PushEvent {
        PushEvent {
            git_ref: git_ref.to_owned(),
            revision: Some(TIP.to_owned()),
            files: files.iter().map(|&file| file.to_owned()).collect(),
        }
    }

    fn started(reason: &str) -> Decision {
        start(TIP, reason.to_owned())
    }

    fn skipped(reason: &str) -> Decision {
        skip(reason.to_owned())
    }

    #[test_case("refs/heads/release/1.0", &["src/a.rs"], &started("push to release/1.0 matches include release/** of push[0].branches and changes src/a.rs, which matches include src/** of push[0].file_paths") ; "release branch touching src starts on its tip")]
    #[test_case("refs/heads/release/old-1", &["src/a.rs"], &skipped("push to release/old-1 matches exclude release/old* of push[0].branches") ; "exclude beats include")]
    #[test_case("refs/heads/release/1.0", &["docs/x.md"], &skipped("push to release/1.0 changes no file that passes push[0].file_paths (changed: docs/x.md)") ; "docs only")]
    #[test_case("refs/tags/v1.0", &["src/a.rs"], &skipped("push of tag v1.0 is not a branch push, which push[0] needs") ; "tag push")]
    fn e15_trigger_filters(git_ref: &str, files: &[&str], expected: &Decision) {
        assert_eq!(&decide(&source(Some(E15)), &push(git_ref, files)), expected);
    }

    #[test]
    fn e15_manual_start_builds_the_branch_head() {
        assert_eq!(
            decide_manual(&source(Some(E15))),
            start(
                "refs/heads/main",
                "manual start builds the head of branch main (P30)".to_owned()
            )
        );
    }

    #[test_case("refs/heads/main", &started("push to main, the source branch (no triggers, P30)") ; "source branch")]
    #[test_case("refs/heads/dev", &skipped("push to dev starts nothing: without triggers only pushes to branch main do (P30)") ; "other branch")]
    #[test_case("refs/tags/main", &skipped("push of tag main starts nothing: without triggers only pushes to branch main do (P30)") ; "tag named like the branch")]
    fn p30_no_triggers_starts_on_the_source_branch(git_ref: &str, expected: &Decision) {
        assert_eq!(&decide(&source(None), &push(git_ref, &["x"])), expected);
    }

    #[test]
    fn p30_empty_triggers_start_nothing_automatically() {
        let source = source(Some("    {}\n"));
        assert_eq!(source.triggers, Some(pipeline::Triggers::default()));
        assert_eq!(
            decide(&source, &push("refs/heads/main", &["x"])),
            skipped("push to main starts nothing: the triggers have no push filters")
        );
        assert!(matches!(decide_manual(&source), Decision::Start { .. }));
    }

    #[test]
    fn p30_filtered_trigger_ignores_the_source_branch() {
        let source = source(Some("    push:\n      - branches: {includes: [release]}\n"));
        assert_eq!(
            decide(&source, &push("refs/heads/main", &[])),
            skipped("push to main matches no include of push[0].branches")
        );
    }

    const ONLY_EXCLUDES: &str = "    push:\n      - branches: {excludes: ['old/**']}\n";
    const TAGS_OR_MAIN: &str =
        "    push:\n      - tags: {includes: ['v*']}\n      - branches: {includes: [main]}\n";
    const FILE_EXCLUDES: &str = "    push:\n      - branches: {includes: [main]}\n        file_paths: {includes: ['src/**'], excludes: ['src/gen/**']}\n";

    #[test_case(ONLY_EXCLUDES, "refs/heads/feature/x", &[], &started("push to feature/x is not excluded by push[0].branches") ; "p27 only excludes includes the rest")]
    #[test_case(ONLY_EXCLUDES, "refs/heads/old/x", &[], &skipped("push to old/x matches exclude old/** of push[0].branches") ; "p27 only excludes still excludes")]
    #[test_case(TAGS_OR_MAIN, "refs/tags/v1", &[], &started("push of tag v1 matches include v* of push[0].tags") ; "p28 first filter")]
    #[test_case(TAGS_OR_MAIN, "refs/heads/main", &[], &started("push to main matches include main of push[1].branches") ; "p28 second filter")]
    #[test_case(TAGS_OR_MAIN, "refs/heads/dev", &[], &skipped("push to dev is not a tag push, which push[0] needs, and matches no include of push[1].branches") ; "p28 no filter")]
    #[test_case(TAGS_OR_MAIN, "refs/tags/x1", &[], &skipped("push of tag x1 matches no include of push[0].tags, and is not a branch push, which push[1] needs") ; "p26 tag pattern")]
    #[test_case(FILE_EXCLUDES, "refs/heads/main", &["src/gen/a.rs"], &skipped("push to main changes no file that passes push[0].file_paths (changed: src/gen/a.rs)") ; "p27 file excludes beat includes")]
    #[test_case(FILE_EXCLUDES, "refs/heads/main", &["README", "src/gen/a.rs", "src/b.rs"], &started("push to main matches include main of push[0].branches and changes src/b.rs, which matches include src/** of push[0].file_paths") ; "p28 any file matches")]
    #[test_case(FILE_EXCLUDES, "refs/heads/main", &[], &skipped("push to main changes no file that passes push[0].file_paths (no files changed)") ; "p28 no files")]
    #[test_case(FILE_EXCLUDES, "refs/heads/main", &["a", "b", "c", "d", "e"], &skipped("push to main changes no file that passes push[0].file_paths (changed: a, b, c and 2 more)") ; "long file list")]
    #[test_case(TAGS_OR_MAIN, "refs/notes/commits", &[], &skipped("push to refs/notes/commits is neither a branch nor a tag") ; "other ref")]
    fn push_filters(triggers: &str, git_ref: &str, files: &[&str], expected: &Decision) {
        assert_eq!(
            &decide(&source(Some(triggers)), &push(git_ref, files)),
            expected
        );
    }

    #[test_case(None ; "no triggers")]
    #[test_case(Some(E15) ; "filtered")]
    fn deleted_ref_starts_nothing(triggers: Option<&str>) {
        let event = PushEvent {
            revision: None,
            ..push("refs/heads/main", &["src/a.rs"])
        };
        assert_eq!(
            decide(&source(triggers), &event),
            skipped("push to main deletes it, which starts nothing")
        );
    }

    #[test]
    fn push_event_from_a_deleting_payload_has_no_revision() {
        let payload = PushPayload {
            git_ref: "refs/heads/main".to_owned(),
            before: TIP.to_owned(),
            after: "0".repeat(40),
            repository: "acme/app".to_owned(),
            change: RefChange::Deleted,
            commits: Vec::new(),
            head_commit: None,
        };
        assert_eq!(PushEvent::from_payload(&payload, Vec::new()).revision, None);
        let payload = PushPayload {
            change: RefChange::Updated,
            after: HEAD.to_owned(),
            ..payload
        };
        let event = PushEvent::from_payload(&payload, vec!["a".to_owned()]);
        assert_eq!(event.revision.as_deref(), Some(HEAD));
    }

    const PR_MAIN: &str =
        "    pull_request:\n      - branches: {includes: [main]}\n        events: [open, closed]\n";
    const PR_FILES: &str = "    pull_request:\n      - branches: {excludes: [legacy]}\n        file_paths: {includes: ['src/**']}\n";

    fn pull_request(action: PullRequestAction, base: &str) -> PullRequestPayload {
        PullRequestPayload {
            action,
            number: 7,
            repository: "acme/app".to_owned(),
            head_sha: HEAD.to_owned(),
            head_ref: "feature/x".to_owned(),
            base_ref: base.to_owned(),
            base_sha: TIP.to_owned(),
        }
    }

    #[test_case(PR_MAIN, PullRequestAction::Opened, "main", &[], Some("pull request #7 (feature/x into main) opened: base main matches include main of pull_request[0].branches") ; "p29 opened builds the head")]
    #[test_case(PR_MAIN, PullRequestAction::Reopened, "main", &[], Some("pull request #7 (feature/x into main) reopened: base main matches include main of pull_request[0].branches") ; "reopened counts as open")]
    #[test_case(PR_MAIN, PullRequestAction::Closed { merged: true }, "main", &[], Some("pull request #7 (feature/x into main) merged: base main matches include main of pull_request[0].branches") ; "p29 merged close")]
    #[test_case(PR_MAIN, PullRequestAction::Closed { merged: false }, "main", &[], Some("pull request #7 (feature/x into main) closed: base main matches include main of pull_request[0].branches") ; "p29 unmerged close")]
    #[test_case(PR_MAIN, PullRequestAction::Synchronize, "main", &[], None ; "event not listed")]
    #[test_case(PR_MAIN, PullRequestAction::Opened, "dev", &[], None ; "other base")]
    #[test_case(PR_MAIN, PullRequestAction::Other("labeled".to_owned()), "main", &[], None ; "p29 labels ignored")]
    #[test_case(PR_FILES, PullRequestAction::Synchronize, "main", &["src/a.rs"], Some("pull request #7 (feature/x into main) updated: base main is not excluded by pull_request[0].branches and changes src/a.rs, which matches include src/** of pull_request[0].file_paths") ; "all events by default with files")]
    #[test_case(PR_FILES, PullRequestAction::Synchronize, "main", &["docs/x.md"], None ; "files do not match")]
    #[test_case(PR_FILES, PullRequestAction::Opened, "legacy", &["src/a.rs"], None ; "base excluded")]
    #[test_case(E15, PullRequestAction::Opened, "main", &["src/a.rs"], None ; "push filters only")]
    fn p29_pull_requests(
        triggers: &str,
        action: PullRequestAction,
        base: &str,
        files: &[&str],
        started: Option<&str>,
    ) {
        let payload = pull_request(action, base);
        let files: Vec<String> = files.iter().map(|&file| file.to_owned()).collect();
        let activity = PullRequestActivity {
            payload: &payload,
            files: &files,
        };
        let decision = decide_pull_request(&source(Some(triggers)), &activity);
        match (started, &decision) {
            (Some(reason), _) => assert_eq!(decision, start(HEAD, reason.to_owned())),
            (None, Decision::Skip { .. }) => {}
            (None, Decision::Start { .. }) => panic!("started: {decision:?}"),
        }
    }

    #[test_case(PR_MAIN, PullRequestAction::Synchronize, "main", "pull request #7 (feature/x into main) updated: the event is not in pull_request[0].events" ; "event")]
    #[test_case(PR_MAIN, PullRequestAction::Other("labeled".to_owned()), "main", "pull request #7 action labeled is not open, update or close (P29)" ; "label")]
    #[test_case(PR_FILES, PullRequestAction::Opened, "legacy", "pull request #7 (feature/x into legacy) opened: base legacy matches exclude legacy of pull_request[0].branches" ; "base excluded")]
    #[test_case(E15, PullRequestAction::Opened, "main", "pull request #7 (feature/x into main) opened starts nothing: the triggers have no pull_request filters" ; "no filters")]
    fn pull_request_skip_reasons(
        triggers: &str,
        action: PullRequestAction,
        base: &str,
        reason: &str,
    ) {
        let payload = pull_request(action, base);
        let activity = PullRequestActivity {
            payload: &payload,
            files: &[],
        };
        assert_eq!(
            decide_pull_request(&source(Some(triggers)), &activity),
            skipped(reason)
        );
    }

    #[test_case(PR_FILES, PullRequestAction::Synchronize, "main", true ; "file filter matches event and base")]
    #[test_case(PR_FILES, PullRequestAction::Opened, "legacy", false ; "base excluded")]
    #[test_case(PR_MAIN, PullRequestAction::Opened, "main", false ; "no file filter")]
    #[test_case(PR_FILES, PullRequestAction::Other("labeled".to_owned()), "main", false ; "ignored action")]
    fn pull_requests_that_wait_for_their_files(
        triggers: &str,
        action: PullRequestAction,
        base: &str,
        needs: bool,
    ) {
        let payload = pull_request(action, base);
        assert_eq!(
            pull_request_needs_files(&source(Some(triggers)), &payload),
            needs
        );
    }

    #[test]
    fn pull_requests_never_start_without_triggers() {
        let payload = pull_request(PullRequestAction::Opened, "main");
        let activity = PullRequestActivity {
            payload: &payload,
            files: &[],
        };
        assert!(matches!(
            decide_pull_request(&source(None), &activity),
            Decision::Skip { .. }
        ));
    }
}

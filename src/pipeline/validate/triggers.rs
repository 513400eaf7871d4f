//! `source.triggers`: the filter combinations P25 allows, at most 3 filters per list (P24), at
//! most 8 patterns per list, and patterns that compile as globs (P26).

use super::super::error::{Counted, ProblemKind};
use super::super::glob::Glob;
use super::super::model::{Patterns, PullRequestEvent, PullRequestFilter, PushFilter, Triggers};
use super::super::spec::{PatternsSpec, PullRequestFilterSpec, PushFilterSpec, TriggersSpec};
use super::Ctx;

const FILTERS: (usize, usize) = (1, 3);
const PATTERNS: (usize, usize) = (1, 8);
const EVENTS: (usize, usize) = (1, 3);

pub(super) fn triggers(cx: &mut Ctx<'_>, spec: TriggersSpec, field: &str) -> Triggers {
    let mut triggers = Triggers::default();
    if let Some(filters) = spec.push {
        let list = format!("{field}.push");
        cx.count(&list, Counted::Filters, FILTERS, filters.len());
        for (index, filter) in filters.into_iter().enumerate() {
            if let Some(filter) = push(cx, filter, &format!("{list}[{index}]")) {
                triggers.push.push(filter);
            }
        }
    }
    if let Some(filters) = spec.pull_request {
        let list = format!("{field}.pull_request");
        cx.count(&list, Counted::Filters, FILTERS, filters.len());
        for (index, filter) in filters.into_iter().enumerate() {
            if let Some(filter) = pull_request(cx, filter, &format!("{list}[{index}]")) {
                triggers.pull_request.push(filter);
            }
        }
    }
    triggers
}

/// The keys written, for the combination message.
fn written(keys: &[(&str, bool)]) -> String {
    let names: Vec<String> = keys
        .iter()
        .filter(|(_, present)| *present)
        .map(|(key, _)| format!("`{key}`"))
        .collect();
    if names.is_empty() {
        "none of them".to_owned()
    } else {
        names.join(" with ")
    }
}

fn push(cx: &mut Ctx<'_>, spec: PushFilterSpec, field: &str) -> Option<PushFilter> {
    let branches = spec
        .branches
        .map(|p| patterns(cx, p, &format!("{field}.branches")));
    let tags = spec.tags.map(|p| patterns(cx, p, &format!("{field}.tags")));
    let file_paths = spec
        .file_paths
        .map(|p| patterns(cx, p, &format!("{field}.file_paths")));
    match (tags, branches, file_paths) {
        (Some(tags), None, None) => Some(PushFilter::Tags(tags)),
        (None, Some(branches), file_paths) => Some(PushFilter::Branches {
            branches,
            file_paths,
        }),
        (tags, branches, file_paths) => {
            let found = written(&[
                ("tags", tags.is_some()),
                ("branches", branches.is_some()),
                ("file_paths", file_paths.is_some()),
            ]);
            let kind = ProblemKind::FilterCombination {
                list: "push",
                allowed: "`tags`, `branches`, or `branches` with `file_paths`",
                found,
            };
            cx.report(field, kind);
            None
        }
    }
}

fn pull_request(
    cx: &mut Ctx<'_>,
    spec: PullRequestFilterSpec,
    field: &str,
) -> Option<PullRequestFilter> {
    let branches = spec
        .branches
        .map(|p| patterns(cx, p, &format!("{field}.branches")));
    let file_paths = spec
        .file_paths
        .map(|p| patterns(cx, p, &format!("{field}.file_paths")));
    let events = spec.events.map_or_else(
        || PullRequestEvent::ALL.map(|(_, event)| event).to_vec(),
        |names| events(cx, &names, &format!("{field}.events")),
    );
    let Some(branches) = branches else {
        let found = written(&[("file_paths", file_paths.is_some())]);
        let kind = ProblemKind::FilterCombination {
            list: "pull_request",
            allowed: "`branches`, or `branches` with `file_paths` (and optionally `events`)",
            found,
        };
        cx.report(field, kind);
        return None;
    };
    Some(PullRequestFilter {
        branches,
        file_paths,
        events,
    })
}

fn events(cx: &mut Ctx<'_>, names: &[String], field: &str) -> Vec<PullRequestEvent> {
    cx.count(field, Counted::Events, EVENTS, names.len());
    let mut events = Vec::with_capacity(names.len());
    for (index, name) in names.iter().enumerate() {
        let item = format!("{field}[{index}]");
        if names[..index].contains(name) {
            cx.report(
                item,
                ProblemKind::DuplicateEvent {
                    event: name.clone(),
                },
            );
        } else if let Some(event) = cx.choice(&PullRequestEvent::ALL, "event", name, &item) {
            events.push(event);
        }
    }
    events
}

fn patterns(cx: &mut Ctx<'_>, spec: PatternsSpec, field: &str) -> Patterns {
    if spec.includes.as_ref().is_none_or(Vec::is_empty)
        && spec.excludes.as_ref().is_none_or(Vec::is_empty)
    {
        cx.report(field, ProblemKind::EmptyCriterion);
    }
    Patterns {
        includes: globs(cx, spec.includes, &format!("{field}.includes")),
        excludes: globs(cx, spec.excludes, &format!("{field}.excludes")),
    }
}

fn globs(cx: &mut Ctx<'_>, patterns: Option<Vec<String>>, field: &str) -> Vec<Glob> {
    let Some(patterns) = patterns else {
        return Vec::new();
    };
    cx.count(field, Counted::Patterns, PATTERNS, patterns.len());
    let mut globs = Vec::with_capacity(patterns.len());
    for (index, pattern) in patterns.into_iter().enumerate() {
        let item = format!("{field}[{index}]");
        if pattern.is_empty() {
            cx.report(item, ProblemKind::EmptyPattern);
            continue;
        }
        match Glob::new(&pattern) {
            Ok(glob) => globs.push(glob),
            Err(reason) => cx.report(item, ProblemKind::InvalidGlob { pattern, reason }),
        }
    }
    globs
}

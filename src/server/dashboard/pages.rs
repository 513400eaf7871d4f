//! The dashboard's HTML, rendered from the store's records. Every piece of text goes through
//! [`escape`]; the scripts (`assets/*.js`) re-render the same markup from the JSON API.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use crate::server::{PipelineInfo, StageInfo};
use crate::state::{ActionRun, Execution, ExecutionDetail, StageStatus};

/// `text` with `& < > " '` replaced by character references: safe in element content and in
/// quoted attribute values.
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

/// A whole page: `body_attributes` must already be escaped; `main` is the page's markup.
fn layout(title: &str, body_attributes: &str, script: Option<&str>, main: &str) -> String {
    let script = script.map_or_else(String::new, |name| {
        format!("<script src=\"/assets/{name}\" defer></script>\n")
    });
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · runner</title>
<link rel="stylesheet" href="/assets/dashboard.css">
<script src="/assets/common.js" defer></script>
{script}</head>
<body {body_attributes}>
<header>
<a class="home" href="/">runner</a>
<form id="token-form" autocomplete="off">
<label>API token <input id="token" type="password" placeholder="for start and retry"></label>
<button type="submit">Keep</button> <span id="token-state"></span>
</form>
</header>
<p id="message" role="status"></p>
<main>
{main}</main>
</body>
</html>
"#,
        title = escape(title),
    )
}

/// `2024-01-02 03:04:05 UTC`.
fn time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// `4.1s`, `3m 05s`, `1h 02m`; empty while not ended.
fn duration(started: DateTime<Utc>, ended: Option<DateTime<Utc>>) -> String {
    let Some(ended) = ended else {
        return String::new();
    };
    let millis = (ended - started).num_milliseconds().max(0);
    let seconds = millis / 1000;
    if seconds < 60 {
        format!("{seconds}.{}s", (millis % 1000) / 100)
    } else if seconds < 3600 {
        format!("{}m {:02}s", seconds / 60, seconds % 60)
    } else {
        format!("{}h {:02}m", seconds / 3600, (seconds % 3600) / 60)
    }
}

fn status(status: &str) -> String {
    let status = escape(status);
    format!(r#"<span class="status" data-status="{status}">{status}</span>"#)
}

fn execution_link(execution: &Execution) -> String {
    let id = escape(execution.id.as_str());
    format!(r#"<a href="/executions/{id}">{id}</a>"#)
}

/// `/`.
pub(super) fn index(
    pipelines: &[PipelineInfo],
    latest: &[Option<Execution>],
    recent: &[Execution],
) -> String {
    let mut main = String::from(
        "<h1>Pipelines</h1>\n<table id=\"pipelines\">\n<thead><tr><th>Pipeline</th><th>Source</th>\
         <th>Latest execution</th><th>Status</th><th>Started</th><th>Queued</th><th></th></tr></thead>\n<tbody>\n",
    );
    for (pipeline, execution) in pipelines.iter().zip(latest) {
        let name = escape(&pipeline.name);
        let (link, state, started) = execution.as_ref().map_or_else(
            || (String::new(), String::new(), String::new()),
            |e| {
                (
                    execution_link(e),
                    status(e.status.as_str()),
                    time(e.started_at),
                )
            },
        );
        let _ = writeln!(
            main,
            "<tr data-pipeline=\"{name}\"><td>{name}</td><td>{repo} @ {branch}</td><td>{link}</td>\
             <td>{state}</td><td>{started}</td><td>{queued}</td>\
             <td><button class=\"start\" data-pipeline=\"{name}\">Start</button></td></tr>",
            repo = escape(&pipeline.repo),
            branch = escape(&pipeline.branch),
            queued = pipeline.queued,
        );
    }
    main.push_str(
        "</tbody>\n</table>\n<h2>Recent executions</h2>\n<table id=\"executions\">\n<thead><tr>\
         <th>Execution</th><th>Pipeline</th><th>Status</th><th>Trigger</th><th>Started</th>\
         <th>Duration</th></tr></thead>\n<tbody>\n",
    );
    for execution in recent {
        let _ = writeln!(
            main,
            "<tr><td>{link}</td><td>{pipeline}</td><td>{state}</td><td>{trigger}</td>\
             <td>{started}</td><td>{took}</td></tr>",
            link = execution_link(execution),
            pipeline = escape(&execution.pipeline),
            state = status(execution.status.as_str()),
            trigger = escape(execution.trigger.kind.as_str()),
            started = time(execution.started_at),
            took = duration(execution.started_at, execution.ended_at),
        );
    }
    main.push_str("</tbody>\n</table>\n");
    layout("Pipelines", r#"data-page="index""#, Some("index.js"), &main)
}

/// A 404 page for an unknown execution.
pub(super) fn not_found(execution: &str) -> String {
    let main = format!(
        "<h1>Not found</h1>\n<p>There is no execution <code>{}</code>.</p>\n",
        escape(execution)
    );
    layout("Not found", r#"data-page="not-found""#, None, &main)
}

/// The stages to show, in order: the served pipeline's, then any the execution recorded that it
/// no longer has; each with its actions' names.
fn stages(detail: &ExecutionDetail, structure: &[StageInfo]) -> Vec<StageInfo> {
    let mut stages: Vec<StageInfo> = structure.to_vec();
    for run in &detail.actions {
        let index = stages
            .iter()
            .position(|s| s.name == run.stage)
            .unwrap_or_else(|| {
                stages.push(StageInfo {
                    name: run.stage.clone(),
                    actions: Vec::new(),
                });
                stages.len() - 1
            });
        if !stages[index].actions.contains(&run.action) {
            stages[index].actions.push(run.action.clone());
        }
    }
    stages
}

/// `/executions/{id}`.
pub(super) fn execution(detail: &ExecutionDetail, structure: &[StageInfo]) -> String {
    let execution = &detail.execution;
    let id = escape(execution.id.as_str());
    let terminal = execution.status.is_terminal();
    let mut main = format!(
        "<h1>{pipeline} <small>{id}</small></h1>\n<p class=\"summary\">\
         <span id=\"status\" class=\"status\" data-status=\"{state}\">{state}</span>\
         <span id=\"status-summary\">{summary}</span> · {trigger} · revision <code>{revision}</code>\
         · started {started} · <span id=\"duration\">{took}</span></p>\n<section id=\"stages\" class=\"stages\">\n",
        pipeline = escape(&execution.pipeline),
        state = escape(execution.status.as_str()),
        summary = escape(execution.status_summary.as_deref().unwrap_or_default()),
        trigger = escape(execution.trigger.kind.as_str()),
        revision = escape(
            detail
                .sources
                .first()
                .map_or("", |s| s.revision_id.as_str())
        ),
        started = time(execution.started_at),
        took = duration(execution.started_at, execution.ended_at),
    );
    for stage in stages(detail, structure) {
        main.push_str(&stage_card(detail, &stage, terminal));
    }
    main.push_str(
        "</section>\n<section class=\"logs\">\n<h2>Logs <span id=\"log-state\"></span></h2>\n\
         <pre id=\"log\"></pre>\n</section>\n",
    );
    let attributes = format!(
        r#"data-page="execution" data-execution="{id}" data-structure="{}""#,
        escape(&serde_json::to_string(structure).unwrap_or_else(|_| "[]".to_owned()))
    );
    layout(
        &format!("{} {}", execution.pipeline, execution.id.as_str()),
        &attributes,
        Some("execution.js"),
        &main,
    )
}

fn stage_card(detail: &ExecutionDetail, stage: &StageInfo, terminal: bool) -> String {
    let attempt = detail.stages.iter().rev().find(|s| s.stage == stage.name);
    let shown = attempt.map_or("Pending", |s| s.status.as_str());
    let name = escape(&stage.name);
    let mut card = format!(
        "<div class=\"stage\" data-stage=\"{name}\" data-status=\"{shown}\">\n<h2>{name} \
         <span class=\"stage-status\">{shown}</span> <span class=\"attempt\">{attempt}</span></h2>\n<ul class=\"actions\">\n",
        attempt = attempt.map_or_else(String::new, |s| format!("attempt {}", s.attempt)),
    );
    let latest: Vec<&ActionRun> = detail.latest_actions(&stage.name).collect();
    for action in &stage.actions {
        let run = latest.iter().find(|run| &run.action == action);
        card.push_str(&action_row(action, run.copied()));
    }
    card.push_str("</ul>\n");
    let retryable = matches!(
        attempt.map(|s| s.status),
        Some(StageStatus::Failed | StageStatus::Stopped | StageStatus::Abandoned)
    );
    if terminal && retryable {
        let _ = writeln!(
            card,
            "<button class=\"retry\" data-stage=\"{name}\">Retry</button>"
        );
    }
    card.push_str("</div>\n");
    card
}

fn action_row(action: &str, run: Option<&ActionRun>) -> String {
    let state = run.map_or("Pending", |run| run.status.as_str());
    let (attempt, took, error) = run.map_or_else(
        || (String::new(), String::new(), String::new()),
        |run| {
            (
                format!("#{}", run.attempt),
                duration(run.started_at, run.ended_at),
                run.error.as_deref().map_or_else(String::new, |error| {
                    format!("<div class=\"error\">{}</div>", escape(error))
                }),
            )
        },
    );
    format!(
        "<li class=\"action\" data-action=\"{name}\" data-status=\"{state}\"><span class=\"name\">{name}</span> \
         <span class=\"action-status\">{state}</span> <span class=\"attempt\">{attempt}</span> \
         <span class=\"duration\">{took}</span>{error}</li>\n",
        name = escape(action),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_and_both_quotes() {
        assert_eq!(
            escape(r#"<script>alert("x") & 'y'</script>"#),
            "&lt;script&gt;alert(&quot;x&quot;) &amp; &#39;y&#39;&lt;/script&gt;"
        );
        assert_eq!(escape("plain é"), "plain é");
    }

    #[test]
    fn durations_read_like_a_person_would_write_them() {
        let start = DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let after = |millis| Some(start + chrono::Duration::milliseconds(millis));
        assert_eq!(duration(start, None), "");
        assert_eq!(duration(start, after(4_150)), "4.1s");
        assert_eq!(duration(start, after(185_000)), "3m 05s");
        assert_eq!(duration(start, after(3_720_000)), "1h 02m");
    }
}

//! `runner status`, `runner list` and `runner logs`: what the state database knows.

use std::fmt::Write as _;
use std::io::Write as _;

use anyhow::Context as _;

use super::Outcome;
use super::args::{ListArgs, LogsArgs, StatusArgs};
use super::settings::Settings;
use crate::server::{LogFollower, PartialLine};
use crate::state::{ActionRun, ExecutionDetail, ExecutionId, Store};

async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    Store::open(settings.data_dir.join("state.db"))
        .await
        .context("open the state database")
}

/// The execution named, or the newest one.
async fn resolve(store: &Store, execution: Option<&str>) -> anyhow::Result<ExecutionId> {
    if let Some(id) = execution {
        return Ok(ExecutionId::from(id));
    }
    store
        .list_executions(None, 1)
        .await?
        .into_iter()
        .next()
        .map(|e| e.id)
        .context("there are no executions yet")
}

/// Runs `runner status`.
pub(crate) async fn status(settings: &Settings, args: &StatusArgs) -> anyhow::Result<Outcome> {
    let store = open_store(settings).await?;
    let id = resolve(&store, args.execution.as_deref()).await?;
    print_execution(&store, &id, args.json).await?;
    Ok(Outcome::Success)
}

/// Prints one execution as a table (or JSON) on stdout.
pub(crate) async fn print_execution(
    store: &Store,
    id: &ExecutionId,
    json: bool,
) -> anyhow::Result<()> {
    let detail = store
        .get_execution(id)
        .await
        .with_context(|| format!("read execution {}", id.as_str()))?;
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", to_json(&detail))?;
        return Ok(());
    }
    let execution = &detail.execution;
    let revision = detail
        .sources
        .first()
        .map_or("", |s| s.revision_id.as_str());
    writeln!(
        out,
        "execution {} ({}) {}",
        execution.id.as_str(),
        execution.pipeline,
        execution.status
    )?;
    writeln!(out, "revision  {revision}")?;
    writeln!(
        out,
        "{:<20} {:<24} {:>7} {:<11} {:>9}  DETAIL",
        "STAGE", "ACTION", "ATTEMPT", "STATUS", "DURATION"
    )?;
    for stage in latest_stages(&detail) {
        for action in detail.latest_actions(&stage) {
            let duration = action.ended_at.map_or_else(String::new, |end| {
                let millis = (end - action.started_at).num_milliseconds().max(0);
                format!("{}.{}s", millis / 1000, (millis % 1000) / 100)
            });
            let detail_text = action
                .error
                .clone()
                .unwrap_or_else(|| action.build_id.clone().unwrap_or_default());
            writeln!(
                out,
                "{:<20} {:<24} {:>7} {:<11} {:>9}  {}",
                stage, action.action, action.attempt, action.status, duration, detail_text
            )?;
        }
    }
    Ok(())
}

fn latest_stages(detail: &ExecutionDetail) -> Vec<String> {
    let mut stages: Vec<String> = Vec::new();
    for stage in &detail.stages {
        if !stages.contains(&stage.stage) {
            stages.push(stage.stage.clone());
        }
    }
    stages
}

/// The execution as one line of JSON: its latest action attempts under `actions`, and the full
/// history (every stage attempt, every action attempt, P38) under `stages` and `attempts`.
fn to_json(detail: &ExecutionDetail) -> String {
    let quote = |text: &str| json_string(text);
    let time = |at: Option<chrono::DateTime<chrono::Utc>>| {
        at.map_or("null".into(), |t| quote(&t.to_rfc3339()))
    };
    let action_json = |a: &ActionRun| {
        format!(
            "{{\"stage\":{},\"action\":{},\"attempt\":{},\"stage_attempt\":{},\"status\":{},\"started_at\":{},\"ended_at\":{},\"build_id\":{},\"error\":{}}}",
            quote(&a.stage),
            quote(&a.action),
            a.attempt,
            a.stage_attempt,
            quote(a.status.as_str()),
            time(Some(a.started_at)),
            time(a.ended_at),
            a.build_id.as_deref().map_or("null".into(), quote),
            a.error.as_deref().map_or("null".into(), quote),
        )
    };
    let actions: Vec<String> = latest_stages(detail)
        .iter()
        .flat_map(|stage| detail.latest_actions(stage).map(action_json))
        .collect();
    let attempts: Vec<String> = detail.actions.iter().map(action_json).collect();
    let stages: Vec<String> = detail
        .stages
        .iter()
        .map(|s| {
            format!(
                "{{\"stage\":{},\"attempt\":{},\"retry_mode\":{},\"status\":{},\"started_at\":{},\"ended_at\":{}}}",
                quote(&s.stage),
                s.attempt,
                s.retry_mode.map_or("null".into(), |m| quote(m.as_str())),
                quote(s.status.as_str()),
                time(Some(s.started_at)),
                time(s.ended_at),
            )
        })
        .collect();
    let execution = &detail.execution;
    format!(
        "{{\"id\":{},\"pipeline\":{},\"status\":{},\"revision\":{},\"started_at\":{},\"ended_at\":{},\"actions\":[{}],\"stages\":[{}],\"attempts\":[{}]}}",
        quote(execution.id.as_str()),
        quote(&execution.pipeline),
        quote(execution.status.as_str()),
        detail
            .sources
            .first()
            .map_or("null".into(), |s| quote(&s.revision_id)),
        time(Some(execution.started_at)),
        time(execution.ended_at),
        actions.join(","),
        stages.join(","),
        attempts.join(",")
    )
}

/// `text` as a JSON string literal (RFC 8259 escapes; Rust's `{:?}` is not JSON).
fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for character in text.chars() {
        match character {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Runs `runner list`.
pub(crate) async fn list(settings: &Settings, args: &ListArgs) -> anyhow::Result<Outcome> {
    let store = open_store(settings).await?;
    let executions = store
        .list_executions(args.pipeline.as_deref(), args.limit)
        .await?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<36} {:<16} {:<11} {:<20} STARTED",
        "EXECUTION", "PIPELINE", "STATUS", "TRIGGER"
    )?;
    for execution in executions {
        writeln!(
            out,
            "{:<36} {:<16} {:<11} {:<20} {}",
            execution.id.as_str(),
            execution.pipeline,
            execution.status,
            execution.trigger.kind,
            execution.started_at.format("%Y-%m-%d %H:%M:%S")
        )?;
    }
    Ok(Outcome::Success)
}

/// Runs `runner logs`: the latest attempt of each action, and with `--follow` what the running
/// build writes next (`server::LogFollower`, which the log stream of `runner serve` shares).
pub(crate) async fn logs(settings: &Settings, args: &LogsArgs) -> anyhow::Result<Outcome> {
    let store = open_store(settings).await?;
    let id = resolve(&store, Some(&args.execution)).await?;
    let mut follower = LogFollower::new(args.action.clone());
    loop {
        let detail = store.get_execution(&id).await?;
        let finished = detail.execution.status.is_terminal();
        let partial = if finished || !args.follow {
            PartialLine::Take
        } else {
            PartialLine::Hold
        };
        let lines = follower
            .read_new(&detail, partial)
            .await
            .context("read a build log")?;
        let mut out = std::io::stdout().lock();
        for line in lines {
            writeln!(out, "[{}] {}", line.name(), line.text)?;
        }
        out.flush()?;
        if !args.follow || finished {
            return Ok(Outcome::Success);
        }
        drop(out);
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::json_string;

    #[test]
    fn json_strings_escape_quotes_backslashes_and_control_characters() {
        assert_eq!(
            json_string("a \"b\" \\ c\n\t\u{1b}[0m é"),
            r#""a \"b\" \\ c\n\t\u001b[0m é""#
        );
    }
}

//! `runner approve`, `runner cancel` and `runner graph`: small commands around executions.

use anyhow::{Context as _, bail};

use super::Outcome;
use super::approvals;
use super::args::{ApproveArgs, CancelArgs, GraphArgs, TransitionArgs};
use super::run;
use super::settings::Settings;

/// Writes a request file for the running execution.
fn write_request(path: &std::path::Path, content: &str) -> anyhow::Result<()> {
    crate::state::requests::write(path, content)
        .with_context(|| format!("write the request {}", path.display()))
}

/// Runs `runner approve`.
#[expect(
    clippy::print_stdout,
    reason = "the confirmation is this command's output"
)]
pub(crate) fn approve(settings: &Settings, args: &ApproveArgs) -> anyhow::Result<Outcome> {
    let Some((stage, action)) = args.target.split_once('/') else {
        bail!("expected STAGE/ACTION, got {:?}", args.target);
    };
    let path = approvals::approval_file(&settings.data_dir, &args.execution, stage, action);
    let answer = match &args.reject {
        Some(reason) => format!("rejected: {reason}"),
        None => "approved".to_owned(),
    };
    write_request(&path, &answer)?;
    println!("{stage}/{action} of {}: {answer}", args.execution);
    Ok(Outcome::Success)
}

/// Runs `runner cancel`.
#[expect(
    clippy::print_stdout,
    reason = "the confirmation is this command's output"
)]
pub(crate) fn cancel(settings: &Settings, args: &CancelArgs) -> anyhow::Result<Outcome> {
    write_request(
        &approvals::cancel_file(&settings.data_dir, &args.execution),
        "cancel",
    )?;
    println!("cancel requested for {}", args.execution);
    Ok(Outcome::Success)
}

/// Runs `runner graph`.
#[expect(clippy::print_stdout, reason = "the graph is this command's output")]
pub(crate) fn graph(args: &GraphArgs) -> anyhow::Result<Outcome> {
    let (_pipeline, plan) = run::load_pipeline(&args.pipeline)?;
    let text = match args.format.as_str() {
        "dot" => plan.to_dot(),
        "mermaid" => plan.to_mermaid(),
        _ => plan.to_text(),
    };
    print!("{text}");
    Ok(Outcome::Success)
}

/// Runs `runner transition disable|enable` (P18).
#[expect(
    clippy::print_stdout,
    reason = "the confirmation is this command's output"
)]
pub(crate) fn transition(
    settings: &Settings,
    args: &TransitionArgs,
    enable: bool,
) -> anyhow::Result<Outcome> {
    let path = approvals::transition_file(&settings.data_dir, &args.pipeline, &args.stage);
    if enable {
        match fs_err::remove_file(&path) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(error).context("enable the transition"),
        }
        println!(
            "transition into {} of {} enabled",
            args.stage, args.pipeline
        );
    } else {
        write_request(&path, &args.reason)?;
        println!(
            "transition into {} of {} disabled",
            args.stage, args.pipeline
        );
    }
    Ok(Outcome::Success)
}

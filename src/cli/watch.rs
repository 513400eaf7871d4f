//! `runner watch --repo OWNER/NAME`: follow a repository and run its pipeline on every new head.
//!
//! Each poll lists the remote's refs with git2 (cheap: nothing is fetched unless the branch
//! moved); a move is checked against the pipeline's trigger filters (P24–P30) with the files
//! the new commits changed, and a match runs an execution. Executions of one watch run one at a
//! time; pushes that arrive meanwhile collapse into the newest head (CodePipeline's default
//! SUPERSEDED mode, at the pipeline level). Errors back off and are logged once, not per poll.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::Outcome;
use super::args::WatchArgs;
use super::run::{self, StartOptions, Workspace};
use super::settings::Settings;
use super::source_step;
use crate::daemon::poll::{PollOutcome, Poller};
use crate::daemon::trigger::{self, Decision, PushEvent};
use crate::pipeline::{Pipeline, RepoRef};
use crate::source::Mirror;
use crate::state::TriggerKind;

/// Runs `runner watch`.
pub(crate) async fn watch(settings: &Settings, args: &WatchArgs) -> anyhow::Result<Outcome> {
    let pipeline_path = match &args.pipeline {
        Some(path) => path.clone(),
        None => find_pipeline(Path::new("pipelines"), &args.repo)?,
    };
    let (pipeline, plan) = run::load_pipeline(&pipeline_path)?;
    let workspace = Workspace::open(settings).await?;
    run::prepare_images(settings, &workspace, &pipeline).await?;
    let mut follower = Follower::open(
        settings,
        &workspace,
        &pipeline,
        &args.repo,
        args.branch.as_deref(),
        args.interval,
    )
    .await?;
    let stop = CancellationToken::new();
    watch_signals(stop.clone());
    while let Some(start) = follower.next(&stop).await {
        let options = StartOptions::triggered(TriggerKind::Poll, start.revision, start.reason);
        let outcome = run::start_execution(settings, &workspace, &pipeline, &plan, &options).await;
        if let Err(error) = outcome {
            warn!(error = %format!("{error:#}"), "the execution could not run");
        }
    }
    Ok(Outcome::Success)
}

/// A new head that the pipeline's trigger filters accept.
pub(crate) struct Start {
    /// The ref that moved, e.g. `refs/heads/master`.
    pub(crate) git_ref: String,
    /// The commit.
    pub(crate) revision: String,
    /// Why it starts, for the record.
    pub(crate) reason: String,
}

/// Follows one branch of a repository for one pipeline: polls, backs off, filters.
pub(crate) struct Follower {
    mirror: Mirror,
    poller: Poller,
    pipeline: std::sync::Arc<Pipeline>,
}

impl Follower {
    /// Opens the mirror of `repo` and starts after the revision the pipeline last built.
    pub(crate) async fn open(
        settings: &Settings,
        workspace: &Workspace,
        pipeline: &std::sync::Arc<Pipeline>,
        repo: &str,
        branch: Option<&str>,
        interval: Duration,
    ) -> anyhow::Result<Self> {
        let branch = branch.map_or_else(|| pipeline.source.branch.clone(), str::to_owned);
        let (mirror, locator) = source_step::open_mirror(
            &settings.data_dir.join("mirrors"),
            &settings.github_base,
            repo,
        )
        .await?;
        let last_built = last_revision(workspace, pipeline).await;
        let poller = Poller::new(&branch, interval).with_last(last_built);
        info!(repo = %locator.redacted_url(), branch, pipeline = %pipeline.name, "watching");
        Ok(Self {
            mirror,
            poller,
            pipeline: std::sync::Arc::clone(pipeline),
        })
    }

    /// Polls until the branch moves to a head the trigger filters accept; `None` once `stop`
    /// fires.
    pub(crate) async fn next(&mut self, stop: &CancellationToken) -> Option<Start> {
        while !stop.is_cancelled() {
            if let Some(start) = self.poll_once().await {
                return Some(start);
            }
            tokio::select! {
                () = tokio::time::sleep(self.poller.next_delay()) => {}
                () = stop.cancelled() => {}
            }
        }
        None
    }

    async fn poll_once(&mut self) -> Option<Start> {
        let listing = self.mirror.ls_remote().await;
        let refs: Result<Vec<(String, String)>, String> = listing
            .map(|refs| refs.into_iter().map(|r| (r.name, r.sha)).collect())
            .map_err(|error| format!("{error:#}"));
        match self.poller.observe(refs.as_deref().map_err(|_| ())) {
            PollOutcome::Moved {
                git_ref,
                previous,
                current,
            } => {
                let files = changed_files(&self.mirror, previous.as_deref(), &current).await;
                let event = PushEvent {
                    git_ref: git_ref.clone(),
                    revision: Some(current.clone()),
                    files,
                };
                match trigger::decide(&self.pipeline.source, &event) {
                    Decision::Start { reason, .. } => {
                        info!(commit = %current, reason, "starting an execution");
                        return Some(Start {
                            git_ref,
                            revision: current,
                            reason,
                        });
                    }
                    Decision::Skip { reason } => info!(commit = %current, reason, "not starting"),
                }
            }
            PollOutcome::Failed { log: true, .. } => {
                let error = refs.err().unwrap_or_default();
                let retry_in = self.poller.next_delay();
                warn!(error, ?retry_in, "cannot list the remote; backing off");
            }
            PollOutcome::Recovered { after } => {
                info!(failed_polls = after, "the remote answers again");
            }
            PollOutcome::Missing { git_ref } => {
                warn!(git_ref, "the watched branch does not exist on the remote");
            }
            PollOutcome::Failed { .. } | PollOutcome::Unchanged => {}
        }
        None
    }
}

/// The files the new commits changed; empty (and the file filters then see nothing) when the
/// diff cannot be computed.
async fn changed_files(mirror: &Mirror, previous: Option<&str>, current: &str) -> Vec<String> {
    if let Err(error) = mirror
        .fetch_revision(&crate::source::Revision::Commit(current.to_owned()))
        .await
    {
        warn!(error = %error, "could not fetch the new head to diff it");
        return Vec::new();
    }
    let from = previous.unwrap_or_default();
    mirror
        .changed_paths(from, current)
        .await
        .unwrap_or_default()
}

/// The revision of the pipeline's newest execution, so a restarted watch does not rebuild it.
async fn last_revision(workspace: &Workspace, pipeline: &Pipeline) -> Option<String> {
    let newest = workspace
        .store
        .list_executions(Some(&pipeline.name), 1)
        .await
        .ok()?
        .into_iter()
        .next()?;
    let detail = workspace.store.get_execution(&newest.id).await.ok()?;
    detail.sources.first().map(|s| s.revision_id.clone())
}

/// The pipeline in `dir` whose `source.repo` is `repo`.
fn find_pipeline(dir: &Path, repo: &str) -> anyhow::Result<PathBuf> {
    let mut found = Vec::new();
    for entry in fs_err::read_dir(dir).context("look for pipeline files")? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "yml" || e == "yaml") {
            if let Ok(pipeline) = crate::pipeline::load(&path) {
                let matches = match &pipeline.source.repo {
                    RepoRef::GitHub { owner, name } => format!("{owner}/{name}") == repo,
                    other => other.to_string() == repo,
                };
                if matches {
                    found.push(path);
                }
            }
        }
    }
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => bail!(
            "no pipeline in {} has source.repo {repo}; pass --pipeline",
            dir.display()
        ),
        many => bail!("several pipelines watch {repo}: {many:?}; pass --pipeline"),
    }
}

/// Ctrl-C or SIGTERM ends the watch after the running execution.
fn watch_signals(stop: CancellationToken) {
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        stop.cancel();
    });
}

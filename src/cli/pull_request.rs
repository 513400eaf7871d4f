//! The second look at a pull request whose trigger filters have `file_paths`: GitHub's
//! `pull_request` delivery lists no files, so the worker fetches the head into the pipeline's
//! mirror, diffs it against the merge base with the PR's base commit (P28 decision: the files
//! changed between base and head), and asks `daemon::trigger` again.

use anyhow::Context as _;

use super::settings::Settings;
use super::source_step;
use crate::daemon::trigger::{self, Decision, PullRequestActivity};
use crate::pipeline::Pipeline;
use crate::source::Revision;
use crate::source::github::PullRequestPayload;

/// Whether `pr` starts `pipeline` once its changed files are known, and why.
pub(crate) async fn decide_with_files(
    settings: &Settings,
    pipeline: &Pipeline,
    pr: &PullRequestPayload,
) -> anyhow::Result<Decision> {
    let repo = source_step::repo_input(&pipeline.source.repo)?;
    let (mirror, locator) = source_step::open_mirror(
        &settings.data_dir.join("mirrors"),
        &settings.github_base,
        &repo,
    )
    .await?;
    let head = mirror
        .fetch_revision(&Revision::parse(&pr.head_sha)?)
        .await
        .with_context(|| {
            format!(
                "fetch pull request #{} head {} from {}",
                pr.number,
                pr.head_sha,
                locator.redacted_url()
            )
        })?;
    // The base commit may be gone (a force-push) or never fetched: the base branch's head,
    // and then no history at all, are the fallbacks.
    let base_commit = match Revision::parse(&pr.base_sha) {
        Ok(revision) => mirror.resolve(&revision).await.ok(),
        Err(_) => None,
    };
    let base = match base_commit {
        Some(base) => Some(base.sha),
        None => mirror
            .resolve(&Revision::Branch(pr.base_ref.clone()))
            .await
            .ok()
            .map(|base| base.sha),
    };
    let from = match base {
        Some(base) => mirror
            .merge_base(&base, &head.sha)
            .await?
            .unwrap_or_default(),
        None => String::new(),
    };
    let files = mirror
        .changed_paths(&from, &head.sha)
        .await
        .context("list the files the pull request changes")?;
    let activity = PullRequestActivity {
        payload: pr,
        files: &files,
    };
    Ok(trigger::decide_pull_request(&pipeline.source, &activity))
}

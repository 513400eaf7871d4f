//! The [`Launcher`](crate::server::Launcher) of `runner serve`: matches a push or pull
//! request to the served pipelines by repository, asks `daemon::trigger` whether it starts
//! each, drops redelivered `X-GitHub-Delivery` ids, and queues a [`StartRequest`] per pipeline
//! to start.
//!
//! It lives in `cli` because it joins two L3 modules, `server` (the HTTP side) and `daemon`
//! (the decisions), which may not name each other (STYLE B2). Nothing here awaits an execution:
//! a webhook is answered as soon as its requests are queued, and a stage retry (`cli::retries`)
//! as soon as its checks passed and it runs in the background.

use std::sync::{Arc, Mutex, PoisonError};

use futures_util::future::BoxFuture;
use tokio::sync::mpsc;
use tracing::warn;

use super::retries::Retries;
use crate::daemon::intake::RecentDeliveries;
use crate::daemon::locks::StageLocks;
use crate::daemon::trigger::{self, Decision, PullRequestActivity, PushEvent};
use crate::pipeline::{Pipeline, RepoRef};
use crate::server::{
    Launcher, PipelineInfo, PushReply, RetryRefused, RetryRequest, RetryStarted, Skipped,
    StageInfo, StartRefused, Started,
};
use crate::source::github::{PullRequestPayload, PushPayload};
use crate::state::TriggerKind;

/// One execution to start, as queued for its pipeline's worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StartRequest {
    /// The pipeline's name.
    pub(crate) pipeline: String,
    /// A commit id, or `refs/heads/<branch>`.
    pub(crate) revision: String,
    /// Webhook or manual.
    pub(crate) trigger: TriggerKind,
    /// Why, recorded as the trigger detail.
    pub(crate) reason: String,
    /// A pull request whose trigger filters need its changed files, which the webhook does
    /// not list: the worker decides again from a mirror diff before starting anything.
    pub(crate) files_from: Option<PullRequestPayload>,
    /// The ref `revision` is the new head of, for push webhooks and polls: when both report
    /// one push, the pipeline's worker starts it once.
    pub(crate) head_of: Option<String>,
}

/// A served pipeline and the queue its worker reads.
struct Lane {
    pipeline: Arc<Pipeline>,
    queue: mpsc::Sender<StartRequest>,
}

/// The launcher over a fixed set of pipelines.
pub(crate) struct PipelineLauncher {
    lanes: Vec<Lane>,
    deliveries: Mutex<RecentDeliveries>,
    retries: Option<Arc<Retries>>,
    /// The pipelines' stage locks, whose waiting executions count in the queue depth.
    stage_locks: Vec<Arc<StageLocks>>,
}

impl PipelineLauncher {
    /// A launcher over `pipelines`, each with a queue of `capacity` requests; returns the
    /// receiving end of each queue, in the same order, for the workers.
    pub(crate) fn new(
        pipelines: &[Arc<Pipeline>],
        capacity: usize,
    ) -> (Self, Vec<mpsc::Receiver<StartRequest>>) {
        let mut lanes = Vec::new();
        let mut receivers = Vec::new();
        for pipeline in pipelines {
            let (queue, receiver) = mpsc::channel(capacity.max(1));
            lanes.push(Lane {
                pipeline: Arc::clone(pipeline),
                queue,
            });
            receivers.push(receiver);
        }
        let launcher = Self {
            lanes,
            deliveries: Mutex::new(RecentDeliveries::default()),
            retries: None,
            stage_locks: Vec::new(),
        };
        (launcher, receivers)
    }

    /// Takes stage retries through `retries` (without, every retry is refused).
    #[must_use]
    pub(crate) fn with_retries(mut self, retries: Arc<Retries>) -> Self {
        self.retries = Some(retries);
        self
    }

    /// Queues a start request for every pipeline of `repository` whose `decide` says start,
    /// unless `delivery` was seen before. One lock over reserving, deduplicating and sending:
    /// two copies of one delivery arriving together queue once, and a delivery refused for a
    /// full queue is not remembered, so its redelivery is tried again.
    fn queue(
        &self,
        delivery: Option<&str>,
        repository: &str,
        head_of: Option<&str>,
        decide: impl Fn(&Lane) -> (Decision, Option<PullRequestPayload>),
    ) -> PushReply {
        let lanes: Vec<&Lane> = self
            .lanes
            .iter()
            .filter(|lane| serves_repository(&lane.pipeline.source.repo, repository))
            .collect();
        if lanes.is_empty() {
            return PushReply::UnknownRepository;
        }
        let decisions: Vec<(&Lane, (Decision, Option<PullRequestPayload>))> =
            lanes.into_iter().map(|lane| (lane, decide(lane))).collect();
        let mut deliveries = self
            .deliveries
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut permits = Vec::new();
        for (lane, (decision, files_from)) in &decisions {
            if let Decision::Start { revision, reason } = decision {
                let Ok(permit) = lane.queue.try_reserve() else {
                    return PushReply::QueueFull {
                        pipeline: lane.pipeline.name.clone(),
                    };
                };
                permits.push((permit, lane, revision, reason, files_from));
            }
        }
        if delivery.is_some_and(|id| deliveries.seen(id)) {
            return PushReply::Duplicate;
        }
        let mut started = Vec::new();
        for (permit, lane, revision, reason, files_from) in permits {
            permit.send(StartRequest {
                pipeline: lane.pipeline.name.clone(),
                revision: revision.clone(),
                trigger: TriggerKind::Webhook,
                reason: reason.clone(),
                files_from: files_from.clone(),
                head_of: head_of.map(str::to_owned),
            });
            started.push(Started {
                pipeline: lane.pipeline.name.clone(),
                revision: revision.clone(),
                reason: reason.clone(),
            });
        }
        let skipped = decisions
            .into_iter()
            .filter_map(|(lane, (decision, _))| match decision {
                Decision::Skip { reason } => Some(Skipped {
                    pipeline: lane.pipeline.name.clone(),
                    reason,
                }),
                Decision::Start { .. } => None,
            })
            .collect();
        PushReply::Accepted { started, skipped }
    }

    /// Counts the executions waiting in front of a stage of these `locks` in the queue depth.
    pub(crate) fn with_stage_locks(mut self, locks: Vec<Arc<StageLocks>>) -> Self {
        self.stage_locks = locks;
        self
    }
}

impl Launcher for PipelineLauncher {
    fn push(&self, delivery: Option<&str>, push: &PushPayload) -> PushReply {
        let event = PushEvent::from_payload(push, changed_files(push));
        self.queue(delivery, &push.repository, Some(&event.git_ref), |lane| {
            (trigger::decide(&lane.pipeline.source, &event), None)
        })
    }

    fn pull_request(&self, delivery: Option<&str>, pr: &PullRequestPayload) -> PushReply {
        self.queue(delivery, &pr.repository, None, |lane| {
            let source = &lane.pipeline.source;
            let activity = PullRequestActivity {
                payload: pr,
                files: &[],
            };
            match trigger::decide_pull_request(source, &activity) {
                Decision::Skip { .. } if trigger::pull_request_needs_files(source, pr) => {
                    let decision = Decision::Start {
                        revision: pr.head_sha.clone(),
                        reason: format!(
                            "pull request #{}: its file_paths filter is checked against the \
                             changed files once fetched",
                            pr.number
                        ),
                    };
                    (decision, Some(pr.clone()))
                }
                decision => (decision, None),
            }
        })
    }

    fn start(&self, pipeline: &str) -> Result<Started, StartRefused> {
        let lane = self
            .lanes
            .iter()
            .find(|lane| lane.pipeline.name == pipeline)
            .ok_or(StartRefused::UnknownPipeline)?;
        let Decision::Start { revision, reason } = trigger::decide_manual(&lane.pipeline.source)
        else {
            return Err(StartRefused::UnknownPipeline);
        };
        let request = StartRequest {
            pipeline: pipeline.to_owned(),
            revision: revision.clone(),
            trigger: TriggerKind::Manual,
            reason: reason.clone(),
            files_from: None,
            head_of: None,
        };
        lane.queue
            .try_send(request)
            .map_err(|_| StartRefused::QueueFull)?;
        Ok(Started {
            pipeline: pipeline.to_owned(),
            revision,
            reason,
        })
    }

    fn pipelines(&self) -> Vec<PipelineInfo> {
        self.lanes
            .iter()
            .map(|lane| PipelineInfo {
                name: lane.pipeline.name.clone(),
                repo: lane.pipeline.source.repo.to_string(),
                branch: lane.pipeline.source.branch.clone(),
                queued: queued(&lane.queue),
                stages: lane
                    .pipeline
                    .stages
                    .iter()
                    .map(|stage| StageInfo {
                        name: stage.name.clone(),
                        actions: stage.actions.iter().map(|a| a.name.clone()).collect(),
                    })
                    .collect(),
            })
            .collect()
    }

    fn queue_depth(&self) -> usize {
        let requests: usize = self.lanes.iter().map(|lane| queued(&lane.queue)).sum();
        let waiting: usize = self.stage_locks.iter().map(|locks| locks.waiting()).sum();
        requests + waiting
    }

    fn retry(&self, request: RetryRequest) -> BoxFuture<'_, Result<RetryStarted, RetryRefused>> {
        let retries = self.retries.clone();
        Box::pin(async move {
            match retries {
                Some(retries) => retries.start(request).await,
                None => Err(RetryRefused::Disabled),
            }
        })
    }
}

fn queued(queue: &mpsc::Sender<StartRequest>) -> usize {
    queue.max_capacity() - queue.capacity()
}

/// The files the push changed. A truncated payload lists only its first commits, so the
/// file filters see part of the push; the service logs it (a mirror diff would be exact).
fn changed_files(push: &PushPayload) -> Vec<String> {
    if let Some(files) = push.changed_files() {
        return files.into_iter().collect();
    }
    warn!(
        repository = push.repository,
        "the push lists too many commits; file filters see only the listed ones"
    );
    let mut files: Vec<String> = push
        .commits
        .iter()
        .flat_map(|commit| {
            commit
                .added
                .iter()
                .chain(&commit.modified)
                .chain(&commit.removed)
        })
        .cloned()
        .collect();
    files.sort();
    files.dedup();
    files
}

/// Whether a pipeline whose `source.repo` is `repo` serves GitHub's `owner/name`: equal for
/// `owner/name` (ignoring case, as GitHub does), and for a URL or path, one that ends in
/// `/owner/name` or `:owner/name`, with or without `.git`.
pub(crate) fn serves_repository(repo: &RepoRef, full_name: &str) -> bool {
    let wanted = full_name.trim_matches('/').to_ascii_lowercase();
    if !wanted.contains('/') {
        return false;
    }
    match repo {
        RepoRef::GitHub { owner, name } => format!("{owner}/{name}").eq_ignore_ascii_case(&wanted),
        RepoRef::Url(url) => ends_with_repository(url, &wanted),
        RepoRef::Path(path) => ends_with_repository(&path.to_string_lossy(), &wanted),
    }
}

fn ends_with_repository(location: &str, wanted: &str) -> bool {
    let location = location.trim_end_matches('/').to_ascii_lowercase();
    let location = location.strip_suffix(".git").unwrap_or(&location);
    location
        .strip_suffix(wanted)
        .is_some_and(|rest| rest.ends_with('/') || rest.ends_with(':'))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use axum::http::StatusCode;
    use test_case::test_case;

    use super::*;
    use crate::server::testing::{SHA_A, SHA_B, hook, push_body, send, send_json, signed, state};

    fn pipeline(name: &str, repo: &str, triggers: &str) -> Arc<Pipeline> {
        let text = format!(
            "name: {name}\nsource:\n  repo: {repo}\n  branch: main\n{triggers}stages:\n  - name: source\n    actions:\n      - {{name: checkout, type: source, outputs: [Src]}}\n  - name: gate\n    actions:\n      - {{name: gate, type: approval}}\n"
        );
        Arc::new(crate::pipeline::parse("pipeline.yml", &text).unwrap_or_else(|e| panic!("{e}")))
    }

    fn launcher(
        pipelines: &[Arc<Pipeline>],
        capacity: usize,
    ) -> (Arc<PipelineLauncher>, Vec<mpsc::Receiver<StartRequest>>) {
        let (launcher, queues) = PipelineLauncher::new(pipelines, capacity);
        (Arc::new(launcher), queues)
    }

    #[test_case(&RepoRef::GitHub { owner: "Acme".into(), name: "App".into() }, "acme/app", true ; "github ignores case")]
    #[test_case(&RepoRef::GitHub { owner: "acme".into(), name: "app".into() }, "acme/apps", false ; "github other name")]
    #[test_case(&RepoRef::Url("https://github.com/acme/app.git".into()), "acme/app", true ; "https url")]
    #[test_case(&RepoRef::Url("git@github.com:acme/app.git".into()), "acme/app", true ; "scp url")]
    #[test_case(&RepoRef::Url("file:///srv/git/acme/app.git/".into()), "acme/app", true ; "file url")]
    #[test_case(&RepoRef::Url("https://github.com/notacme/app.git".into()), "acme/app", false ; "partial owner")]
    #[test_case(&RepoRef::Path(PathBuf::from("/srv/acme/app")), "acme/app", true ; "path")]
    #[test_case(&RepoRef::Path(PathBuf::from("/srv/acme/app")), "app", false ; "no owner")]
    fn repositories_match_by_full_name(repo: &RepoRef, full_name: &str, expected: bool) {
        assert_eq!(serves_repository(repo, full_name), expected);
    }

    #[tokio::test]
    async fn a_signed_push_queues_a_start_request_once() {
        let (launcher, mut queues) = launcher(&[pipeline("app", "acme/app", "")], 4);
        let (_dir, state) = state(launcher.clone()).await;
        let body = push_body("acme/app", "refs/heads/main");
        let (status, json) = send_json(&state, signed("push", &body, "d-1")).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{json}");
        let request = queues[0].try_recv().unwrap();
        assert_eq!(
            request,
            StartRequest {
                pipeline: "app".into(),
                revision: SHA_B.into(),
                trigger: TriggerKind::Webhook,
                reason: "push to main, the source branch (no triggers, P30)".into(),
                files_from: None,
                head_of: Some("refs/heads/main".into()),
            }
        );
        // GitHub's "Redeliver" sends the same id again.
        let (status, json) = send_json(&state, signed("push", &body, "d-1")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(json["duplicate"], true);
        assert!(queues[0].try_recv().is_err());
        assert_eq!(launcher.queue_depth(), 0);
    }

    #[tokio::test]
    async fn refused_deliveries_queue_nothing() {
        let (launcher, mut queues) = launcher(&[pipeline("app", "acme/app", "")], 4);
        let (_dir, state) = state(launcher).await;
        let body = push_body("acme/app", "refs/heads/main");
        let (status, _) = send(&state, hook("push", &body, None, "d-1")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _) = send(&state, hook("push", &body, Some("sha256=00"), "d-2")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _) = send(&state, signed("push", "[]", "d-3")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let other = push_body("acme/other", "refs/heads/main");
        let (status, _) = send(&state, signed("push", &other, "d-4")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(queues[0].try_recv().is_err());
        // None of those was remembered: the same ids still go through once signed.
        let (status, _) = send(&state, signed("push", &body, "d-1")).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert!(queues[0].try_recv().is_ok());
    }

    #[tokio::test]
    async fn trigger_filters_decide_per_pipeline() {
        let only_release = "  triggers:\n    push:\n      - branches: {includes: [release]}\n";
        let pipelines = [
            pipeline("app", "acme/app", ""),
            pipeline("release", "https://github.com/acme/app.git", only_release),
        ];
        let (launcher, mut queues) = launcher(&pipelines, 4);
        let body = push_body("acme/app", "refs/heads/main");
        let PushReply::Accepted { started, skipped } = launcher.push(Some("d"), &parse(&body))
        else {
            panic!("not accepted");
        };
        assert_eq!(started.len(), 1);
        assert_eq!(started[0].pipeline, "app");
        assert_eq!(skipped[0].pipeline, "release");
        assert_eq!(
            skipped[0].reason,
            "push to main matches no include of push[0].branches"
        );
        assert!(queues[0].try_recv().is_ok());
        assert!(queues[1].try_recv().is_err());
    }

    #[tokio::test]
    async fn a_full_queue_refuses_and_forgets_the_delivery() {
        let (launcher, mut queues) = launcher(&[pipeline("app", "acme/app", "")], 1);
        let body = parse(&push_body("acme/app", "refs/heads/main"));
        assert!(matches!(
            launcher.push(Some("d-1"), &body),
            PushReply::Accepted { .. }
        ));
        assert_eq!(launcher.queue_depth(), 1);
        assert_eq!(
            launcher.push(Some("d-2"), &body),
            PushReply::QueueFull {
                pipeline: "app".into()
            }
        );
        assert_eq!(launcher.start("app"), Err(StartRefused::QueueFull));
        queues[0].try_recv().unwrap();
        assert!(matches!(
            launcher.push(Some("d-2"), &body),
            PushReply::Accepted { .. }
        ));
    }

    #[tokio::test]
    async fn a_manual_start_builds_the_branch_head() {
        let (launcher, mut queues) = launcher(&[pipeline("app", "acme/app", "")], 4);
        let started = launcher.start("app").unwrap();
        assert_eq!(started.revision, "refs/heads/main");
        assert_eq!(queues[0].try_recv().unwrap().trigger, TriggerKind::Manual);
        assert_eq!(launcher.start("nope"), Err(StartRefused::UnknownPipeline));
        assert_eq!(launcher.pipelines()[0].repo, "acme/app");
    }

    fn pr_body(action: &str, base: &str) -> String {
        format!(
            r#"{{"action": "{action}", "number": 7, "repository": {{"full_name": "acme/app"}},
                "pull_request": {{"merged": false,
                  "head": {{"sha": "{SHA_B}", "ref": "feature/x"}},
                  "base": {{"sha": "{SHA_A}", "ref": "{base}"}}}}}}"#
        )
    }

    #[tokio::test]
    async fn a_pull_request_queues_its_head_once_or_waits_for_its_files() {
        let into_main = "  triggers:\n    pull_request:\n      - branches: {includes: [main]}\n";
        let with_files = "  triggers:\n    pull_request:\n      - branches: {includes: [main]}\n        file_paths: {includes: ['src/**']}\n";
        let pipelines = [
            pipeline("app", "acme/app", into_main),
            pipeline("files", "acme/app", with_files),
            pipeline("pushes", "acme/app", ""),
        ];
        let (launcher, mut queues) = launcher(&pipelines, 4);
        let (_dir, state) = state(launcher.clone()).await;
        let body = pr_body("opened", "main");
        let (status, json) = send_json(&state, signed("pull_request", &body, "pr-1")).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{json}");
        let direct = queues[0].try_recv().unwrap();
        assert_eq!(direct.revision, SHA_B);
        assert_eq!(direct.files_from, None);
        assert_eq!(
            direct.reason,
            "pull request #7 (feature/x into main) opened: base main matches include main of pull_request[0].branches"
        );
        let deferred = queues[1].try_recv().unwrap();
        assert_eq!(deferred.revision, SHA_B);
        assert_eq!(deferred.files_from.map(|pr| pr.number), Some(7));
        assert!(queues[2].try_recv().is_err(), "no pull_request filters");
        assert_eq!(json["skipped"][0]["pipeline"], "pushes");
        let (status, json) = send_json(&state, signed("pull_request", &body, "pr-1")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(json["duplicate"], true);
        // A label, or a PR into another branch, starts nothing anywhere.
        for (action, base, id) in [("labeled", "main", "pr-2"), ("opened", "dev", "pr-3")] {
            let body = pr_body(action, base);
            let (status, json) = send_json(&state, signed("pull_request", &body, id)).await;
            assert_eq!(status, StatusCode::OK, "{json}");
            assert_eq!(json["started"], serde_json::json!([]));
        }
        assert!(queues.iter_mut().all(|queue| queue.try_recv().is_err()));
    }

    fn parse(body: &str) -> PushPayload {
        match crate::source::github::parse_event("push", body.as_bytes()).unwrap() {
            crate::source::github::WebhookEvent::Push(push) => push,
            other => panic!("{other:?}"),
        }
    }
}

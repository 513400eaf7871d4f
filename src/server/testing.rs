//! Test helpers: a recording fake [`Launcher`], a state over a temporary store, signed
//! webhook requests, and a `oneshot` that reads the answer back.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use hmac::{Hmac, Mac as _};
use sha2::Sha256;
use tower::ServiceExt as _;

use futures_util::future::BoxFuture;

use super::{
    AppState, Launcher, PipelineInfo, PushReply, RetryRefused, RetryRequest, RetryStarted, Secret,
    StageInfo, StartRefused, Started, router,
};
use crate::source::github::{PullRequestPayload, PushPayload};
use crate::state::Store;

/// The webhook secret of [`state`].
pub(crate) const SECRET: &str = "It's a Secret to Everybody";
/// The API token of [`state`].
pub(crate) const TOKEN: &str = "api-t0ken";
/// A commit id.
pub(crate) const SHA_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
/// Another commit id.
pub(crate) const SHA_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

/// A launcher that records what it is given and answers `reply` to every push.
pub(crate) struct FakeLauncher {
    pub(crate) reply: PushReply,
    pub(crate) pushes: Mutex<Vec<(Option<String>, PushPayload)>>,
    pub(crate) pull_requests: Mutex<Vec<(Option<String>, PullRequestPayload)>>,
    pub(crate) starts: Mutex<Vec<String>>,
    pub(crate) retries: Mutex<Vec<RetryRequest>>,
}

impl FakeLauncher {
    pub(crate) fn new(reply: PushReply) -> Arc<Self> {
        Arc::new(Self {
            reply,
            pushes: Mutex::new(Vec::new()),
            pull_requests: Mutex::new(Vec::new()),
            starts: Mutex::new(Vec::new()),
            retries: Mutex::new(Vec::new()),
        })
    }

    pub(crate) fn pushes(&self) -> usize {
        self.pushes.lock().unwrap().len()
    }
}

impl Launcher for FakeLauncher {
    fn push(&self, delivery: Option<&str>, push: &PushPayload) -> PushReply {
        self.pushes
            .lock()
            .unwrap()
            .push((delivery.map(str::to_owned), push.clone()));
        self.reply.clone()
    }

    fn pull_request(&self, delivery: Option<&str>, pr: &PullRequestPayload) -> PushReply {
        self.pull_requests
            .lock()
            .unwrap()
            .push((delivery.map(str::to_owned), pr.clone()));
        self.reply.clone()
    }

    fn start(&self, pipeline: &str) -> Result<Started, StartRefused> {
        if pipeline != "app" {
            return Err(StartRefused::UnknownPipeline);
        }
        self.starts.lock().unwrap().push(pipeline.to_owned());
        Ok(Started {
            pipeline: pipeline.to_owned(),
            revision: "refs/heads/main".to_owned(),
            reason: "manual".to_owned(),
        })
    }

    fn pipelines(&self) -> Vec<PipelineInfo> {
        vec![PipelineInfo {
            name: "app".to_owned(),
            repo: "acme/app".to_owned(),
            branch: "main".to_owned(),
            queued: 0,
            stages: vec![
                StageInfo {
                    name: "source".to_owned(),
                    actions: vec!["checkout".to_owned()],
                },
                StageInfo {
                    name: "build".to_owned(),
                    actions: vec!["compile".to_owned()],
                },
                StageInfo {
                    name: "deploy".to_owned(),
                    actions: vec!["ship".to_owned()],
                },
            ],
        }]
    }

    fn queue_depth(&self) -> usize {
        self.starts.lock().unwrap().len()
    }

    /// Execution `nope` is unknown, stage `done` succeeded; every other retry starts.
    fn retry(&self, request: RetryRequest) -> BoxFuture<'_, Result<RetryStarted, RetryRefused>> {
        Box::pin(async move {
            if request.execution == "nope" {
                return Err(RetryRefused::NotFound {
                    what: "execution",
                    id: request.execution,
                });
            }
            if request.stage == "done" {
                return Err(RetryRefused::Conflict {
                    reason: "stage done succeeded".to_owned(),
                });
            }
            let started = RetryStarted {
                execution: request.execution.clone(),
                stage: request.stage.clone(),
                mode: request.mode.as_str(),
            };
            self.retries.lock().unwrap().push(request);
            Ok(started)
        })
    }
}

/// A state over a store in a temporary directory, with [`SECRET`] and [`TOKEN`].
pub(crate) async fn state(launcher: Arc<dyn Launcher>) -> (tempfile::TempDir, AppState) {
    let directory = tempfile::tempdir().unwrap();
    let store = Store::open(directory.path().join("state.db"))
        .await
        .unwrap();
    let state = AppState::new(store, launcher)
        .with_webhook_secret(Secret::from_text(SECRET))
        .with_api_token(Secret::from_text(TOKEN));
    (directory, state)
}

/// `sha256=<hex>` of `body` under [`SECRET`].
pub(crate) fn sign(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A push of `SHA_B` onto `git_ref` of `repository`, changing `src/a.rs`.
pub(crate) fn push_body(repository: &str, git_ref: &str) -> String {
    format!(
        r#"{{"ref": "{git_ref}", "before": "{SHA_A}", "after": "{SHA_B}",
            "created": false, "deleted": false,
            "repository": {{"full_name": "{repository}"}},
            "commits": [{{"id": "{SHA_B}", "message": "m", "added": [], "modified": ["src/a.rs"], "removed": []}}],
            "head_commit": {{"id": "{SHA_B}", "message": "m"}}}}"#
    )
}

/// A delivery of `event` with `body`, signed by `signature` (`None`: unsigned).
pub(crate) fn hook(
    event: &str,
    body: &str,
    signature: Option<&str>,
    delivery: &str,
) -> Request<Body> {
    let mut request = Request::post("/hooks/github")
        .header("X-GitHub-Event", event)
        .header("X-GitHub-Delivery", delivery)
        .header("Content-Type", "application/json");
    if let Some(signature) = signature {
        request = request.header("X-Hub-Signature-256", signature);
    }
    request.body(Body::from(body.to_owned())).unwrap()
}

/// A correctly signed delivery.
pub(crate) fn signed(event: &str, body: &str, delivery: &str) -> Request<Body> {
    hook(event, body, Some(&sign(body.as_bytes())), delivery)
}

/// Sends `request` through [`router`]; the status and the body as text.
pub(crate) async fn send(state: &AppState, request: Request<Body>) -> (StatusCode, String) {
    let response = router(state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

/// Like [`send`], with the body parsed as JSON.
pub(crate) async fn send_json(
    state: &AppState,
    request: Request<Body>,
) -> (StatusCode, serde_json::Value) {
    let (status, text) = send(state, request).await;
    let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    (status, value)
}

//! `GET /api/v1/executions/{execution_id}/logs` (the build logs as text) and its `/logs/stream`
//! (Server-Sent Events: the lines written so far, then new ones as the logs grow, until the
//! execution ends or the server shuts down).
//!
//! Stream events, each with JSON data: `status` (`{"status"}`, first and on every change),
//! `phase` (`{"action", "attempt", "phase"}`, before an `Entering phase X` line), `log`
//! (`{"action", "attempt", "line"}`), `end` (`{"status"}`, last, once the execution ended) and
//! `fault` (`{"error"}`, last, when reading failed; not `error`, which browsers' `EventSource`
//! fires for a lost connection).

use std::convert::Infallible;
use std::fmt::Write as _;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::{Stream, StreamExt as _, stream};
use serde::Deserialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::server::AppState;
use crate::server::error::ApiError;
use crate::server::logs::{LogFollower, PartialLine};
use crate::state::{ExecutionId, ExecutionStatus, Store};

/// How often a stream looks for new lines, as `runner logs --follow` does.
const POLL_INTERVAL: Duration = Duration::from_millis(300);

/// `?action=stage.action` (or just `action`).
#[derive(Debug, Deserialize)]
pub(crate) struct LogsQuery {
    action: Option<String>,
}

/// The build logs of the latest attempt of each action (or of one), each line prefixed with
/// `[stage.action] ` as `runner logs` prints them.
pub(crate) async fn logs(
    State(state): State<AppState>,
    Path(execution_id): Path<String>,
    Query(query): Query<LogsQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let detail = state
        .store
        .get_execution(&ExecutionId::from(execution_id))
        .await?;
    let mut follower = LogFollower::new(query.action.clone());
    if !follower.matches_any(&detail) {
        return Err(ApiError::NotFound {
            what: "action",
            id: query.action.unwrap_or_default(),
        });
    }
    let lines = follower
        .read_new(&detail, PartialLine::Take)
        .await
        .map_err(|source| ApiError::Io {
            what: "build log",
            source,
        })?;
    let mut text = String::new();
    for line in lines {
        let _ = writeln!(text, "[{}] {}", line.name(), line.text);
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text))
}

/// The logs as Server-Sent Events; 404 for an unknown execution.
pub(crate) async fn stream(
    State(state): State<AppState>,
    Path(execution_id): Path<String>,
    Query(query): Query<LogsQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let id = ExecutionId::from(execution_id);
    state.store.get_execution(&id).await?;
    let follow = Follow {
        store: state.store.clone(),
        id,
        follower: LogFollower::new(query.action),
        shutdown: state.shutdown.clone(),
        status: None,
        first: true,
        done: false,
    };
    let events = stream::unfold(follow, Follow::next_batch)
        .flat_map(|batch| stream::iter(batch.into_iter().map(Ok)));
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

/// The state of one stream between polls.
struct Follow {
    store: Store,
    id: ExecutionId,
    follower: LogFollower,
    shutdown: CancellationToken,
    /// The status last sent.
    status: Option<ExecutionStatus>,
    first: bool,
    done: bool,
}

impl Follow {
    /// The events of one poll; `None` once the stream has ended.
    async fn next_batch(mut self) -> Option<(Vec<Event>, Self)> {
        if self.done {
            return None;
        }
        if !self.first {
            tokio::select! {
                () = self.shutdown.cancelled() => return None,
                () = tokio::time::sleep(POLL_INTERVAL) => {}
            }
        }
        self.first = false;
        let mut events = Vec::new();
        if let Err(error) = self.poll(&mut events).await {
            events.push(event("fault", &json!({ "error": error })));
            self.done = true;
        }
        Some((events, self))
    }

    async fn poll(&mut self, events: &mut Vec<Event>) -> Result<(), String> {
        let detail = self
            .store
            .get_execution(&self.id)
            .await
            .map_err(|error| format!("read the execution: {error}"))?;
        let status = detail.execution.status;
        if self.status != Some(status) {
            events.push(event("status", &json!({ "status": status.as_str() })));
            self.status = Some(status);
        }
        let finished = status.is_terminal();
        let partial = if finished {
            PartialLine::Take
        } else {
            PartialLine::Hold
        };
        let lines = self
            .follower
            .read_new(&detail, partial)
            .await
            .map_err(|error| format!("read a build log: {error}"))?;
        for line in lines {
            let action = line.name();
            if let Some(phase) = line.entered_phase() {
                let data = json!({ "action": action, "attempt": line.attempt, "phase": phase });
                events.push(event("phase", &data));
            }
            let data = json!({ "action": action, "attempt": line.attempt, "line": line.text });
            events.push(event("log", &data));
        }
        if finished {
            events.push(event("end", &json!({ "status": status.as_str() })));
            self.done = true;
        }
        Ok(())
    }
}

fn event(name: &str, data: &serde_json::Value) -> Event {
    Event::default().event(name).data(data.to_string())
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};

    use crate::server::PushReply;
    use crate::server::handlers::executions::tests::record_execution;
    use crate::server::testing::{FakeLauncher, send, state};
    use crate::state::{ExecutionId, ExecutionStatus};

    fn get(uri: &str) -> Request<Body> {
        Request::get(uri).body(Body::empty()).unwrap()
    }

    #[tokio::test]
    async fn logs_are_prefixed_like_runner_logs() {
        let (_dir, state) = state(FakeLauncher::new(PushReply::Duplicate)).await;
        let id = record_execution(&state, "app").await;
        let uri = format!("/api/v1/executions/{id}/logs");
        let expected = "[build.compile] compiling\n[build.compile] done\n";
        assert_eq!(
            send(&state, get(&uri)).await,
            (StatusCode::OK, expected.into())
        );
        let one = format!("{uri}?action=build.compile");
        assert_eq!(send(&state, get(&one)).await.1, expected);
        let (status, _) = send(&state, get(&format!("{uri}?action=deploy.x"))).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn the_stream_of_an_ended_execution_sends_its_lines_phases_and_end() {
        let (_dir, state) = state(FakeLauncher::new(PushReply::Duplicate)).await;
        let id = record_execution(&state, "app").await;
        let detail = state
            .store
            .get_execution(&ExecutionId::from(id.as_str()))
            .await
            .unwrap();
        let log = detail.actions[0].log_path.clone().unwrap();
        fs_err::write(
            &log,
            "[Container] 2024/01/02 03:04:05.678901 Entering phase BUILD\n<b>&\"x\"</b>",
        )
        .unwrap();
        state
            .store
            .set_execution_status(
                &ExecutionId::from(id.as_str()),
                ExecutionStatus::Failed,
                None,
                chrono::Utc::now(),
            )
            .await
            .unwrap();
        let (status, text) =
            send(&state, get(&format!("/api/v1/executions/{id}/logs/stream"))).await;
        assert_eq!(status, StatusCode::OK);
        let events: Vec<&str> = text.split("\n\n").filter(|e| !e.is_empty()).collect();
        assert_eq!(
            events,
            [
                "event: status\ndata: {\"status\":\"Failed\"}",
                "event: phase\ndata: {\"action\":\"build.compile\",\"attempt\":1,\"phase\":\"BUILD\"}",
                "event: log\ndata: {\"action\":\"build.compile\",\"attempt\":1,\"line\":\"[Container] 2024/01/02 03:04:05.678901 Entering phase BUILD\"}",
                "event: log\ndata: {\"action\":\"build.compile\",\"attempt\":1,\"line\":\"<b>&\\\"x\\\"</b>\"}",
                "event: end\ndata: {\"status\":\"Failed\"}",
            ]
        );
        let (status, _) = send(&state, get("/api/v1/executions/nope/logs/stream")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    /// The next SSE event of `body`, waiting for it.
    async fn next_event(body: &mut axum::body::BodyDataStream, pending: &mut String) -> String {
        use futures_util::StreamExt as _;
        loop {
            if let Some(end) = pending.find("\n\n") {
                let event = pending[..end].to_owned();
                pending.drain(..end + 2);
                if !event.starts_with(':') {
                    return event;
                }
                continue;
            }
            let chunk = body.next().await.expect("the stream ended").unwrap();
            pending.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    #[tokio::test]
    async fn the_stream_of_a_running_execution_sends_lines_as_they_are_written() {
        let (_dir, state) = state(FakeLauncher::new(PushReply::Duplicate)).await;
        let id = record_execution(&state, "app").await;
        let execution = ExecutionId::from(id.as_str());
        let detail = state.store.get_execution(&execution).await.unwrap();
        let log = detail.actions[0].log_path.clone().unwrap();
        let uri = format!("/api/v1/executions/{id}/logs/stream?action=compile");
        let response = tower::ServiceExt::oneshot(crate::server::router(state.clone()), get(&uri))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let mut body = response.into_body().into_data_stream();
        let mut pending = String::new();
        assert_eq!(
            next_event(&mut body, &mut pending).await,
            "event: status\ndata: {\"status\":\"InProgress\"}"
        );
        for line in ["compiling", "done"] {
            assert!(next_event(&mut body, &mut pending).await.contains(line));
        }
        fs_err::write(&log, "compiling\ndone\nlinking\nhal").unwrap();
        let event = next_event(&mut body, &mut pending).await;
        assert!(event.contains(r#""line":"linking""#), "{event}");
        state
            .store
            .set_execution_status(
                &execution,
                ExecutionStatus::Succeeded,
                None,
                chrono::Utc::now(),
            )
            .await
            .unwrap();
        let mut rest = Vec::new();
        loop {
            let event = next_event(&mut body, &mut pending).await;
            let end = event.starts_with("event: end");
            rest.push(event);
            if end {
                break;
            }
        }
        assert_eq!(
            rest,
            [
                "event: status\ndata: {\"status\":\"Succeeded\"}",
                "event: log\ndata: {\"action\":\"build.compile\",\"attempt\":1,\"line\":\"hal\"}",
                "event: end\ndata: {\"status\":\"Succeeded\"}",
            ]
        );
    }
}

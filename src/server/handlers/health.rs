//! `GET /healthz` and `GET /metrics`.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::server::AppState;
use crate::server::error::ApiError;
use crate::server::metrics::Scrape;

/// Liveness and readiness: 200 while the state database answers.
pub(crate) async fn healthz(State(state): State<AppState>) -> Result<&'static str, ApiError> {
    state.store.list_executions(None, 1).await?;
    Ok("ok\n")
}

/// Prometheus text format.
pub(crate) async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let scrape = Scrape {
        executions: state.store.count_executions().await?,
        queue_depth: state.launcher.queue_depth(),
        durations: state.store.action_durations().await?,
        artifact_bytes: state.store.artifact_bytes().await?,
    };
    let text = state.metrics.render(&scrape);
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    ))
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};

    use crate::server::testing::{FakeLauncher, hook, push_body, send, state};
    use crate::server::{DeliveryResult, PushReply};

    #[tokio::test]
    async fn healthz_is_200() {
        let (_dir, state) = state(FakeLauncher::new(PushReply::Duplicate)).await;
        let request = Request::get("/healthz").body(Body::empty()).unwrap();
        assert_eq!(send(&state, request).await, (StatusCode::OK, "ok\n".into()));
    }

    #[tokio::test]
    async fn metrics_report_executions_and_deliveries() {
        let (_dir, state) = state(FakeLauncher::new(PushReply::Duplicate)).await;
        crate::server::handlers::executions::tests::record_execution(&state, "app").await;
        let body = push_body("acme/app", "refs/heads/main");
        let (status, _) = send(&state, hook("push", &body, None, "d")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        state.metrics().count_delivery(DeliveryResult::Started);
        let request = Request::get("/metrics").body(Body::empty()).unwrap();
        let (status, text) = send(&state, request).await;
        assert_eq!(status, StatusCode::OK);
        for line in [
            "runner_executions{pipeline=\"app\",status=\"InProgress\"} 1",
            "runner_webhook_deliveries_total{result=\"unauthorized\"} 1",
            "runner_webhook_deliveries_total{result=\"started\"} 1",
            "runner_webhook_deliveries_total{result=\"duplicate\"} 0",
            "runner_queue_depth 0",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
    }
}

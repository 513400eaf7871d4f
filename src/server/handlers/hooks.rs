//! `POST /hooks/github`: GitHub push and ping deliveries.
//!
//! In order: webhooks must be configured (503), the body must fit the limit, checked from
//! `Content-Length` before reading and again while reading (413), the signature must match
//! (401), the event must parse (400, 422), then a push goes to the [`Launcher`], which
//! deduplicates by `X-GitHub-Delivery` and queues what the trigger filters start (202). Every
//! delivery is counted in `/metrics` and logged with its id, event and result.
//!
//! [`Launcher`]: crate::server::Launcher

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;
use serde_json::{Value, json};
use tracing::{info, warn};

use crate::server::error::ApiError;
use crate::server::{AppState, DeliveryResult, PushReply};
use crate::source::github::{
    self, DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, WebhookError, WebhookEvent,
};

/// A delivery that was handled: what to count and what to answer.
struct Handled {
    result: DeliveryResult,
    status: StatusCode,
    body: Value,
}

/// Handles one delivery.
pub(crate) async fn github(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let delivery = text_header(&headers, DELIVERY_HEADER);
    let event = text_header(&headers, EVENT_HEADER).unwrap_or_default();
    match receive(&state, &headers, delivery, body).await {
        Ok(handled) => {
            state.metrics.count_delivery(handled.result);
            info!(
                delivery = delivery.unwrap_or_default(),
                event,
                result = handled.result.as_str(),
                "webhook delivery"
            );
            (handled.status, Json(handled.body)).into_response()
        }
        Err(error) => {
            let result = failure_result(&error);
            state.metrics.count_delivery(result);
            warn!(
                delivery = delivery.unwrap_or_default(),
                event,
                result = result.as_str(),
                error = %error,
                "webhook delivery refused"
            );
            error.into_response()
        }
    }
}

async fn receive(
    state: &AppState,
    headers: &HeaderMap,
    delivery: Option<&str>,
    body: Body,
) -> Result<Handled, ApiError> {
    let Some(secret) = &state.webhook_secret else {
        return Err(ApiError::WebhooksDisabled);
    };
    let declared = text_header(headers, header::CONTENT_LENGTH.as_str())
        .and_then(|length| length.parse::<usize>().ok());
    if let Some(size) = declared {
        check_size(size, state.body_limit)?;
    }
    let body = read_body(body, state.body_limit).await?;
    github::verify_signature(
        secret.expose(),
        &body,
        text_header(headers, SIGNATURE_HEADER),
    )?;
    let event = text_header(headers, EVENT_HEADER).ok_or(ApiError::MissingEvent)?;
    match github::parse_event(event, &body)? {
        WebhookEvent::Ping { hook_id } => Ok(Handled {
            result: DeliveryResult::Ignored,
            status: StatusCode::OK,
            body: json!({ "ping": true, "hook_id": hook_id }),
        }),
        WebhookEvent::Push(push) => {
            let reply = state.launcher.push(delivery, &push);
            push_reply(reply, delivery, &push.repository)
        }
        WebhookEvent::PullRequest(pr) => {
            let reply = state.launcher.pull_request(delivery, &pr);
            push_reply(reply, delivery, &pr.repository)
        }
        WebhookEvent::Ignored { event } => Ok(ignored(&event)),
    }
}

fn push_reply(
    reply: PushReply,
    delivery: Option<&str>,
    repository: &str,
) -> Result<Handled, ApiError> {
    match reply {
        PushReply::Accepted { started, skipped } => {
            for start in &started {
                info!(
                    pipeline = start.pipeline,
                    revision = start.revision,
                    reason = start.reason,
                    "queued an execution"
                );
            }
            for skip in &skipped {
                info!(
                    pipeline = skip.pipeline,
                    reason = skip.reason,
                    "not starting"
                );
            }
            let (result, status) = if started.is_empty() {
                (DeliveryResult::Skipped, StatusCode::OK)
            } else {
                (DeliveryResult::Started, StatusCode::ACCEPTED)
            };
            Ok(Handled {
                result,
                status,
                body: json!({
                    "delivery": delivery,
                    "duplicate": false,
                    "started": started,
                    "skipped": skipped,
                }),
            })
        }
        PushReply::Duplicate => Ok(Handled {
            result: DeliveryResult::Duplicate,
            status: StatusCode::OK,
            body: json!({ "delivery": delivery, "duplicate": true, "started": [], "skipped": [] }),
        }),
        PushReply::UnknownRepository => Err(ApiError::UnknownRepository {
            repository: repository.to_owned(),
        }),
        PushReply::QueueFull { pipeline } => Err(ApiError::QueueFull { pipeline }),
    }
}

fn ignored(event: &str) -> Handled {
    Handled {
        result: DeliveryResult::Ignored,
        status: StatusCode::OK,
        body: json!({ "ignored": event }),
    }
}

fn check_size(size: usize, limit: usize) -> Result<(), WebhookError> {
    if size > limit {
        return Err(WebhookError::TooLarge { size, limit });
    }
    Ok(())
}

/// Reads the body, giving up as soon as it grows over `limit`.
async fn read_body(body: Body, limit: usize) -> Result<Vec<u8>, ApiError> {
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(ApiError::ReadBody)?;
        check_size(bytes.len() + chunk.len(), limit)?;
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

fn text_header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

fn failure_result(error: &ApiError) -> DeliveryResult {
    match error {
        ApiError::Webhook(WebhookError::TooLarge { .. }) => DeliveryResult::TooLarge,
        ApiError::Webhook(
            WebhookError::MissingSignature
            | WebhookError::MalformedSignature
            | WebhookError::BadSignature,
        ) => DeliveryResult::Unauthorized,
        ApiError::Webhook(
            WebhookError::MalformedPayload { .. } | WebhookError::InvalidPayload { .. },
        )
        | ApiError::MissingEvent
        | ApiError::ReadBody(_) => DeliveryResult::Malformed,
        ApiError::UnknownRepository { .. } => DeliveryResult::UnknownRepository,
        _ => DeliveryResult::Unavailable,
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};

    use crate::server::testing::{
        FakeLauncher, SHA_B, hook, push_body, send, send_json, sign, signed, state,
    };
    use crate::server::{DeliveryResult, PushReply, Started};
    use crate::source::github::MAX_BODY_BYTES;

    fn started() -> PushReply {
        PushReply::Accepted {
            started: vec![Started {
                pipeline: "app".into(),
                revision: SHA_B.into(),
                reason: "push to main".into(),
            }],
            skipped: Vec::new(),
        }
    }

    #[tokio::test]
    async fn a_signed_push_is_handed_to_the_launcher_and_answered_202() {
        let launcher = FakeLauncher::new(started());
        let (_dir, state) = state(launcher.clone()).await;
        let body = push_body("acme/app", "refs/heads/main");
        let (status, json) = send_json(&state, signed("push", &body, "d-1")).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{json}");
        assert_eq!(json["duplicate"], false);
        assert_eq!(json["started"][0]["pipeline"], "app");
        assert_eq!(json["started"][0]["revision"], SHA_B);
        let pushes = launcher.pushes.lock().unwrap().clone();
        assert_eq!(pushes.len(), 1);
        assert_eq!(pushes[0].0.as_deref(), Some("d-1"));
        assert_eq!(pushes[0].1.repository, "acme/app");
        assert_eq!(state.metrics().deliveries(DeliveryResult::Started), 1);
    }

    #[tokio::test]
    async fn unsigned_or_wrongly_signed_deliveries_are_401_and_start_nothing() {
        let launcher = FakeLauncher::new(started());
        let (_dir, state) = state(launcher.clone()).await;
        let body = push_body("acme/app", "refs/heads/main");
        let wrong = sign(b"another body");
        for signature in [
            None,
            Some(wrong.as_str()),
            Some("sha256=xyz"),
            Some("sha1=00"),
        ] {
            let (status, json) = send_json(&state, hook("push", &body, signature, "d")).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{signature:?}: {json}");
            assert!(
                json["error"].as_str().unwrap().contains("signature"),
                "{json}"
            );
        }
        assert_eq!(launcher.pushes(), 0);
        assert_eq!(state.metrics().deliveries(DeliveryResult::Unauthorized), 4);
    }

    #[tokio::test]
    async fn malformed_and_impossible_payloads_are_400_and_422() {
        let launcher = FakeLauncher::new(started());
        let (_dir, state) = state(launcher.clone()).await;
        let (status, _) = send(&state, signed("push", "{not json", "d-1")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let body = push_body("acme/app", "refs/heads/main").replace(SHA_B, "nope");
        let (status, _) = send(&state, signed("push", &body, "d-2")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let body = push_body("acme/app", "refs/heads/main");
        let request = Request::post("/hooks/github")
            .header("X-Hub-Signature-256", sign(body.as_bytes()))
            .body(Body::from(body))
            .unwrap();
        let (status, text) = send(&state, request).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
        assert!(text.contains("X-GitHub-Event"), "{text}");
        assert_eq!(launcher.pushes(), 0);
        assert_eq!(state.metrics().deliveries(DeliveryResult::Malformed), 3);
    }

    #[tokio::test]
    async fn oversized_bodies_are_413_by_content_length_or_while_reading() {
        let launcher = FakeLauncher::new(started());
        let (_dir, state) = state(launcher.clone()).await;
        let request = Request::post("/hooks/github")
            .header("X-GitHub-Event", "push")
            .header("Content-Length", (MAX_BODY_BYTES + 1).to_string())
            .body(Body::from("{}"))
            .unwrap();
        let (status, text) = send(&state, request).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{text}");
        // No Content-Length: the limit applies while reading.
        let state = state.with_body_limit(1024);
        let body = push_body("acme/app", "refs/heads/main") + &" ".repeat(1024);
        let request = signed("push", &body, "d");
        assert!(request.headers().get("Content-Length").is_none());
        let (status, _) = send(&state, request).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(launcher.pushes(), 0);
        assert_eq!(state.metrics().deliveries(DeliveryResult::TooLarge), 2);
    }

    #[tokio::test]
    async fn an_unknown_repository_is_404() {
        let launcher = FakeLauncher::new(PushReply::UnknownRepository);
        let (_dir, state) = state(launcher).await;
        let body = push_body("someone/else", "refs/heads/main");
        let (status, json) = send_json(&state, signed("push", &body, "d")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(json["error"], "find a pipeline for repository someone/else");
    }

    #[tokio::test]
    async fn duplicates_skips_and_full_queues_have_their_own_answers() {
        let body = push_body("acme/app", "refs/heads/main");
        let (_dir, state) = state(FakeLauncher::new(PushReply::Duplicate)).await;
        let (status, json) = send_json(&state, signed("push", &body, "d-1")).await;
        assert_eq!((status, &json["duplicate"]), (StatusCode::OK, &true.into()));
        let skipped = PushReply::Accepted {
            started: Vec::new(),
            skipped: Vec::new(),
        };
        let (_dir, state) = state_with(skipped).await;
        let (status, json) = send_json(&state, signed("push", &body, "d-2")).await;
        assert_eq!(
            (status, &json["duplicate"]),
            (StatusCode::OK, &false.into())
        );
        let full = PushReply::QueueFull {
            pipeline: "app".into(),
        };
        let (_dir, state) = state_with(full).await;
        let (status, _) = send(&state, signed("push", &body, "d-3")).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    }

    async fn state_with(reply: PushReply) -> (tempfile::TempDir, crate::server::AppState) {
        state(FakeLauncher::new(reply)).await
    }

    #[tokio::test]
    async fn ping_and_other_events_are_200_without_the_launcher() {
        let launcher = FakeLauncher::new(started());
        let (_dir, state) = state(launcher.clone()).await;
        let body = r#"{"zen": "Keep it simple.", "hook_id": 42}"#;
        let (status, json) = send_json(&state, signed("ping", body, "d-1")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(json["hook_id"], 42);
        let (status, json) = send_json(&state, signed("issues", "{}", "d-2")).await;
        assert_eq!(
            (status, &json["ignored"]),
            (StatusCode::OK, &"issues".into())
        );
        assert_eq!(launcher.pushes(), 0);
    }

    #[tokio::test]
    async fn without_a_secret_every_delivery_is_refused() {
        let launcher = FakeLauncher::new(started());
        let (_dir, state) = state(launcher.clone()).await;
        let state = state.with_webhook_secret(None);
        let body = push_body("acme/app", "refs/heads/main");
        let (status, json) = send_json(&state, signed("push", &body, "d")).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            json["error"],
            "accept webhook: no webhook secret is configured"
        );
        assert_eq!(launcher.pushes(), 0);
    }
}

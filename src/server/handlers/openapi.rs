//! `GET /api/v1/openapi.yaml`: `docs/openapi.yaml`, the hand-written `OpenAPI` 3.0 description
//! of every route of [`API_ROUTES`], embedded at build time.
//!
//! The tests below hold the document to the code: it is `OpenAPI` 3.0 and its references resolve,
//! it names exactly the routes of [`API_ROUTES`] with their authentication, and real answers of
//! the handlers match the schemas it documents for them.
//!
//! [`API_ROUTES`]: crate::server::router::API_ROUTES

use axum::http::header;
use axum::response::IntoResponse;

/// The document.
pub(crate) const DOCUMENT: &str = include_str!("../../../docs/openapi.yaml");

/// Serves [`DOCUMENT`] as `application/yaml`.
pub(crate) async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/yaml")], DOCUMENT)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use axum::body::Body;
    use axum::http::{Method, Request, StatusCode};
    use serde_json::{Map, Value};
    use tower::ServiceExt as _;

    use super::DOCUMENT;
    use crate::server::handlers::executions::tests::record_execution;
    use crate::server::router::{API_ROUTES, Access};
    use crate::server::testing::{FakeLauncher, SHA_B, TOKEN, push_body, send, signed, state};
    use crate::server::{AppState, PushReply, Skipped, Started, router};
    use crate::state::{ActionOutcome, ActionStatus, ExecutionId, ExecutionStatus, RetryMode};
    use crate::state::{StageStatus, StateError};

    /// The methods an `OpenAPI` path item may hold operations for.
    const OPERATIONS: &[&str] = &["get", "put", "post", "delete", "options", "head", "patch"];

    fn document() -> Value {
        serde_yaml::from_str(DOCUMENT).expect("docs/openapi.yaml is YAML")
    }

    /// What a local `$ref` (`#/components/...`) points at.
    fn resolve<'a>(document: &'a Value, value: &'a Value) -> &'a Value {
        match value["$ref"].as_str() {
            Some(reference) => {
                let pointer = reference.strip_prefix('#').expect("references are local");
                let target = document.pointer(pointer);
                resolve(
                    document,
                    target.unwrap_or_else(|| panic!("{reference} resolves")),
                )
            }
            None => value,
        }
    }

    /// Every `$ref` in `value`.
    fn references<'a>(value: &'a Value, found: &mut Vec<&'a str>) {
        match value {
            Value::Object(map) => {
                found.extend(map.get("$ref").and_then(Value::as_str));
                map.values().for_each(|value| references(value, found));
            }
            Value::Array(values) => values.iter().for_each(|value| references(value, found)),
            _ => {}
        }
    }

    /// The operation documented for `method` on `path`.
    fn operation<'a>(document: &'a Value, method: &Method, path: &str) -> &'a Value {
        let operation = &document["paths"][path][method.as_str().to_ascii_lowercase()];
        assert!(operation.is_object(), "{method} {path} is not documented");
        operation
    }

    #[test]
    fn the_document_is_openapi_3_0_and_every_reference_resolves() {
        let document = document();
        let version = document["openapi"].as_str().unwrap();
        assert!(version.starts_with("3.0."), "openapi: {version}");
        assert!(document["info"]["title"].is_string());
        assert!(document["info"]["version"].is_string());
        let mut found = Vec::new();
        references(&document, &mut found);
        assert!(!found.is_empty());
        for reference in found {
            let pointer = reference.strip_prefix('#').unwrap_or(reference);
            assert!(document.pointer(pointer).is_some(), "{reference} resolves");
        }
        for (path, item) in document["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let responses = operation["responses"].as_object();
                let responses = responses.unwrap_or_else(|| panic!("{method} {path}: responses"));
                for (code, response) in responses {
                    let is_status = code.len() == 3 && code.parse::<u16>().is_ok();
                    assert!(is_status, "{method} {path}: response {code}");
                    assert!(resolve(&document, response)["description"].is_string());
                }
            }
        }
    }

    #[test]
    fn the_document_names_exactly_the_routes_of_the_router_with_their_auth() {
        let document = document();
        let mut documented = BTreeSet::new();
        for (path, item) in document["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                assert!(OPERATIONS.contains(&method.as_str()), "{path}: {method}");
                documented.insert((method.to_ascii_uppercase(), path.clone()));
            }
        }
        let routed: BTreeSet<_> = API_ROUTES
            .iter()
            .map(|route| (route.method.to_string(), route.path.to_owned()))
            .collect();
        let missing: Vec<_> = routed.difference(&documented).collect();
        let extra: Vec<_> = documented.difference(&routed).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "not documented: {missing:?}; documented but not routed: {extra:?}"
        );
        for route in API_ROUTES {
            let operation = operation(&document, &route.method, route.path);
            let (security, unauthorized) = (&operation["security"], &operation["responses"]["401"]);
            let name = format!("{} {}", route.method, route.path);
            match route.access {
                Access::Token => {
                    assert_eq!(security, &serde_json::json!([{"bearerAuth": []}]), "{name}");
                    assert!(unauthorized.is_object(), "{name}: 401");
                }
                Access::Open => {
                    assert_eq!(security, &serde_json::json!([]), "{name}");
                    assert!(unauthorized.is_null(), "{name}: 401");
                }
                Access::Signature => {
                    assert_eq!(security, &serde_json::json!([]), "{name}");
                    let parameters = operation["parameters"].as_array().unwrap();
                    let signature = parameters
                        .iter()
                        .find(|p| p["name"] == "X-Hub-Signature-256");
                    assert_eq!(
                        signature.map(|p| &p["in"]),
                        Some(&"header".into()),
                        "{name}"
                    );
                    assert!(unauthorized.is_object(), "{name}: 401");
                }
            }
        }
    }

    #[tokio::test]
    async fn every_route_of_the_table_answers_its_method_and_only_it() {
        let (_dir, state) = state(FakeLauncher::new(PushReply::Duplicate)).await;
        for route in API_ROUTES {
            let uri: String = route
                .path
                .split('/')
                .map(|part| if part.starts_with('{') { "x" } else { part })
                .collect::<Vec<_>>()
                .join("/");
            // With the token: without it a guarded route answers 401 to any method.
            let request = Request::builder()
                .method(route.method.clone())
                .uri(&uri)
                .header("Authorization", format!("Bearer {TOKEN}"));
            let (status, text) = send(&state, request.body(Body::empty()).unwrap()).await;
            let routed = status != StatusCode::METHOD_NOT_ALLOWED
                && !(status == StatusCode::NOT_FOUND && text.is_empty());
            assert!(routed, "{} {uri}: {status} {text}", route.method);
            let other = if route.method == Method::GET {
                Method::POST
            } else {
                Method::GET
            };
            let request = Request::builder()
                .method(other.clone())
                .uri(&uri)
                .header("Authorization", format!("Bearer {TOKEN}"));
            let (status, _) = send(&state, request.body(Body::empty()).unwrap()).await;
            assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{other} {uri}");
        }
    }

    #[tokio::test]
    async fn the_document_is_served_as_yaml() {
        let (_dir, state) = state(FakeLauncher::new(PushReply::Duplicate)).await;
        let request = Request::get("/api/v1/openapi.yaml")
            .body(Body::empty())
            .unwrap();
        let response = router(state).oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "application/yaml");
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        assert_eq!(body, DOCUMENT.as_bytes());
    }

    /// `schema` with its `$ref` resolved and its `allOf` parts merged into it (their
    /// `properties` and `required` joined).
    fn flattened(document: &Value, schema: &Value) -> Map<String, Value> {
        let schema = resolve(document, schema)
            .as_object()
            .expect("a schema is an object");
        let parts = schema
            .get("allOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten();
        let mut merged = Map::new();
        let own = schema.iter().filter(|(key, _)| *key != "allOf");
        for (key, value) in parts
            .flat_map(|part| flattened(document, part))
            .chain(own.map(|(key, value)| (key.clone(), value.clone())))
        {
            match (merged.get_mut(&key), value) {
                (Some(Value::Object(old)), Value::Object(new)) if key == "properties" => {
                    old.extend(new);
                }
                (Some(Value::Array(old)), Value::Array(new)) if key == "required" => {
                    old.extend(new);
                }
                (_, value) => {
                    merged.insert(key, value);
                }
            }
        }
        merged
    }

    /// Where `value` does not match `schema`, each as `<JSON path>: <why>`: the `OpenAPI` 3.0
    /// subset the document uses, and objects with `properties` are closed (every field the
    /// handler writes must be documented).
    fn mismatches(document: &Value, schema: &Value, value: &Value, at: &str) -> Vec<String> {
        let schema = flattened(document, schema);
        if value.is_null() {
            return match schema.get("nullable") {
                Some(Value::Bool(true)) => Vec::new(),
                _ => vec![format!("{at}: null, but not nullable")],
            };
        }
        if let Some(variants) = schema.get("oneOf").and_then(Value::as_array) {
            let matching = variants
                .iter()
                .filter(|variant| mismatches(document, variant, value, at).is_empty())
                .count();
            return match matching {
                1 => Vec::new(),
                n => vec![format!("{at}: {value} matches {n} variants of oneOf")],
            };
        }
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
            if !allowed.contains(value) {
                return vec![format!("{at}: {value} is not one of {allowed:?}")];
            }
        }
        let mut found = Vec::new();
        let fits = match schema.get("type").and_then(Value::as_str) {
            Some("object") => value.as_object().is_some_and(|fields| {
                object_mismatches(document, &schema, fields, at, &mut found);
                true
            }),
            Some("array") => value.as_array().is_some_and(|items| {
                for (index, item) in items.iter().enumerate() {
                    let at = format!("{at}[{index}]");
                    found.extend(mismatches(document, &schema["items"], item, &at));
                }
                true
            }),
            Some("string") => value.as_str().is_some_and(|text| {
                schema.get("format") != Some(&"date-time".into())
                    || chrono::DateTime::parse_from_rfc3339(text).is_ok()
            }),
            Some("integer") => value.as_i64().is_some_and(|number| {
                schema
                    .get("minimum")
                    .and_then(Value::as_i64)
                    .is_none_or(|minimum| number >= minimum)
            }),
            Some("boolean") => value.is_boolean(),
            Some(other) => panic!("{at}: the checker knows no type {other}"),
            None => true,
        };
        if !fits {
            let kind = schema
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or_default();
            found.push(format!("{at}: {value} is not a {kind}"));
        }
        found
    }

    fn object_mismatches(
        document: &Value,
        schema: &Map<String, Value>,
        fields: &Map<String, Value>,
        at: &str,
        found: &mut Vec<String>,
    ) {
        let required = schema.get("required").and_then(Value::as_array);
        for name in required.into_iter().flatten().filter_map(Value::as_str) {
            if !fields.contains_key(name) {
                found.push(format!("{at}: required `{name}` is missing"));
            }
        }
        let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
            return;
        };
        for (name, value) in fields {
            match properties.get(name) {
                Some(property) => {
                    found.extend(mismatches(
                        document,
                        property,
                        value,
                        &format!("{at}.{name}"),
                    ));
                }
                None => found.push(format!("{at}: `{name}` is not a documented property")),
            }
        }
    }

    /// Sends `request` (on the route `path`, as documented) and checks that it answers `status`
    /// with a body and the headers the document gives that answer.
    async fn answers_as_documented(
        state: &AppState,
        path: &str,
        request: Request<Body>,
        status: StatusCode,
    ) -> Value {
        let document = document();
        let operation = operation(&document, request.method(), path);
        let name = format!("{} {}", request.method(), request.uri());
        let response = router(state.clone()).oneshot(request).await.unwrap();
        let headers = response.headers().clone();
        let (actual, text) = (response.status(), body_text(response).await);
        assert_eq!(actual, status, "{name}: {text}");
        let documented = resolve(&document, &operation["responses"][status.as_str()]);
        assert!(documented.is_object(), "{name}: {status} is not documented");
        for header in documented["headers"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|h| h.0)
        {
            assert!(headers.contains_key(header.as_str()), "{name}: no {header}");
        }
        let schema = &documented["content"]["application/json"]["schema"];
        assert!(schema.is_object(), "{name}: {status} has no JSON schema");
        let value: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        let found = mismatches(&document, schema, &value, "$");
        assert!(found.is_empty(), "{name}: {value:#}\n{}", found.join("\n"));
        value
    }

    async fn body_text(response: axum::response::Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    /// Records a `Failed` execution with every optional field set: a failed action with an exit
    /// code and an error, a second stage attempt with a retry mode, a summary and end times.
    async fn record_failed_execution(state: &AppState) -> Result<String, StateError> {
        let store = &state.store;
        let id = record_execution(state, "app").await;
        let execution = ExecutionId::from(id.as_str());
        let now = chrono::Utc::now();
        let detail = store.get_execution(&execution).await?;
        let outcome = ActionOutcome {
            status: ActionStatus::Failed,
            exit_code: Some(2),
            error: Some("command failed".to_owned()),
            phases: Vec::new(),
            ended_at: now,
        };
        store.finish_action(detail.actions[0].id, outcome).await?;
        store
            .finish_stage(&execution, "build", 1, StageStatus::Failed, now)
            .await?;
        let retry = Some(RetryMode::AllActions);
        let attempt = store
            .start_stage_attempt(&execution, "build", retry, now)
            .await?;
        store
            .finish_stage(&execution, "build", attempt, StageStatus::Failed, now)
            .await?;
        let summary = Some("stage build failed".to_owned());
        let status = ExecutionStatus::Failed;
        store
            .set_execution_status(&execution, status, summary, now)
            .await?;
        Ok(id)
    }

    fn get(uri: &str) -> Request<Body> {
        Request::get(uri).body(Body::empty()).unwrap()
    }

    fn post(uri: &str, token: Option<&str>, body: &str) -> Request<Body> {
        let mut request = Request::post(uri).header("Content-Type", "application/json");
        if let Some(token) = token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        request.body(Body::from(body.to_owned())).unwrap()
    }

    #[tokio::test]
    async fn executions_and_pipelines_answer_as_documented() {
        let (_dir, state) = state(FakeLauncher::new(PushReply::Duplicate)).await;
        let running = record_execution(&state, "app").await;
        let failed = record_failed_execution(&state).await.unwrap();
        let path = "/api/v1/executions/{execution_id}";
        let running = get(&format!("/api/v1/executions/{running}"));
        let json = answers_as_documented(&state, path, running, StatusCode::OK).await;
        assert_eq!(json["ended_at"], Value::Null);
        let failed = get(&format!("/api/v1/executions/{failed}"));
        let json = answers_as_documented(&state, path, failed, StatusCode::OK).await;
        assert_eq!(json["stages"][1]["retry_mode"], "ALL_ACTIONS");
        assert_eq!(json["actions"][0]["exit_code"], 2);
        assert_eq!(json["status_summary"], "stage build failed");
        let nope = get("/api/v1/executions/nope");
        answers_as_documented(&state, path, nope, StatusCode::NOT_FOUND).await;
        let path = "/api/v1/executions";
        let json = answers_as_documented(&state, path, get(path), StatusCode::OK).await;
        assert_eq!(json["executions"].as_array().unwrap().len(), 2);
        let zero = get("/api/v1/executions?limit=0");
        answers_as_documented(&state, path, zero, StatusCode::BAD_REQUEST).await;
        let path = "/api/v1/pipelines";
        answers_as_documented(&state, path, get(path), StatusCode::OK).await;
    }

    #[tokio::test]
    async fn control_requests_answer_as_documented() {
        let (dir, state) = state(FakeLauncher::new(PushReply::Duplicate)).await;
        let running = record_execution(&state, "app").await;
        let failed = record_failed_execution(&state).await.unwrap();
        let path = "/api/v1/executions/{execution_id}/cancel";
        let cancel = |id: &str| post(&format!("/api/v1/executions/{id}/cancel"), Some(TOKEN), "");
        let unavailable = StatusCode::SERVICE_UNAVAILABLE;
        answers_as_documented(&state, path, cancel(&running), unavailable).await;
        let state = state.with_data_dir(dir.path().join("data"));
        answers_as_documented(&state, path, cancel(&running), StatusCode::ACCEPTED).await;
        answers_as_documented(&state, path, cancel(&failed), StatusCode::CONFLICT).await;
        let unsigned = post(&format!("/api/v1/executions/{running}/cancel"), None, "");
        answers_as_documented(&state, path, unsigned, StatusCode::UNAUTHORIZED).await;
        let path = "/api/v1/executions/{execution_id}/approvals/{stage}/{action}";
        let uri = format!("/api/v1/executions/{running}/approvals/gate/approve");
        let reject = post(&uri, Some(TOKEN), r#"{"reject": "no"}"#);
        answers_as_documented(&state, path, reject, StatusCode::ACCEPTED).await;
        let path = "/api/v1/executions/{execution_id}/stages/{stage}/retry";
        let retry = |stage: &str, body: &str| {
            let uri = format!("/api/v1/executions/{failed}/stages/{stage}/retry");
            post(&uri, Some(TOKEN), body)
        };
        let all = retry("build", r#"{"mode": "all_actions"}"#);
        let json = answers_as_documented(&state, path, all, StatusCode::ACCEPTED).await;
        assert_eq!(json["mode"], "ALL_ACTIONS");
        let done = retry("done", "");
        answers_as_documented(&state, path, done, StatusCode::CONFLICT).await;
        let bad = retry("build", r#"{"mode": "some"}"#);
        answers_as_documented(&state, path, bad, StatusCode::BAD_REQUEST).await;
        let path = "/api/v1/pipelines/{name}/executions";
        let start = post("/api/v1/pipelines/app/executions", Some(TOKEN), "");
        answers_as_documented(&state, path, start, StatusCode::ACCEPTED).await;
        let unknown = post("/api/v1/pipelines/nope/executions", Some(TOKEN), "");
        answers_as_documented(&state, path, unknown, StatusCode::NOT_FOUND).await;
    }

    #[tokio::test]
    async fn webhook_deliveries_answer_as_documented() {
        let reply = PushReply::Accepted {
            started: vec![Started {
                pipeline: "app".into(),
                revision: SHA_B.into(),
                reason: "push to main".into(),
            }],
            skipped: vec![Skipped {
                pipeline: "docs".into(),
                reason: "no file matched".into(),
            }],
        };
        let (_dir, state) = state(FakeLauncher::new(reply)).await;
        let path = "/hooks/github";
        let push = push_body("acme/app", "refs/heads/main");
        let json = answers_as_documented(
            &state,
            path,
            signed("push", &push, "d-1"),
            StatusCode::ACCEPTED,
        )
        .await;
        assert_eq!(json["skipped"][0]["pipeline"], "docs");
        let ping = signed("ping", r#"{"hook_id": 42}"#, "d-2");
        answers_as_documented(&state, path, ping, StatusCode::OK).await;
        let issues = signed("issues", "{}", "d-3");
        answers_as_documented(&state, path, issues, StatusCode::OK).await;
        let mut forged = signed("push", &push, "d-4");
        forged.headers_mut().remove("X-Hub-Signature-256");
        answers_as_documented(&state, path, forged, StatusCode::UNAUTHORIZED).await;
        let (_dir, state) =
            crate::server::testing::state(FakeLauncher::new(PushReply::Duplicate)).await;
        let again = signed("push", &push, "d-1");
        let json = answers_as_documented(&state, path, again, StatusCode::OK).await;
        assert_eq!(json["duplicate"], true);
    }

    #[tokio::test]
    async fn the_checker_finds_undocumented_and_missing_fields() {
        let document = document();
        let schema = serde_json::json!({"$ref": "#/components/schemas/Started"});
        let value = serde_json::json!({"pipeline": "app", "revision": 1, "extra": true});
        let found = mismatches(&document, &schema, &value, "$");
        assert_eq!(
            found,
            [
                "$: required `reason` is missing",
                "$: `extra` is not a documented property",
                "$.revision: 1 is not a string",
            ],
            "{found:?}"
        );
    }
}

//! `openapi.json` stays in step with the router (every route with its method, and its
//! authentication) and with the protocol types (every example parses as the type it
//! documents and validates against its schema, and so do real responses).

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use orchestrator::auth::KeyKind;
use orchestrator::router::endpoints;
use orchestrator::routes::openapi::OPENAPI_JSON;
use protocol::{
    ClaimRequest, ClaimResponse, CompleteRequest, ErrorBody, FailRequest, HeartbeatRequest,
    PresignedUrls, ReleaseRequest, RunConfig, RunStatus, StartRunResponse, StopRunResponse,
    UploadUrlsRequest,
};
use serde_json::{Value, json};

use crate::harness::{API_KEY, RUNNER_KEY, TestApp, local_config};

fn document() -> Value {
    serde_json::from_str(OPENAPI_JSON).expect("openapi.json is JSON")
}

/// Every (method, path) the document describes.
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut operations = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            operations.insert((method.to_uppercase(), path.clone()));
        }
    }
    operations
}

/// A validator for the subset of JSON Schema the document uses. Objects are closed: a property
/// the schema does not list is an error, so a field added to a type must be documented.
fn validate(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.strip_prefix("#/components/schemas/").unwrap();
        let target = &doc["components"]["schemas"][name];
        assert!(!target.is_null(), "{reference} does not resolve");
        return validate(doc, target, value, at);
    }
    if let Some(options) = schema["oneOf"].as_array() {
        let matching = options
            .iter()
            .filter(|option| validate(doc, option, value, at).is_ok())
            .count();
        return (matching == 1)
            .then_some(())
            .ok_or(format!("{at}: {matching} of oneOf match {value}"));
    }
    if let Some(constant) = schema.get("const")
        && constant != value
    {
        return Err(format!("{at}: expected {constant}, got {value}"));
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        return Err(format!("{at}: {value} is not one of {allowed:?}"));
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(one) => vec![one.as_str()],
        Value::Array(many) => many.iter().map(|t| t.as_str().unwrap()).collect(),
        _ => Vec::new(),
    };
    let type_of = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    if !types.is_empty() && !types.contains(&type_of) {
        return Err(format!("{at}: expected {types:?}, got {value}"));
    }
    if let (Some(minimum), Some(n)) = (schema["minimum"].as_f64(), value.as_f64())
        && n < minimum
    {
        return Err(format!("{at}: {n} is below {minimum}"));
    }
    if let (Some(maximum), Some(n)) = (schema["maximum"].as_f64(), value.as_f64())
        && n > maximum
    {
        return Err(format!("{at}: {n} is above {maximum}"));
    }
    if let Value::Object(map) = value {
        for required in schema["required"].as_array().into_iter().flatten() {
            let name = required.as_str().unwrap();
            if !map.contains_key(name) {
                return Err(format!("{at}: missing {name}"));
            }
        }
        let properties = schema["properties"].as_object();
        // A map (`additionalProperties`) takes any key whose value matches.
        let any_key = schema.get("additionalProperties").filter(|s| s.is_object());
        for (name, field) in map {
            let Some(field_schema) = properties.and_then(|p| p.get(name)).or(any_key) else {
                return Err(format!("{at}: {name} is not documented"));
            };
            validate(doc, field_schema, field, &format!("{at}.{name}"))?;
        }
    }
    if let Value::Array(items) = value {
        for (i, item) in items.iter().enumerate() {
            validate(doc, &schema["items"], item, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

/// The examples of a media type object: `example` and every `examples.*.value`.
fn examples(media: &Value) -> Vec<Value> {
    let mut all: Vec<Value> = media.get("example").cloned().into_iter().collect();
    if let Some(named) = media["examples"].as_object() {
        all.extend(named.values().map(|example| example["value"].clone()));
    }
    all
}

/// Parses an example as the protocol type its schema names; request bodies go through the
/// same validation the handlers use.
fn parse_as(schema_name: &str, example: &Value) -> Result<(), String> {
    let bytes = example.to_string().into_bytes();
    let from_value = |result: Result<(), serde_json::Error>| result.map_err(|e| e.to_string());
    match schema_name {
        "RunConfig" => RunConfig::from_json(&bytes)
            .map(drop)
            .map_err(|e| e.message().to_owned()),
        "ClaimRequest" => ClaimRequest::from_json(&bytes)
            .map(drop)
            .map_err(|e| e.message().to_owned()),
        "HeartbeatRequest" => HeartbeatRequest::from_json(&bytes)
            .map(drop)
            .map_err(|e| e.message().to_owned()),
        "CompleteRequest" => CompleteRequest::from_json(&bytes)
            .map(drop)
            .map_err(|e| e.message().to_owned()),
        "UploadUrlsRequest" => UploadUrlsRequest::from_json(&bytes)
            .map(drop)
            .map_err(|e| e.message().to_owned()),
        "ReleaseRequest" => ReleaseRequest::from_json(&bytes)
            .map(drop)
            .map_err(|e| e.message().to_owned()),
        "FailRequest" => FailRequest::from_json(&bytes)
            .map(drop)
            .map_err(|e| e.message().to_owned()),
        "StartRunResponse" => {
            from_value(serde_json::from_value::<StartRunResponse>(example.clone()).map(drop))
        }
        "RunStatus" => from_value(serde_json::from_value::<RunStatus>(example.clone()).map(drop)),
        "StopRunResponse" => {
            from_value(serde_json::from_value::<StopRunResponse>(example.clone()).map(drop))
        }
        "ClaimResponse" => {
            from_value(serde_json::from_value::<ClaimResponse>(example.clone()).map(drop))
        }
        "PresignedUrls" => {
            from_value(serde_json::from_value::<PresignedUrls>(example.clone()).map(drop))
        }
        "ErrorBody" => {
            let body: ErrorBody =
                serde_json::from_value(example.clone()).map_err(|e| e.to_string())?;
            (!body.error.ends_with('.'))
                .then_some(())
                .ok_or("ends in a period".to_owned())
        }
        "Health" => (example == &json!({"status": "ok"}))
            .then_some(())
            .ok_or("not ok".to_owned()),
        other => Err(format!("no protocol type known for schema {other}")),
    }
}

#[test]
fn every_route_is_documented_and_every_documented_route_exists() {
    let doc = document();
    let served: BTreeSet<(String, String)> = endpoints()
        .into_iter()
        .map(|(method, path)| (method.to_string(), path.to_owned()))
        .collect();
    assert_eq!(documented(&doc), served);
}

#[test]
fn every_example_parses_as_its_type_and_validates_against_its_schema() {
    let doc = document();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let mut media_types = Vec::new();
            if let Some(body) = operation.get("requestBody") {
                media_types.push(("request".to_owned(), &body["content"]["application/json"]));
            }
            for (status, response) in operation["responses"].as_object().unwrap() {
                if let Some(media) = response["content"].get("application/json") {
                    media_types.push((status.clone(), media));
                }
            }
            for (what, media) in media_types {
                let schema = &media["schema"];
                let name = schema["$ref"]
                    .as_str()
                    .map(|r| r.rsplit('/').next().unwrap());
                for example in examples(media) {
                    let at = format!("{method} {path} {what}");
                    validate(&doc, schema, &example, &at).unwrap_or_else(|e| panic!("{e}"));
                    if let Some(name) = name {
                        parse_as(name, &example).unwrap_or_else(|e| panic!("{at}: {e}"));
                    }
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 30, "only {checked} examples");
}

#[tokio::test]
async fn the_document_is_served_and_its_security_is_what_the_router_does() {
    let app = TestApp::new().await;
    let response = app
        .send(Method::GET, "/openapi.json", None, Body::empty())
        .await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.json(), document());

    let doc = document();
    let keyed = orchestrator::router::keyed_endpoints();
    for (method, path) in documented(&doc) {
        let operation = &doc["paths"][&path][method.to_lowercase()];
        let uri = path.replace("{id}", "1");
        let method: Method = method.parse().unwrap();
        let response = app.send(method.clone(), &uri, None, Body::empty()).await;
        let kind = keyed
            .iter()
            .find(|(m, p, _)| *m == method && *p == path)
            .map(|(_, _, kind)| *kind);
        let (scheme, other_key) = match kind {
            None => {
                assert_eq!(operation["security"], json!([]), "{method} {path}");
                assert_ne!(response.status, StatusCode::UNAUTHORIZED, "{method} {path}");
                continue;
            }
            Some(KeyKind::Operator) => ("operatorKey", RUNNER_KEY),
            Some(KeyKind::Runner) => ("runnerKey", API_KEY),
        };
        assert_eq!(
            operation["security"],
            json!([{ scheme: [] }]),
            "{method} {path} takes {kind:?}"
        );
        assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{method} {path}");
        assert!(operation["responses"]["403"].is_object(), "{method} {path}");
        let response = app
            .send(
                method.clone(),
                &uri,
                Some(&format!("Bearer {other_key}")),
                Body::empty(),
            )
            .await;
        assert_eq!(response.status, StatusCode::FORBIDDEN, "{method} {path}");
    }
    assert!(doc.get("security").is_none(), "no default key for all");
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    assert_eq!(
        schemes.keys().collect::<Vec<_>>(),
        ["operatorKey", "runnerKey"]
    );
}

#[tokio::test]
async fn real_responses_validate_against_the_document() {
    let app = TestApp::new().await;
    let doc = document();
    let schema = |path: &str, method: &str, status: &str| {
        doc["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]
            .clone()
    };
    let check = |schema: Value, body: Value, at: &str| {
        validate(&doc, &schema, &body, at).unwrap_or_else(|e| panic!("{e}"));
    };

    let response = app.post("/run/start", &local_config()).await;
    check(
        schema("/run/start", "post", "201"),
        response.json(),
        "start",
    );
    let response = app.post("/run/start", &local_config()).await;
    check(
        schema("/run/start", "post", "409"),
        response.json(),
        "start 409",
    );
    let claim = json!({"provider": "local", "instance_type": "local-1cpu", "runner_id": "r"});
    let response = app.post("/tasks/claim", &claim).await;
    check(
        schema("/tasks/claim", "post", "200"),
        response.json(),
        "claim",
    );
    let urls_path = format!("/tasks/{}/upload-urls", response.json()["task"]["id"]);
    let response = app.post(&urls_path, &json!({"runner_id": "r"})).await;
    check(
        schema("/tasks/{id}/upload-urls", "post", "200"),
        response.json(),
        "upload-urls",
    );
    let response = app.post(&urls_path, &json!({"runner_id": "another"})).await;
    check(
        schema("/tasks/{id}/upload-urls", "post", "409"),
        response.json(),
        "upload-urls 409",
    );
    let response = app.get("/run").await;
    check(schema("/run", "get", "200"), response.json(), "run");
    let response = app.post("/run/stop", &Value::Null).await;
    check(schema("/run/stop", "post", "200"), response.json(), "stop");
    app.wait_for_jobs().await;
    let response = app.get("/run").await;
    check(
        schema("/run", "get", "200"),
        response.json(),
        "complete run",
    );
    let response = app.post("/tasks/claim", &claim).await;
    check(
        schema("/tasks/claim", "post", "200"),
        response.json(),
        "claim done",
    );
    let response = app.send(Method::GET, "/health", None, Body::empty()).await;
    check(schema("/health", "get", "200"), response.json(), "health");
}

#[test]
fn the_validator_catches_undocumented_and_missing_fields() {
    let doc = document();
    let schema = json!({"$ref": "#/components/schemas/StopRunResponse"});
    let good = json!({"run_id": 1, "tasks_deleted": 0, "tasks_failed": 2});
    assert!(validate(&doc, &schema, &good, "stop").is_ok());
    let mut extra = good.clone();
    extra["surprise"] = json!(1);
    assert!(validate(&doc, &schema, &extra, "stop").is_err());
    assert!(validate(&doc, &schema, &json!({"run_id": 1}), "stop").is_err());
    let claim = json!({"$ref": "#/components/schemas/ClaimResponse"});
    assert!(validate(&doc, &claim, &json!({"status": "later"}), "claim").is_err());
}

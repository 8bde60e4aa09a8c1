//! The served OpenAPI document is complete: every operation lists its errors
//! as problem+json with the `Problem` schema, every response is described,
//! public routes need no token, `Idempotency-Key` is declared where it is
//! read, limits and closed sets are declared; and what the server answers
//! is what the document says. (scripts/schemathesis.sh validates the same
//! document against the OpenAPI schema and fuzzes the server with it.)

use std::collections::BTreeSet;

use canopy_e2e::{TestApp, both_backends};
use reqwest::Method;
use serde_json::{Value, json};

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

async fn document(app: &TestApp) -> Value {
    app.request(Method::GET, "/openapi.json", None, None)
        .await
        .expect(200)
}

/// Every (method, path, operation) of the document.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut all = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                all.push((method.to_string(), path.clone(), op.clone()));
            }
        }
    }
    all
}

fn is_public(method: &str, path: &str) -> bool {
    matches!(
        (method, path),
        ("get", "/healthz")
            | ("get", "/readyz")
            | ("post", "/v1/sessions")
            | ("post", "/v1/invitations/accept")
            | ("post", "/v1/password-resets")
            | ("post", "/v1/password-resets/confirm")
    )
}

/// The statuses the document gives `method path`, and asserts each error
/// among them is problem+json.
#[track_caller]
fn documented(doc: &Value, method: &str, path: &str) -> BTreeSet<u16> {
    let op = &doc["paths"][path][method];
    assert!(op.is_object(), "{method} {path} is documented");
    op["responses"]
        .as_object()
        .unwrap()
        .keys()
        .map(|s| {
            s.parse()
                .unwrap_or_else(|_| panic!("{method} {path}: status {s} is a number"))
        })
        .collect()
}

fn enum_of(schema: &Value) -> Vec<String> {
    schema["enum"]
        .as_array()
        .unwrap_or_else(|| panic!("no enum in {schema}"))
        .iter()
        .filter_map(|v| v.as_str().map(String::from))
        .collect()
}

both_backends! {
    async fn every_operation_lists_its_errors_as_problem_json(app) {
        let doc = document(&app).await;
        let all = operations(&doc);
        assert!(all.len() > 80, "the document lists every route ({} found)", all.len());
        for (method, path, op) in &all {
            let responses = op["responses"].as_object().unwrap();
            let mut errors = 0;
            for (status, response) in responses {
                let code: u16 = status.parse().unwrap_or_else(|_| panic!("{method} {path}: `{status}` is not one status"));
                assert!(
                    !response["description"].as_str().unwrap_or("").is_empty(),
                    "{method} {path} {status} has a description"
                );
                let content = response["content"].as_object();
                if code >= 400 && code != 503 {
                    errors += 1;
                    let content = content.unwrap_or_else(|| panic!("{method} {path} {status} has content"));
                    assert_eq!(content.keys().collect::<Vec<_>>(), ["application/problem+json"], "{method} {path} {status}");
                    assert_eq!(content["application/problem+json"]["schema"]["$ref"], "#/components/schemas/Problem", "{method} {path} {status}");
                    let example = &content["application/problem+json"]["example"];
                    assert_eq!(example["status"], code, "{method} {path} {status}: the example is of that status");
                } else {
                    for (kind, body) in content.into_iter().flatten() {
                        assert_ne!(body["schema"]["$ref"], "#/components/schemas/Problem", "{method} {path} {status} {kind}: a problem on a success");
                    }
                }
            }
            assert!(errors > 0, "{method} {path} lists its errors");
            let statuses = documented(&doc, method, path);
            assert!(statuses.contains(&422), "{method} {path}: every route refuses unknown query parameters");
            if path.starts_with("/v1/") {
                assert!(statuses.contains(&500), "{method} {path}: 500 (policy_failed, internal)");
            }
            if is_public(method, path) {
                assert_eq!(op["security"], json!([]), "{method} {path} needs no token");
                assert!(!statuses.contains(&403) || path == "/v1/invitations/accept", "{method} {path}");
            } else {
                assert!(op.get("security").is_none(), "{method} {path} takes the document's bearer requirement");
                assert!(statuses.contains(&401), "{method} {path}: 401 without a token");
                assert!(statuses.contains(&403), "{method} {path}: 403");
            }
            if path.contains('{') {
                assert!(statuses.contains(&404), "{method} {path}: 404 for ids out of reach");
            }
            let idempotent = op["parameters"].as_array().into_iter().flatten()
                .any(|p| p["in"] == "header" && p["name"] == "Idempotency-Key");
            let takes_key = method == "post" && (path.starts_with("/v1/accounts/") || path.starts_with("/v1/operator/"));
            assert_eq!(idempotent, takes_key, "{method} {path}: Idempotency-Key declared exactly where it is read");
            if takes_key {
                assert!(statuses.contains(&409), "{method} {path}: idempotency_conflict");
            }
            // Every templated segment is a declared path parameter.
            for segment in path.split('/').filter(|s| s.starts_with('{')) {
                let name = segment.trim_matches(|c| c == '{' || c == '}');
                assert!(
                    op["parameters"].as_array().into_iter().flatten().any(|p| p["in"] == "path" && p["name"] == name && p["required"] == true),
                    "{method} {path}: path parameter {name} is declared"
                );
            }
            for p in op["parameters"].as_array().into_iter().flatten() {
                if p["in"] == "query" && p["name"] == "limit" {
                    // Lists take up to 1,000 rows a page; CSV exports 10,000.
                    let max = if path.ends_with("/export.csv") { 10_000 } else { 1000 };
                    assert_eq!((p["schema"]["minimum"].as_i64(), p["schema"]["maximum"].as_i64()), (Some(1), Some(max)), "{method} {path}: limit is 1..{max}");
                }
            }
        }
        // The document's default: a bearer token.
        assert_eq!(doc["security"], json!([{"bearer": []}]));
        assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    }

    async fn closed_sets_are_enums(app) {
        let doc = document(&app).await;
        let schemas = &doc["components"]["schemas"];
        assert_eq!(enum_of(&schemas["NewParent"]["properties"]["billing_type"]), ["prepaid", "postpaid"]);
        assert_eq!(enum_of(&schemas["ParentChanges"]["properties"]["subaccount_module"]), ["enterprise", "reseller"]);
        assert_eq!(enum_of(&schemas["Credit"]["properties"]["mode"]), ["assigned_budget", "shared_usage"]);
        assert_eq!(enum_of(&schemas["Upload"]["properties"]["hook"]), ["authorize", "subaccount.validate", "visibility", "cascade"]);
        assert_eq!(enum_of(&schemas["Activation"]["properties"]["mode"]), ["enforce", "shadow"]);
        assert_eq!(enum_of(&schemas["AccountView"]["properties"]["status"]), ["invited", "active", "suspended", "deleted"]);
        let codes = enum_of(&schemas["Problem"]["properties"]["code"]);
        for code in ["unauthenticated", "policy_failed", "validation_failed", "rate_limited"] {
            assert!(codes.iter().any(|c| c == code), "Problem.code lists {code}");
        }
        let status = doc["paths"]["/v1/accounts/{id}/subaccounts"]["get"]["parameters"]
            .as_array().unwrap().iter().find(|p| p["name"] == "status").cloned().unwrap();
        assert_eq!(enum_of(&status["schema"]), ["invited", "active", "suspended", "deleted"]);
    }

    async fn what_the_server_answers_is_what_the_document_says(app) {
        let doc = document(&app).await;
        let parent = app.parent("acme.example", "enterprise").await;
        let account = format!("/v1/accounts/{}", parent.id);
        let cases = [
            (app.request(Method::GET, &account, None, None).await, "get", "/v1/accounts/{id}", 401, "unauthenticated"),
            (app.get("/v1/accounts/acct_nobody", &parent.key).await, "get", "/v1/accounts/{id}", 404, "not_found"),
            (app.get(&format!("{account}/subaccounts?limit=0"), &parent.key).await, "get", "/v1/accounts/{id}/subaccounts", 422, "validation_failed"),
            (app.get(&format!("{account}/subaccounts?status=sleeping"), &parent.key).await, "get", "/v1/accounts/{id}/subaccounts", 422, "validation_failed"),
            (app.get("/healthz?verbose=1", &parent.key).await, "get", "/healthz", 422, "validation_failed"),
            (app.get("/v1/operator/accounts", &parent.key).await, "get", "/v1/operator/accounts", 401, "unauthenticated"),
            (app.request(Method::POST, "/v1/sessions", None, Some(json!({"email": "admin@acme.example", "password": "not the password"}))).await, "post", "/v1/sessions", 401, "unauthenticated"),
            (app.request(Method::POST, "/v1/invitations/accept", None, Some(json!({"token": "inv_unknown", "name": "A", "password": "correct horse battery"}))).await, "post", "/v1/invitations/accept", 404, "not_found"),
            (app.post(&format!("{account}/subaccounts"), &parent.key, json!({"name": "T", "email": "t@acme.example", "bogus": 1})).await, "post", "/v1/accounts/{id}/subaccounts", 422, "validation_failed"),
        ];
        for (reply, method, path, status, code) in cases {
            assert!(documented(&doc, method, path).contains(&status), "{method} {path} documents {status}");
            reply.expect_problem(status, code);
        }
        // Bodies are objects: serde alone would read a struct from an array
        // of its fields.
        let accounts = format!("/v1/operator/accounts/{}", parent.id);
        let cases = [
            (app.op_patch("/v1/operator/settings", json!([null, null])).await, "/v1/operator/settings"),
            (app.op_patch(&accounts, json!({"default_offers": [null, null]})).await, "/v1/operator/accounts/{id}"),
        ];
        for (reply, path) in cases {
            assert!(documented(&doc, "patch", path).contains(&422), "patch {path} documents 422");
            reply.expect_problem(422, "validation_failed");
        }
        // Any cursor the document's pattern allows is a position ("_w" is
        // the byte 0xFF, not UTF-8).
        let cursor = doc["paths"]["/v1/accounts/{id}/subaccounts"]["get"]["parameters"]
            .as_array().unwrap().iter().find(|p| p["name"] == "cursor").cloned().unwrap();
        assert!(cursor["schema"]["pattern"].as_str().unwrap().starts_with("^(?:[A-Za-z0-9_-]{4})*"), "{cursor}");
        app.get(&format!("{account}/subaccounts?cursor=_w"), &parent.key).await.expect(200);
    }
}

//! What every operation of the OpenAPI document has in common, added by
//! rule after the handlers' own annotations are collected, so a new route
//! gets it without being listed anywhere:
//! - its errors, each status as `application/problem+json` with the
//!   `Problem` schema and the codes of `error::CODES` that status carries;
//! - a description on every response;
//! - no bearer requirement on the routes that take no token;
//! - `Idempotency-Key` where the idempotency layer reads it;
//! - path parameters the handlers did not declare, `limit`'s bounds;
//! - the closed sets of values (`enum`) of fields and query parameters,
//!   taken from the domain types that parse them.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::idempotency;
use crate::domain::resources::{ResourceKind, ResourceStatus, TAG_LEN_MAX};
use crate::domain::traffic::Granularity;
use crate::domain::{BillingType, CreditMode, Module, Role, Status};
use crate::error::CODES;
use crate::ops::{PAGE_LIMIT_DEFAULT, PAGE_LIMIT_MAX};
use crate::policy::{Hook, Mode};
use crate::store::messages::Direction;

/// The served document: the handlers' annotations with these rules applied
/// (as JSON, which is what is served; the annotated document still tells
/// `params` which query parameters each route takes).
pub fn document(annotated: &utoipa::openapi::OpenApi) -> String {
    let mut doc = serde_json::to_value(annotated).expect("the OpenAPI document serializes");
    apply(&mut doc);
    serde_json::to_string_pretty(&doc).expect("the OpenAPI document serializes")
}

/// Routes that take no token, and the statuses each answers beyond those
/// every route does. Health routes say so in their own annotation
/// (`security()`).
const PUBLIC: &[(&str, &str, &[u16])] = &[
    ("post", "/v1/sessions", &[401, 429]),
    // A token is optional here: it proves to be the invited user.
    (
        "post",
        "/v1/invitations/accept",
        &[401, 403, 404, 409, 410, 429],
    ),
    ("post", "/v1/password-resets", &[429]),
    ("post", "/v1/password-resets/confirm", &[404, 410, 429]),
];

/// Statuses only some authenticated routes answer, by method and the end
/// of their template.
const ROUTE_STATUSES: &[(&str, &str, u16)] = &[
    ("post", "/topups", 402),
    ("post", "/budget", 402),
    ("post", "/subaccounts", 402),
    ("post", "/messages", 402),
    ("post", "/campaigns", 402),
    ("post", "/conversations", 402),
    ("post", "/inbound", 402),
    ("post", "/approve", 402),
    ("post", "/adjustments", 402),
    // Answers only on servers started with `--test-clock`.
    ("post", "/v1/operator/clock", 404),
];

/// A closed set of values: where (a schema's name, or for a query
/// parameter the end of the route's template, `*` for any), the field or
/// parameter, and its values.
type ClosedSet = (&'static str, &'static str, Vec<&'static str>);

/// Closed sets of request and response fields.
fn field_sets() -> Vec<ClosedSet> {
    let modes = vec![Mode::Enforce.as_str(), Mode::Shadow.as_str()];
    vec![
        (
            "*",
            "billing_type",
            names(BillingType::ALL, BillingType::as_str),
        ),
        ("*", "subaccount_module", names(Module::ALL, Module::as_str)),
        ("*", "role", names(&Role::ALL, Role::as_str)),
        (
            "*",
            "credit_mode",
            names(CreditMode::ALL, CreditMode::as_str),
        ),
        ("*", "hook", hooks()),
        ("*", "customer_hooks", hooks()),
        ("Upload", "runtime", vec!["rhai", "wasm"]),
        ("Credit", "mode", names(CreditMode::ALL, CreditMode::as_str)),
        ("Activation", "mode", modes.clone()),
        ("PolicyView", "mode", modes),
        ("AccountView", "status", names(Status::ALL, Status::as_str)),
    ]
}

/// Closed sets of query parameters.
fn query_sets() -> Vec<ClosedSet> {
    vec![
        ("*", "hook", hooks()),
        (
            "*",
            "granularity",
            names(Granularity::ALL, Granularity::as_str),
        ),
        ("*", "kind", names(ResourceKind::ALL, ResourceKind::as_str)),
        (
            "*",
            "direction",
            vec![Direction::Outbound.as_str(), Direction::Inbound.as_str()],
        ),
        ("*", "state", vec!["new", "responded"]),
        ("*", "outcome", vec!["allow", "deny", "error"]),
        ("/subaccounts", "status", names(Status::ALL, Status::as_str)),
        (
            "/operator/accounts",
            "status",
            names(Status::ALL, Status::as_str),
        ),
        (
            "/resources",
            "status",
            names(ResourceStatus::ALL, ResourceStatus::as_str),
        ),
        ("/resources", "place", vec!["available", "assigned"]),
    ]
}

/// What the server accepts of free-text query parameters, where a schema
/// can say it: (the end of the route's template or `*`, parameter, schema).
fn query_formats() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        (
            "*",
            "limit",
            json!({
                "type": "integer", "format": "int64",
                "minimum": 1, "maximum": PAGE_LIMIT_MAX, "default": PAGE_LIMIT_DEFAULT
            }),
        ),
        // Exports answer up to `EXPORT_ROWS_MAX` rows (later rows win).
        (
            "/export.csv",
            "limit",
            json!({
                "type": "integer", "format": "int64",
                "minimum": 1, "maximum": crate::ops::exports::EXPORT_ROWS_MAX,
                "default": crate::ops::exports::EXPORT_ROWS_MAX
            }),
        ),
        // What `extract::cursor` gives: unpadded base64url.
        (
            "*",
            "cursor",
            json!({"type": "string", "pattern": CURSOR_PATTERN}),
        ),
        // `domain::billing::Period`: a month from 1970.
        (
            "*",
            "period",
            json!({
                "type": "string", "example": "2026-11",
                "pattern": "^(19[7-9][0-9]|[2-9][0-9]{3})-(0[1-9]|1[0-2])$"
            }),
        ),
        // `ops::resources`: a number prefix of at most 21 characters.
        (
            "*",
            "prefix",
            json!({"type": "string", "pattern": "^(\\+[0-9]{1,20}|[0-9]{1,21})$"}),
        ),
        // `domain::resources::tags`: no spaces or control characters.
        (
            "*",
            "tag",
            json!({
                "type": "string",
                "pattern": format!("^[^\\s\\x00-\\x1f\\x7f-\\x9f]{{1,{TAG_LEN_MAX}}}$")
            }),
        ),
        // `operator::StatusFilter`: the sub-account searches.
        (
            "/subaccounts",
            "name",
            json!({"type": "string", "minLength": 1, "maxLength": super::operator::SEARCH_LEN_MAX}),
        ),
        // `operator::ParentSearch`: the operator's parent search.
        (
            "/operator/accounts",
            "name",
            json!({"type": "string", "minLength": 1, "maxLength": super::operator::SEARCH_LEN_MAX}),
        ),
        (
            "/subaccounts",
            "external_id",
            json!({"type": "string", "minLength": 1, "maxLength": super::operator::SEARCH_LEN_MAX}),
        ),
        (
            "/analytics",
            "from",
            json!({"type": "string", "format": "date", "example": "2026-11-01"}),
        ),
        (
            "/analytics",
            "to",
            json!({"type": "string", "format": "date", "example": "2026-11-30"}),
        ),
    ]
}

fn hooks() -> Vec<&'static str> {
    Hook::ALL.iter().map(|h| h.name()).collect()
}

fn names<T: Copy>(all: &[T], name: fn(T) -> &'static str) -> Vec<&'static str> {
    all.iter().map(|t| name(*t)).collect()
}

/// Unpadded base64url with its canonical last character.
const CURSOR_PATTERN: &str =
    "^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-][AQgw]|[A-Za-z0-9_-]{2}[AEIMQUYcgkosw048])?$";

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

fn apply(doc: &mut Value) {
    let queries = query_sets();
    if let Some(paths) = doc["paths"].as_object_mut() {
        for (path, item) in paths.iter_mut() {
            for method in METHODS {
                if let Some(op) = item.get_mut(method) {
                    operation(method, path, op, &queries);
                }
            }
        }
    }
    let fields = field_sets();
    let schemas = &mut doc["components"]["schemas"];
    if let Some(schemas) = schemas.as_object_mut() {
        for (name, schema) in schemas.iter_mut() {
            for (on, field, values) in &fields {
                if *on == "*" || on == name {
                    let property = schema.get_mut("properties").and_then(|p| p.get_mut(*field));
                    if let Some(property) = property {
                        declare_enum(property, values);
                    }
                }
            }
        }
    }
    problem_codes(&mut doc["components"]["schemas"]["Problem"]);
}

fn operation(method: &str, path: &str, op: &mut Value, queries: &[ClosedSet]) {
    let public = PUBLIC
        .iter()
        .find(|(m, p, _)| *m == method && *p == path)
        .map(|(_, _, statuses)| *statuses);
    let declared_open = op["security"]
        .as_array()
        .is_some_and(|s| s.iter().all(|r| r.as_object().is_some_and(Map::is_empty)));
    if public.is_some() || declared_open {
        op["security"] = json!([]);
    }

    let params = op
        .as_object_mut()
        .expect("an operation is an object")
        .entry("parameters")
        .or_insert_with(|| json!([]))
        .as_array_mut()
        .expect("parameters are a list");
    path_parameters(path, params);
    for param in params.iter_mut() {
        let name = param["name"].as_str().unwrap_or_default().to_string();
        if param["in"] == "query" {
            for (on, field, schema) in query_formats() {
                if field == name && (on == "*" || path.ends_with(on)) {
                    param["schema"] = schema;
                }
            }
        }
        if param["in"] == "query" {
            for (on, field, values) in queries {
                if *field == name && (*on == "*" || path.ends_with(on)) {
                    declare_enum(&mut param["schema"], values);
                }
            }
        }
    }
    if idempotency::applies(&method.to_uppercase().parse().expect("a method"), path) {
        params.push(json!({
            "name": "Idempotency-Key",
            "in": "header",
            "required": false,
            "description": "Makes a retry safe: the first answer (success or 4xx) is stored for 24 hours and replayed with `Idempotent-Replayed: true`; the same key with another request is 409 `idempotency_conflict`.",
            "schema": {"type": "string", "minLength": 1, "maxLength": idempotency::KEY_LEN_MAX}
        }));
    }
    if params.is_empty() {
        op.as_object_mut()
            .expect("an operation is an object")
            .remove("parameters");
    }

    let statuses = error_statuses(method, path, op, public);
    let responses = op["responses"]
        .as_object_mut()
        .expect("an operation has responses");
    // A handler's catch-all `4XX` gives way to the statuses it can answer.
    responses.retain(|status, _| status.parse::<u16>().is_ok());
    for (status, response) in responses.iter_mut() {
        let status: u16 = status.parse().expect("kept numeric statuses only");
        if response_is_problem(response) || statuses.contains(&status) {
            *response = problem_response(status, path);
        } else if response["description"]
            .as_str()
            .unwrap_or_default()
            .is_empty()
        {
            response["description"] = json!(success_description(status, response));
        }
    }
    for status in statuses {
        responses
            .entry(status.to_string())
            .or_insert_with(|| problem_response(status, path));
    }
}

/// `{name}` segments the handler did not declare, as required strings
/// (`version`: a positive integer).
fn path_parameters(path: &str, params: &mut Vec<Value>) {
    for segment in path.split('/') {
        let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) else {
            continue;
        };
        if params
            .iter()
            .any(|p| p["in"] == "path" && p["name"] == name)
        {
            continue;
        }
        let schema = if name == "version" {
            json!({"type": "integer", "format": "int64", "minimum": 1})
        } else {
            json!({"type": "string", "minLength": 1})
        };
        params.push(json!({"name": name, "in": "path", "required": true, "schema": schema}));
    }
}

fn error_statuses(method: &str, path: &str, op: &Value, public: Option<&[u16]>) -> BTreeSet<u16> {
    // An unknown query parameter is refused on every route.
    let mut statuses = BTreeSet::from([422]);
    if !path.starts_with("/v1/") {
        return statuses;
    }
    // A policy that fails, and the server's own failures.
    statuses.insert(500);
    if let Some(extra) = public {
        statuses.extend(extra.iter().copied());
    } else {
        // No token; the principal's own account, reach, modules, core rules
        // and `authorize`; a tree's share of policy evaluation busy.
        statuses.extend([401, 403, 429]);
        if path.contains('{') {
            statuses.insert(404);
        }
        if method != "get" {
            statuses.insert(409);
        }
        for (m, suffix, status) in ROUTE_STATUSES {
            if *m == method && path.ends_with(suffix) {
                statuses.insert(*status);
            }
        }
    }
    if op.get("requestBody").is_some()
        || idempotency::applies(&method.to_uppercase().parse().expect("a method"), path)
    {
        statuses.insert(413);
    }
    statuses
}

fn response_is_problem(response: &Value) -> bool {
    response["content"]
        .as_object()
        .into_iter()
        .flatten()
        .any(|(_, c)| c["schema"]["$ref"] == "#/components/schemas/Problem")
}

/// A problem response for `status`, naming the codes it may carry.
fn problem_response(status: u16, path: &str) -> Value {
    let codes: Vec<&(&str, u16, &str)> = CODES
        .iter()
        .filter(|(code, s, _)| {
            *s == status && (*code != "idempotency_conflict" || path.starts_with("/v1/"))
        })
        .collect();
    let titles: Vec<&str> = codes.iter().map(|(_, _, t)| *t).collect();
    let listed: Vec<String> = codes.iter().map(|(c, _, _)| format!("`{c}`")).collect();
    let (code, title) = codes
        .first()
        .map_or(("internal", "Internal error"), |(c, _, t)| (*c, *t));
    let mut description = format!(
        "{}: a problem whose `code` is {} (docs/ERRORS.md); `detail` says what was wrong and how to fix the request.",
        titles.join(", "),
        listed.join(" or ")
    );
    if status == 429 {
        description.push_str(" `Retry-After` says after how many seconds to retry.");
    }
    let mut response = json!({
        "description": description,
        "content": {"application/problem+json": {
            "schema": {"$ref": "#/components/schemas/Problem"},
            "example": {
                "type": format!("https://canopy.dev/problems/{code}"),
                "title": title,
                "status": status,
                "detail": "what was wrong, and how to fix the request",
                "code": code
            }
        }}
    });
    if status == 429 {
        response["headers"] = json!({"Retry-After": {
            "description": "Seconds to wait before retrying.",
            "schema": {"type": "integer", "minimum": 0}
        }});
    }
    response
}

fn success_description(status: u16, response: &Value) -> String {
    let what = response["content"]["application/json"]["schema"]["$ref"]
        .as_str()
        .and_then(|r| r.rsplit('/').next())
        .map(|name| format!(": a `{name}`"))
        .unwrap_or_default();
    match status {
        201 => format!("Created{what}"),
        202 => format!("Accepted; the work is queued{what}"),
        204 => "Done; no content".to_string(),
        _ => format!("Success{what}"),
    }
}

/// `enum` on a string schema (or on the items of an array of them); a
/// nullable one keeps `null`.
fn declare_enum(schema: &mut Value, values: &[&str]) {
    if schema.get("items").is_some() {
        return declare_enum(&mut schema["items"], values);
    }
    let mut values: Vec<Value> = values.iter().map(|v| json!(v)).collect();
    let nullable = schema["type"]
        .as_array()
        .is_some_and(|t| t.iter().any(|t| t == "null"));
    if nullable {
        values.push(Value::Null);
    }
    if let Some(schema) = schema.as_object_mut() {
        schema.insert("enum".into(), Value::Array(values));
    }
}

/// `Problem.code`: every code, with its status, from `error::CODES`.
fn problem_codes(problem: &mut Value) {
    let code = &mut problem["properties"]["code"];
    let mut description =
        String::from("Stable machine-readable code, one HTTP status each (docs/ERRORS.md):");
    for (c, status, title) in CODES {
        description.push_str(&format!("\n- `{c}` {status}: {title}"));
    }
    code["description"] = json!(description);
    code["enum"] = json!(CODES.iter().map(|(c, _, _)| *c).collect::<Vec<_>>());
}

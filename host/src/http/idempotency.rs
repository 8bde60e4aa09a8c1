//! `Idempotency-Key` on POSTs under `/v1/accounts` and `/v1/operator`
//! (API.md, invariant 7). A key is scoped by the principal, the account
//! acted in and the route (never the raw path: `acct%5F1` is `acct_1`).
//!
//! Nothing is claimed before the request runs: the key's row is written by
//! the effect's own transaction (`store::idempotency`), and the answer
//! (success or 4xx, without secrets) is stored after. A replay returns it
//! with `Idempotent-Replayed: true`, and `Idempotent-Redacted` naming the
//! secret fields it leaves out; the same key with another request is 409
//! `idempotency_conflict`; a 5xx is not kept. When a crash lost the answer
//! of a committed request, the retry runs again knowing that: the
//! operation answers from what was committed (a message) or refuses with a
//! 409 naming what it created, and never repeats the effect.

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::extract::{FromRequestParts, MatchedPath, RawPathParams, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::extract::Caller;
use super::{AppState, BODY_BYTES_MAX};
use crate::secrets::sha256_hex;
use crate::store::idempotency::{self, Answer, Guard, Stored};
use crate::{Error, crashpoint};

/// Longest key accepted (API.md).
pub const KEY_LEN_MAX: usize = 255;
/// Largest response kept for replay.
const STORED_RESPONSE_BYTES_MAX: usize = 1024 * 1024;
/// Response fields that are secrets: never stored, left out of replays.
const SECRET_FIELDS: [&str; 2] = ["secret", "token"];

/// Whether a request to this route template reads `Idempotency-Key`; the
/// OpenAPI document declares the header where this says so.
pub fn applies(method: &Method, route: &str) -> bool {
    method == Method::POST
        && (route.starts_with("/v1/accounts/") || route.starts_with("/v1/operator/"))
}

pub async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(key) = req.headers().get("idempotency-key").cloned() else {
        return next.run(req).await;
    };
    let Some(route) = req.extensions().get::<MatchedPath>().cloned() else {
        return next.run(req).await;
    };
    if !applies(req.method(), route.as_str()) {
        return next.run(req).await;
    }
    match replay_or_run(state, route, key, req, next).await {
        Ok(response) | Err(response) => response,
    }
}

async fn replay_or_run(
    state: AppState,
    route: MatchedPath,
    key: HeaderValue,
    req: Request,
    next: Next,
) -> Result<Response, Response> {
    let key = key
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= KEY_LEN_MAX)
        .ok_or_else(|| {
            Error::invalid(
                "Idempotency-Key",
                format!("must be 1 to {KEY_LEN_MAX} visible ASCII characters"),
            )
            .into_response()
        })?
        .to_string();
    let (mut parts, body) = req.into_parts();
    // Authenticate first: an unknown caller gets its 401, never a replay.
    let caller = Caller::from_request_parts(&mut parts, &state)
        .await
        .map_err(IntoResponse::into_response)?;
    // The decoded path parameters: the account acted in, and the rest.
    let params = RawPathParams::from_request_parts(&mut parts, &state)
        .await
        .map_err(IntoResponse::into_response)?;
    let decoded: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let account = decoded
        .iter()
        .find(|(k, _)| k == "id" || k == "parent_id" || k == "sub_id")
        .map(|(_, v)| v.as_str())
        .unwrap_or("-");
    let scope =
        sha256_hex(format!("{}\0{account}\0{}", caller.0.identity(), route.as_str()).as_bytes());
    let limit = if route.as_str().ends_with("/policies") {
        super::policies::UPLOAD_BODY_BYTES_MAX
    } else {
        BODY_BYTES_MAX
    };
    let bytes = to_bytes(body, limit).await.map_err(|_| {
        Error::PayloadTooLarge(
            "the request body is over the size limit (1 MiB; policy uploads 8 MiB)".into(),
        )
        .into_response()
    })?;
    let mut fingerprint = Vec::with_capacity(bytes.len() + 128);
    for (k, v) in &decoded {
        fingerprint.extend_from_slice(format!("{k}={v}\0").as_bytes());
    }
    fingerprint.extend_from_slice(&bytes);
    let request_hash = sha256_hex(&fingerprint);

    let canopy = &state.canopy;
    let now_us = canopy.clock.now_us();
    let stored = canopy
        .stored_key(&scope, &key, now_us)
        .await
        .map_err(IntoResponse::into_response)?;
    let different = || {
        Error::IdempotencyConflict(
            "this Idempotency-Key was used with a different request; use a new key for a new request".into(),
        )
        .into_response()
    };
    let committed = match stored {
        Some(
            Stored::Answer {
                request_hash: h, ..
            }
            | Stored::Committed {
                request_hash: h, ..
            },
        ) if h != request_hash => {
            return Err(different());
        }
        Some(Stored::Answer {
            status,
            content_type,
            body,
            redacted,
            ..
        }) => return Ok(replay(status, &content_type, body, redacted.as_deref())),
        Some(Stored::Committed { resource, .. }) => Some(resource),
        None => None,
    };
    let guard = Arc::new(Guard::new(scope, key, request_hash, now_us, committed));
    parts.extensions.insert(caller);
    let request = Request::from_parts(parts, Body::from(bytes));
    let mut response = idempotency::guarded(guard.clone(), next.run(request)).await;
    if guard.recorded() {
        crashpoint::hit(crashpoint::AFTER_EFFECT_COMMIT);
    }
    if guard.committed.is_some() && !guard.conflicted() && response.status().is_success() {
        // Answered again from what an earlier request committed.
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    let response = remember(&state, &guard, response).await;
    crashpoint::hit(crashpoint::AFTER_ANSWER_STORED);
    Ok(response)
}

fn replay(status: u16, content_type: &str, body: String, redacted: Option<&str>) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    if let Ok(ct) = HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    response
        .headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    if let Some(fields) = redacted.and_then(|r| HeaderValue::from_str(r).ok()) {
        response.headers_mut().insert("idempotent-redacted", fields);
    }
    response
}

/// Stores an answer (not a 5xx, not a conflict of the key itself), without
/// its secrets.
async fn remember(state: &AppState, guard: &Guard, response: Response) -> Response {
    // A request whose effect an earlier one committed keeps that record
    // unless it could answer from it: a refusal now says nothing of the
    // committed effect.
    // A 429 says "later", not what became of the request: never replayed.
    let recovering_refused = guard.committed.is_some() && !response.status().is_success();
    let transient = response.status() == StatusCode::TOO_MANY_REQUESTS;
    if response.status().is_server_error() || guard.conflicted() || recovering_refused || transient
    {
        return response;
    }
    let (parts, body) = response.into_parts();
    let stored = async {
        let bytes = to_bytes(body, STORED_RESPONSE_BYTES_MAX)
            .await
            .map_err(Error::internal)?;
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let (text, redacted) = without_secrets(&bytes);
        let redacted = (!redacted.is_empty()).then(|| redacted.join(", "));
        let answer = Answer {
            status: parts.status.as_u16(),
            content_type,
            body: &text,
            redacted: redacted.as_deref(),
        };
        state.canopy.remember_answer(guard, &answer).await?;
        Ok::<_, Error>(bytes)
    }
    .await;
    match stored {
        Ok(bytes) => Response::from_parts(parts, Body::from(bytes)),
        Err(e) => e.into_response(),
    }
}

/// The body as stored for replays: every secret field removed, and the
/// paths of those removed.
fn without_secrets(bytes: &[u8]) -> (String, Vec<String>) {
    let Ok(mut value) = serde_json::from_slice::<Value>(bytes) else {
        return (String::from_utf8_lossy(bytes).into_owned(), vec![]);
    };
    let mut removed = vec![];
    strip(&mut value, "", &mut removed);
    (value.to_string(), removed)
}

fn strip(value: &mut Value, path: &str, removed: &mut Vec<String>) {
    let join = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    match value {
        Value::Object(map) => {
            for field in SECRET_FIELDS {
                if map.remove(field).is_some() {
                    removed.push(join(field));
                }
            }
            for (k, v) in map.iter_mut() {
                strip(v, &join(k), removed);
            }
        }
        Value::Array(items) => {
            for item in items {
                strip(item, &format!("{path}[]"), removed);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::without_secrets;

    #[test]
    fn secrets_are_never_stored_for_replay() {
        let body = br#"{"account":{"id":"acct_1"},"api_key":{"id":"key_1","secret":"ck_x"},"invitation":{"token":"ci_y","expires_at":"t"}}"#;
        let (text, removed) = without_secrets(body);
        assert!(!text.contains("ck_x") && !text.contains("ci_y"), "{text}");
        assert!(text.contains("key_1") && text.contains("acct_1"));
        assert_eq!(removed, vec!["api_key.secret", "invitation.token"]);
    }
}

//! `Idempotency-Key` on POSTs under `/v1/accounts` and `/v1/operator`
//! (API.md): the first response, success or 4xx, is stored with a hash of
//! the request and replayed with `Idempotent-Replayed: true`; the same key
//! with another request is 409 `idempotency_conflict`; a 5xx is not kept.

use axum::body::{Body, to_bytes};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::extract::Caller;
use super::{AppState, BODY_BYTES_MAX};
use crate::Error;
use crate::secrets::sha256_hex;
use crate::store::idempotency::{self, Claim};

/// Longest key accepted (API.md).
const KEY_LEN_MAX: usize = 255;
/// Largest response kept for replay.
const STORED_RESPONSE_BYTES_MAX: usize = 1024 * 1024;

/// The account a request acts in, which scopes its keys.
fn scope(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/v1/")?;
    if rest.starts_with("operator/") {
        return Some("operator".into());
    }
    rest.strip_prefix("accounts/")
        .map(|r| r.split('/').next().unwrap_or_default().to_string())
}

pub async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let Some(key) = req.headers().get("idempotency-key").cloned() else {
        return next.run(req).await;
    };
    let Some(scope) = scope(req.uri().path()) else {
        return next.run(req).await;
    };
    match replay_or_run(state, scope, key, req, next).await {
        Ok(response) | Err(response) => response,
    }
}

async fn replay_or_run(
    state: AppState,
    scope: String,
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
    let limit = if parts.uri.path().ends_with("/policies") {
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
    fingerprint.extend_from_slice(parts.uri.to_string().as_bytes());
    fingerprint.push(0);
    fingerprint.extend_from_slice(caller.0.identity().as_bytes());
    fingerprint.push(0);
    fingerprint.extend_from_slice(&bytes);
    let request_hash = sha256_hex(&fingerprint);

    let canopy = &state.canopy;
    let now_us = canopy.clock.now_us();
    let claim = async {
        let mut tx = canopy.store.begin().await?;
        let claim = idempotency::claim(&mut tx, &scope, &key, &request_hash, now_us).await?;
        tx.commit().await.map_err(crate::store::db_error)?;
        Ok::<_, Error>(claim)
    }
    .await
    .map_err(IntoResponse::into_response)?;
    let different = || {
        Error::IdempotencyConflict(
            "this Idempotency-Key was used with a different request; use a new key for a new request".into(),
        )
        .into_response()
    };
    match claim {
        Claim::Replay { request_hash: stored, .. } | Claim::InProgress { request_hash: stored } if stored != request_hash => {
            Err(different())
        }
        Claim::InProgress { .. } => Err(Error::IdempotencyConflict(
            "the first request with this Idempotency-Key is still in progress; retry when it has answered".into(),
        )
        .into_response()),
        Claim::Replay { status, content_type, body, .. } => {
            let mut response = Response::new(Body::from(body));
            *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            if let Ok(ct) = HeaderValue::from_str(&content_type) {
                response.headers_mut().insert(header::CONTENT_TYPE, ct);
            }
            response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
            Ok(response)
        }
        Claim::First => {
            parts.extensions.insert(caller);
            let response = next.run(Request::from_parts(parts, Body::from(bytes))).await;
            Ok(remember(&state, &scope, &key, response).await)
        }
    }
}

/// Stores a first response (not a 5xx), or frees the key for a retry.
async fn remember(state: &AppState, scope: &str, key: &str, response: Response) -> Response {
    let (parts, body) = response.into_parts();
    let stored = async {
        let bytes = to_bytes(body, STORED_RESPONSE_BYTES_MAX)
            .await
            .map_err(Error::internal)?;
        let mut tx = state.canopy.store.begin().await?;
        if parts.status.is_server_error() {
            idempotency::release(&mut tx, scope, key).await?;
        } else {
            let content_type = parts
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let text = String::from_utf8_lossy(&bytes);
            idempotency::complete(
                &mut tx,
                scope,
                key,
                parts.status.as_u16(),
                content_type,
                &text,
            )
            .await?;
        }
        tx.commit().await.map_err(crate::store::db_error)?;
        Ok::<_, Error>(bytes)
    }
    .await;
    match stored {
        Ok(bytes) => Response::from_parts(parts, Body::from(bytes)),
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::scope;

    #[test]
    fn keys_are_scoped_to_the_account_acted_in() {
        assert_eq!(
            scope("/v1/accounts/acct_1/subaccounts").as_deref(),
            Some("acct_1")
        );
        assert_eq!(scope("/v1/operator/accounts").as_deref(), Some("operator"));
        assert_eq!(scope("/v1/sessions"), None);
    }
}

//! problem+json (RFC 9457) for every error, with the stable `code` of
//! API.md. A 5xx logs its cause and shows a generic message.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::Error;
use crate::error::{FieldError, PolicyRef};

/// The problem document.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the problem type.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    /// What was wrong and how to fix the request.
    pub detail: String,
    /// Stable machine-readable code, one HTTP status each (docs/ERRORS.md):
    /// - `unauthenticated` 401
    /// - `insufficient_funds` 402
    /// - `forbidden` 403
    /// - `policy_denied` 403
    /// - `account_suspended` 403
    /// - `feature_not_enabled` 403
    /// - `not_found` 404
    /// - `method_not_allowed` 405 (with `Allow`)
    /// - `conflict` 409
    /// - `idempotency_conflict` 409
    /// - `invitation_expired` 410
    /// - `payload_too_large` 413
    /// - `validation_failed` 422
    /// - `rate_limited` 429 (with `Retry-After`)
    /// - `policy_failed` 500
    /// - `internal` 500
    #[schema(example = "validation_failed")]
    pub code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicyRef>,
    /// The request's `X-Request-Id` (the client's, or one the server made),
    /// to quote when reporting the problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

fn title(code: &str) -> &'static str {
    match code {
        "unauthenticated" => "Authentication required",
        "forbidden" => "Forbidden",
        "policy_denied" => "Denied by policy",
        "account_suspended" => "Account suspended",
        "feature_not_enabled" => "Feature not enabled",
        "not_found" => "Not found",
        "conflict" => "Conflict",
        "idempotency_conflict" => "Idempotency key conflict",
        "validation_failed" => "Validation failed",
        "insufficient_funds" => "Insufficient funds",
        "policy_failed" => "Policy failed",
        "payload_too_large" => "Payload too large",
        "invitation_expired" => "Invitation expired",
        "method_not_allowed" => "Method not allowed",
        "rate_limited" => "Too many requests",
        _ => "Internal error",
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        let code = self.code();
        let retry_after = match &self {
            Error::RateLimited {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            _ => None,
        };
        let detail = match &self {
            Error::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                "the server failed to handle this request; it was logged, retry later".to_string()
            }
            other => other.to_string(),
        };
        let (errors, policy) = match &self {
            Error::Validation { errors, policy, .. } => (Some(errors.clone()), policy.clone()),
            other => (None, other.policy().cloned()),
        };
        if let Some(p) = &policy {
            tracing::info!(code, policy = %p.id, version = p.version, reason = %p.reason, "policy decided");
        }
        let problem = Problem {
            kind: format!("https://canopy.dev/problems/{code}"),
            title: title(code).to_string(),
            status,
            detail,
            code: code.to_string(),
            errors,
            policy,
            request_id: super::request_id(),
        };
        let mut response = (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            axum::Json(problem),
        )
            .into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every code, with its status, is listed in the OpenAPI document and
    /// in docs/ERRORS.md.
    #[test]
    fn every_code_is_documented() {
        let policy = PolicyRef {
            id: "pol_x".into(),
            version: 1,
            reason: "no".into(),
        };
        let text = String::new;
        let every = [
            Error::Unauthenticated(text()),
            Error::Forbidden(text()),
            Error::PolicyDenied(policy.clone()),
            Error::AccountSuspended(text()),
            Error::FeatureNotEnabled(text()),
            Error::NotFound(text()),
            Error::Conflict(text()),
            Error::IdempotencyConflict(text()),
            Error::invalid("field", "reason"),
            Error::InsufficientFunds(text()),
            Error::PolicyFailed(policy),
            Error::PayloadTooLarge(text()),
            Error::InvitationExpired(text()),
            Error::MethodNotAllowed(text()),
            Error::RateLimited {
                detail: text(),
                retry_after_secs: 1,
            },
            Error::Internal(text()),
        ];
        let spec: serde_json::Value =
            serde_json::from_str(&crate::http::openapi_json()).expect("OpenAPI is JSON");
        let listed = spec["components"]["schemas"]["Problem"]["properties"]["code"]["description"]
            .as_str()
            .expect("Problem.code is described");
        let table = include_str!("../../../docs/ERRORS.md");
        for e in every {
            let (code, status) = (e.code(), e.status());
            assert!(
                listed.contains(&format!("`{code}` {status}")),
                "{code} {status} is not listed in the OpenAPI document"
            );
            assert!(
                table.contains(&format!("| `{code}` | {status} |")),
                "{code} {status} is not in docs/ERRORS.md"
            );
        }
    }
}

//! problem+json (RFC 9457) for every error, with the stable `code` of
//! API.md. A 5xx logs its cause and shows a generic message.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::Error;
use crate::error::{CODES, FieldError, PolicyRef};

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
    /// Stable machine-readable code, one HTTP status each; the OpenAPI
    /// document lists them (`enum`, with each one's status) from
    /// `error::CODES`, and so does docs/ERRORS.md.
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
    CODES
        .iter()
        .find(|(c, _, _)| *c == code)
        .map_or("Internal error", |(_, _, title)| title)
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
            Error::Validation { errors, policy, .. } => {
                (Some(errors.clone()), policy.as_deref().cloned())
            }
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
    use std::collections::BTreeSet;

    use super::*;

    /// `CODES` holds every variant's code and status and nothing else,
    /// and the OpenAPI document's `Problem.code` and the table in
    /// docs/ERRORS.md list exactly those, so none can drift from the code.
    #[test]
    fn every_code_is_documented() {
        let policy = PolicyRef {
            id: "pol_x".into(),
            name: "x".into(),
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
        let pairs = |it: &mut dyn Iterator<Item = (String, u16)>| it.collect::<BTreeSet<_>>();
        let variants = pairs(&mut every.iter().map(|e| (e.code().to_string(), e.status())));
        let listed = pairs(&mut CODES.iter().map(|(c, s, _)| (c.to_string(), *s)));
        assert_eq!(
            variants, listed,
            "error::CODES is every Error code with its status"
        );
        assert_eq!(
            CODES.len(),
            listed.len(),
            "error::CODES names each code once"
        );

        let spec: serde_json::Value =
            serde_json::from_str(&crate::http::openapi_json()).expect("OpenAPI is JSON");
        let code = &spec["components"]["schemas"]["Problem"]["properties"]["code"];
        let in_enum: BTreeSet<String> = code["enum"]
            .as_array()
            .expect("Problem.code has an enum")
            .iter()
            .map(|c| c.as_str().expect("codes are strings").to_string())
            .collect();
        let codes: BTreeSet<String> = listed.iter().map(|(c, _)| c.clone()).collect();
        assert_eq!(
            in_enum, codes,
            "Problem.code's enum in the OpenAPI document"
        );
        let described = code["description"]
            .as_str()
            .expect("Problem.code is described");
        for (c, s) in &listed {
            assert!(
                described.contains(&format!("`{c}` {s}")),
                "{c} {s} is not described on Problem.code"
            );
        }

        let table = pairs(
            &mut include_str!("../../../docs/ERRORS.md")
                .lines()
                .filter_map(|line| {
                    let mut cells = line.strip_prefix("| `")?.split(" | ");
                    let code = cells.next()?.strip_suffix('`')?;
                    Some((code.to_string(), cells.next()?.parse().ok()?))
                }),
        );
        assert_eq!(table, listed, "the table in docs/ERRORS.md");
    }
}

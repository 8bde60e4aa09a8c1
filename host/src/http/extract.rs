//! Request extractors: the caller, strict JSON bodies, pagination.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use base64::Engine as _;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::AppState;
use crate::Error;
use crate::error::FieldError;
use crate::ops::{PAGE_LIMIT_DEFAULT, PAGE_LIMIT_MAX, Page, Principal};

/// The authenticated caller of a route.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, Error> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        let token = bearer(parts)?;
        let principal = state.canopy.authenticate(token).await?;
        let caller = Caller(principal);
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}

/// `Option<Caller>`: no `Authorization` header is `None`; a header with
/// an unknown token is still a 401.
impl axum::extract::OptionalFromRequestParts<AppState> for Caller {
    type Rejection = Error;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Caller>, Error> {
        if !parts.headers.contains_key(header::AUTHORIZATION) {
            return Ok(None);
        }
        <Caller as FromRequestParts<AppState>>::from_request_parts(parts, state)
            .await
            .map(Some)
    }
}

fn bearer(parts: &Parts) -> Result<&str, Error> {
    let missing = || {
        Error::Unauthenticated(
            "send `Authorization: Bearer <token>` with an API key, session or operator token"
                .into(),
        )
    };
    let value = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or_else(missing)?;
    let value = value.to_str().map_err(|_| missing())?;
    let token = value.strip_prefix("Bearer ").ok_or_else(missing)?.trim();
    if token.is_empty() {
        Err(missing())
    } else {
        Ok(token)
    }
}

/// The operator, and only the operator.
#[derive(Debug, Clone)]
pub struct Operator;

impl FromRequestParts<AppState> for Operator {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Operator, Error> {
        match Caller::from_request_parts(parts, state).await?.0 {
            Principal::Operator => Ok(Operator),
            Principal::User { .. } => Err(Error::Unauthenticated(
                "operator routes take the operator token, not an API key or session".into(),
            )),
        }
    }
}

/// A JSON body parsed strictly: unknown fields and wrong types are 422s
/// naming the field (as Stripe does), a body over the limit is 413.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Body<T>, Error> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    Error::PayloadTooLarge(
                        "the request body is over the size limit (1 MiB; policy uploads 8 MiB)"
                            .into(),
                    )
                } else {
                    Error::invalid("body", format!("could not be read: {e}"))
                }
            })?;
        parse_json(&bytes).map(Body)
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.to_string();
        // serde names an unknown field in its message; point at it.
        let (field, reason) = match message
            .strip_prefix("unknown field `")
            .and_then(|m| m.split_once('`'))
        {
            Some((name, _)) => {
                let field = if path == "." {
                    name.to_string()
                } else if path == name || path.ends_with(&format!(".{name}")) {
                    path.clone()
                } else {
                    format!("{path}.{name}")
                };
                (
                    field,
                    "is not a field of this request; remove it".to_string(),
                )
            }
            None if path == "." => (
                "body".to_string(),
                format!("must be a JSON object of this request's fields: {message}"),
            ),
            None => (path, message),
        };
        Error::Validation {
            detail: format!("`{field}` {reason}"),
            errors: vec![FieldError::new(field, reason)],
            policy: None,
        }
    })
}

/// `?limit=&cursor=` for lists.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Pagination {
    /// Items per page (default 50, at most 1000).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl Pagination {
    pub fn page(&self) -> Result<Page, Error> {
        let limit = self.limit.unwrap_or(PAGE_LIMIT_DEFAULT);
        if !(1..=PAGE_LIMIT_MAX).contains(&limit) {
            return Err(Error::invalid(
                "limit",
                format!("must be between 1 and {PAGE_LIMIT_MAX}"),
            ));
        }
        let after = match &self.cursor {
            None => String::new(),
            Some(c) => base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(c)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| {
                    Error::invalid(
                        "cursor",
                        "is not a cursor this server gave; pass `next_cursor` as it came",
                    )
                })?,
        };
        Ok(Page { after, limit })
    }
}

pub fn cursor(next_after: Option<String>) -> Option<String> {
    next_after.map(|a| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(a))
}

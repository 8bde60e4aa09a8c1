//! Request extractors: the caller, strict JSON bodies, query strings and
//! path parameters (every refusal a 422 naming the field), pagination.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use base64::Engine as _;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::AppState;
use crate::Error;
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

pub fn bearer(parts: &Parts) -> Result<&str, Error> {
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
        let bytes = body_bytes(req, state).await?;
        // serde would take a struct from an array of its fields, in order.
        if bytes.trim_ascii_start().first() == Some(&b'[') {
            return Err(Error::invalid(
                "body",
                "must be a JSON object of this request's fields, not an array",
            ));
        }
        parse_json(&bytes).map(Body)
    }
}

/// The request body; over the route's limit is 413.
pub async fn body_bytes<S: Send + Sync>(
    req: Request,
    state: &S,
) -> Result<axum::body::Bytes, Error> {
    axum::body::Bytes::from_request(req, state)
        .await
        .map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                too_large()
            } else {
                Error::invalid("body", format!("could not be read: {e}"))
            }
        })
}

pub fn too_large() -> Error {
    Error::PayloadTooLarge(
        "the request body is over the size limit (1 MiB; policy uploads 8 MiB)".into(),
    )
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            let reason =
                format!("is not valid JSON ({inner}); send a JSON object of this request's fields");
            return Error::invalid("body", reason);
        }
        let message = inner.to_string();
        // serde_json ends its messages with where it was; the field says it better.
        let message = message
            .rsplit_once(" at line ")
            .map_or(message.as_str(), |(m, _)| m);
        refusal(&path, message, Source::Body)
    })
}

/// Query parameters parsed strictly: a value of the wrong type, or a
/// parameter the route does not take (`deny_unknown_fields`), is a 422
/// naming the parameter.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Query<T>, Error> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(Query)
            .map_err(|e| refusal(&e.path().to_string(), &e.inner().to_string(), Source::Query))
    }
}

/// Path parameters; one that does not parse (`versions/abc`) is a 422
/// naming the parameter.
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = Error;

    // The one place axum's own extractor is used: to turn its rejection
    // into a problem.
    #[allow(clippy::disallowed_types)]
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Path<T>, Error> {
        use axum::extract::path::ErrorKind;
        use axum::extract::rejection::PathRejection;
        let e = match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => return Ok(Path(value)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => e,
            Err(other) => return Err(Error::internal(other)),
        };
        Err(match e.into_kind() {
            ErrorKind::ParseErrorAtKey {
                key,
                value,
                expected_type,
            } => Error::invalid(
                &key,
                format!("must be {} (got `{value}`)", what_to_send(expected_type)),
            ),
            ErrorKind::ParseErrorAtIndex {
                index,
                value,
                expected_type,
            } => {
                // A tuple of parameters: the route's own names say which.
                let params = axum::extract::RawPathParams::from_request_parts(parts, state).await;
                let key = params
                    .ok()
                    .and_then(|p| p.iter().nth(index).map(|(k, _)| k.to_string()))
                    .unwrap_or_else(|| "path".into());
                Error::invalid(
                    &key,
                    format!("must be {} (got `{value}`)", what_to_send(expected_type)),
                )
            }
            ErrorKind::ParseError {
                value,
                expected_type,
            } => Error::invalid(
                "path",
                format!(
                    "has `{value}` where {} belongs",
                    what_to_send(expected_type)
                ),
            ),
            ErrorKind::InvalidUtf8InPathParam { key } => Error::invalid(&key, "must be UTF-8"),
            ErrorKind::DeserializeError {
                key,
                value,
                message,
            } => Error::invalid(&key, format!("cannot be `{value}`: {message}")),
            other => Error::internal(format!("path parameters of this route: {other}")),
        })
    }
}

/// Where a refused value came from, to word the reason.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    Body,
    Query,
}

/// A serde refusal at `path` as a 422 naming the field and saying what to
/// send instead of serde's own words.
fn refusal(path: &str, message: &str, source: Source) -> Error {
    let named = |prefix: &str| {
        message
            .strip_prefix(prefix)
            .and_then(|m| m.split_once('`'))
            .map(|(name, _)| field_at(path, name))
    };
    let (field, reason) = if let Some(field) = named("unknown field `") {
        let reason = match source {
            Source::Body => "is not a field of this request; remove it",
            Source::Query => "is not a parameter of this route; remove it",
        };
        (field, reason.to_string())
    } else if let Some(field) = named("missing field `") {
        (field, "is required".to_string())
    } else if let Some(field) = named("duplicate field `") {
        (field, "is given more than once; send it once".to_string())
    } else {
        let field = match (path, source) {
            (".", Source::Body) => "body".to_string(),
            (".", Source::Query) => "query".to_string(),
            _ => path.to_string(),
        };
        let reason = value_reason(&field, message, source);
        (field, reason)
    };
    Error::invalid(&field, reason)
}

/// `name` inside the object at `path` ("." is the top).
fn field_at(path: &str, name: &str) -> String {
    if path == "." {
        name.to_string()
    } else if path == name || path.ends_with(&format!(".{name}")) {
        path.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// Why a value was refused, and what to send instead.
fn value_reason(field: &str, message: &str, source: Source) -> String {
    if field == "body" {
        return format!("must be a JSON object of this request's fields ({message})");
    }
    // "invalid type: integer `150`, expected a Decimal ..."
    for prefix in ["invalid type: ", "invalid value: ", "invalid length "] {
        if let Some((got, expected)) = message
            .strip_prefix(prefix)
            .and_then(|m| m.split_once(", expected "))
        {
            return format!("must be {} (got {got})", what_to_send(expected));
        }
    }
    if let Some((got, expected)) = message
        .strip_prefix("unknown variant ")
        .and_then(|m| m.split_once(", expected "))
    {
        let expected = expected.trim_start_matches("one of ").replace('`', "");
        return format!("must be one of {expected} (got {got})");
    }
    if source == Source::Query {
        // A query string is text: a number or boolean that does not parse.
        if field == "limit" {
            return format!("must be an integer from 1 to {PAGE_LIMIT_MAX}");
        }
        if message.contains("integer") || message.contains("invalid digit") {
            return "must be an integer".into();
        }
        if message.contains("`true` or `false`") {
            return "must be true or false".into();
        }
    }
    message.to_string()
}

/// What to send for a type serde expected, in the API's words.
fn what_to_send(expected: &str) -> String {
    let is = |words: &[&str]| words.iter().any(|w| expected.contains(w));
    if is(&["Decimal"]) {
        "a decimal string such as \"150.00\"".into()
    } else if is(&["date and time", "DateTime", "RFC 3339"]) {
        "an RFC 3339 time such as \"2030-01-31T12:00:00Z\"".into()
    } else if is(&["bool"]) {
        "true or false".into()
    } else if is(&[
        "i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64", "usize", "isize", "integer",
    ]) {
        "an integer".into()
    } else if is(&["f32", "f64", "float"]) {
        "a number".into()
    } else if is(&["struct", "map"]) {
        "a JSON object".into()
    } else if is(&["sequence", "array", "tuple"]) {
        "an array".into()
    } else if is(&["string", "str"]) {
        "a string".into()
    } else {
        expected.to_string()
    }
}

/// `?limit=&cursor=&created_after=&created_before=` for lists, newest first.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Pagination {
    /// Items per page (default 50, at most 1000).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Only items created strictly after this time (RFC 3339).
    pub created_after: Option<chrono::DateTime<chrono::Utc>>,
    /// Only items created strictly before this time (RFC 3339).
    pub created_before: Option<chrono::DateTime<chrono::Utc>>,
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
        // `created_after` at or past `created_before` is a window with no
        // row in it: an empty page, as any other window that matches nothing.
        let bad_cursor = || {
            Error::invalid(
                "cursor",
                "is not a cursor this server gave; pass `next_cursor` as it came",
            )
        };
        let after = match &self.cursor {
            None => String::new(),
            // Any base64url text is a position (one the server did not give
            // only starts the page elsewhere), as the document's pattern says.
            Some(c) => base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(c)
                .ok()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .ok_or_else(bad_cursor)?,
        };
        Page::newest_first(
            after,
            limit,
            self.created_after.map(|t| t.timestamp_micros()),
            self.created_before.map(|t| t.timestamp_micros()),
        )
        .ok_or_else(bad_cursor)
    }
}

pub fn cursor(next_after: Option<String>) -> Option<String> {
    next_after.map(|a| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(a))
}

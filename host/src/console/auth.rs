//! Who is looking at the console, and proof that a form came from it.
//!
//! - The sign-in cookie `canopy_console` holds a user's session token or the
//!   operator's pass (`ops::signin`): HttpOnly, SameSite=Strict, path
//!   `/console`, `Secure` behind TLS.
//! - Every form carries a CSRF token: a MAC of the request's session cookie
//!   under a random per-browser seed (cookie `canopy_csrf`). A form posted
//!   without it, with another browser's, or from before a sign-in is 403.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use serde::de::DeserializeOwned;

use super::layout;
use crate::http::AppState;
use crate::ops::Principal;
use crate::secrets::{hashes_equal, hmac_sha256, new_secret};

pub const SIGN_IN_COOKIE: &str = "canopy_console";
pub const CSRF_COOKIE: &str = "canopy_csrf";
/// The form field every console form carries.
pub const CSRF_FIELD: &str = "csrf";
/// How long the browser keeps the sign-in cookie (the session or pass
/// behind it may end sooner).
const SIGN_IN_MAX_AGE_SECS: u64 = 12 * 3600;

/// A cookie of the request, by name.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

fn behind_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

fn set_cookie(headers: &HeaderMap, name: &str, value: &str, max_age_secs: u64) -> HeaderValue {
    let secure = if behind_tls(headers) { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The `Set-Cookie` that signs this browser in with `value`.
pub fn sign_in_cookie(request: &HeaderMap, value: &str) -> HeaderValue {
    set_cookie(request, SIGN_IN_COOKIE, value, SIGN_IN_MAX_AGE_SECS)
}

/// The `Set-Cookie` that forgets the sign-in.
pub fn sign_out_cookie(request: &HeaderMap) -> HeaderValue {
    set_cookie(request, SIGN_IN_COOKIE, "", 0)
}

/// This browser's CSRF seed: its cookie, or one made for this request (and
/// set on the response by [`csrf_seed`]).
#[derive(Clone)]
struct CsrfSeed(String);

/// Gives a browser without one a CSRF seed cookie.
pub async fn csrf_seed(mut req: Request, next: Next) -> Response {
    let existing = cookie(req.headers(), CSRF_COOKIE)
        .filter(|v| v.len() <= 128)
        .map(str::to_string);
    let made = existing.is_none();
    let seed = existing.unwrap_or_else(|| new_secret("csrf"));
    let set = made.then(|| set_cookie(req.headers(), CSRF_COOKIE, &seed, 30 * 24 * 3600));
    req.extensions_mut().insert(CsrfSeed(seed));
    let mut response = next.run(req).await;
    if let Some(set) = set {
        response.headers_mut().append(header::SET_COOKIE, set);
    }
    response
}

/// The CSRF token forms on this request's pages carry.
pub fn csrf_token(extensions: &axum::http::Extensions, headers: &HeaderMap) -> String {
    let seed = extensions.get::<CsrfSeed>().map_or("", |s| s.0.as_str());
    let session = cookie(headers, SIGN_IN_COOKIE).unwrap_or("");
    hex::encode(hmac_sha256(
        seed.as_bytes(),
        format!("console form\0{session}").as_bytes(),
    ))
}

/// A 403 page for a form that did not prove it came from this console.
pub fn forged() -> Response {
    layout::failure(
        axum::http::StatusCode::FORBIDDEN,
        "This form could not be accepted",
        "It did not carry this console's security token (it may be from an older page, another \
         browser, or another site). Reload the page and submit it again.",
    )
}

/// Who is signed in to the console. Pages that need one redirect to the
/// sign-in page without it.
#[derive(Clone)]
pub struct Viewer {
    pub principal: Principal,
    /// The CSRF token this viewer's forms carry.
    pub csrf: String,
    /// The session token, for a signed-in user (signing out ends it).
    pub session: Option<String>,
}

impl Viewer {
    pub fn is_operator(&self) -> bool {
        matches!(self.principal, Principal::Operator)
    }
}

/// A sign-in that is missing, expired or revoked: back to the sign-in page.
pub fn to_sign_in() -> Response {
    Redirect::to("/console/sign-in").into_response()
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Viewer, Response> {
        if let Some(v) = parts.extensions.get::<Viewer>() {
            return Ok(v.clone());
        }
        let value = cookie(&parts.headers, SIGN_IN_COOKIE).ok_or_else(to_sign_in)?;
        let (principal, session) = if let Some(p) = s.canopy.operator_from_pass(value) {
            (p, None)
        } else {
            match s.canopy.authenticate(value).await {
                // Only sessions: an API key is not a console sign-in.
                Ok(p @ Principal::User { key: None, .. }) => (p, Some(value.to_string())),
                Ok(_) | Err(crate::Error::Unauthenticated(_)) => return Err(to_sign_in()),
                Err(e) => return Err(super::Failure(e).into_response()),
            }
        };
        let viewer = Viewer {
            principal,
            csrf: csrf_token(&parts.extensions, &parts.headers),
            session,
        };
        parts.extensions.insert(viewer.clone());
        Ok(viewer)
    }
}

/// A URL-encoded form whose CSRF token was checked; `T` gets the other
/// fields. A form without the token is 403 before anything is read.
pub struct Form<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for Form<T> {
    type Rejection = Response;

    async fn from_request(req: Request, s: &AppState) -> Result<Form<T>, Response> {
        let expected = csrf_token(req.extensions(), req.headers());
        let bytes = crate::http::body_bytes(req, s)
            .await
            .map_err(|e| super::Failure(e).into_response())?;
        let mut token = None;
        let mut rest = form_urlencoded::Serializer::new(String::new());
        for (k, v) in form_urlencoded::parse(&bytes) {
            if k == CSRF_FIELD {
                token = Some(v.into_owned());
            } else {
                rest.append_pair(&k, &v);
            }
        }
        if !token.is_some_and(|t| hashes_equal(&t, &expected)) {
            return Err(forged());
        }
        serde_urlencoded::from_str(&rest.finish())
            .map(Form)
            .map_err(|e| {
                super::Failure(crate::Error::invalid("form", e.to_string())).into_response()
            })
    }
}

//! The web console at `/console`: HTML pages the host renders over the same
//! `ops` calls as the API, so policies decide in the console exactly as in
//! the API (a page never re-implements a rule). docs/CONSOLE.md describes
//! it for people; this is the map:
//!
//! - `auth`: the sign-in cookie, the viewer, CSRF-checked forms.
//! - `layout`: the page shell and navigation; `form`: fields and refusals.
//! - `home`: sign-in and sign-out, the account switcher, an account's
//!   overview.
//! - `assets`: the stylesheet and the vendored htmx, served by the host.
//! - `operator`: the operator's pages: parent accounts and their settings,
//!   platform policies and the hooks customers may use, the ledger check.
//! - `tree`: a parent admin's sub-accounts (status, budget or usage, lines
//!   and SIMs, the parent's pool), creating one, budget add/remove, and
//!   suspend/unsuspend/delete after a confirmation of the cascade.
//! - `usage`: usage per sub-account (or per day) as a host-drawn SVG chart
//!   with its table.
//! - `people`: an account's members and open invitations; `keys`: its API
//!   keys (a new secret shown once); `messages`: its messages as the API
//!   lists them to the viewer, and a send form.
//! - `policies`: a parent's own policies: per hook beside the platform's
//!   defaults, the Rhai editor and component upload, versions with shadow,
//!   enforce, rollback and delete, and the decision log.
//!
//! Every response carries [`layout::CSP`]: no inline script or style, no
//! origin but the host's own.

mod assets;
mod auth;
mod form;
mod home;
mod keys;
mod layout;
mod messages;
mod operator;
mod people;
mod policies;
mod tree;
mod usage;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};

use crate::Error;
use crate::http::AppState;

/// An error a page cannot show on its form: its own page (a lost sign-in
/// goes back to the sign-in page).
pub struct Failure(pub Error);

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure(e)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::BAD_REQUEST);
        let (title, detail) = match &self.0 {
            Error::Unauthenticated(_) => return auth::to_sign_in(),
            Error::Internal(cause) => {
                tracing::error!(%cause, "console: internal error");
                (
                    "Something failed",
                    "The server could not show this page; it was logged. Try again later."
                        .to_string(),
                )
            }
            Error::NotFound(_) => ("Not found", self.0.to_string()),
            Error::Forbidden(_) | Error::PolicyDenied(_) => ("Not allowed", self.0.to_string()),
            _ => ("Not done", self.0.to_string()),
        };
        layout::failure(status, title, &detail)
    }
}

pub type Page = Result<Response, Failure>;

/// Path parameters; one that does not parse is a page naming it.
pub struct Params<T>(pub T);

impl<T: serde::de::DeserializeOwned + Send> axum::extract::FromRequestParts<AppState>
    for Params<T>
{
    type Rejection = Failure;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        s: &AppState,
    ) -> Result<Params<T>, Failure> {
        crate::http::Path::<T>::from_request_parts(parts, s)
            .await
            .map(|crate::http::Path(v)| Params(v))
            .map_err(Failure)
    }
}

/// Query parameters; one that does not parse is a page naming it.
pub struct Query<T>(pub T);

impl<T: serde::de::DeserializeOwned + Send> axum::extract::FromRequestParts<AppState> for Query<T> {
    type Rejection = Failure;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        s: &AppState,
    ) -> Result<Query<T>, Failure> {
        crate::http::Query::<T>::from_request_parts(parts, s)
            .await
            .map(|crate::http::Query(v)| Query(v))
            .map_err(Failure)
    }
}

async fn headers(req: axum::extract::Request, next: middleware::Next) -> Response {
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(layout::CSP),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// The console's routes, under `/console`.
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(home::router())
        .merge(assets::router())
        .merge(operator::router())
        .merge(tree::router())
        .merge(usage::router())
        .merge(people::router())
        .merge(keys::router())
        .merge(messages::router())
        .merge(policies::router())
        .layer(middleware::from_fn(auth::csrf_seed))
        .layer(middleware::from_fn(headers))
}

//! The console's static files, compiled into the binary: its stylesheet and
//! htmx 2 (0BSD, vendored from the npm package `htmx.org`; see
//! host/assets/console/README.md).

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::http::AppState;

const CSS: &str = include_str!("../../assets/console/console.css");
const HTMX: &str = include_str!("../../assets/console/htmx.min.js");

fn asset(kind: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/console/assets/console.css",
            get(|| async { asset("text/css; charset=utf-8", CSS) }),
        )
        .route(
            "/console/assets/htmx.min.js",
            get(|| async { asset("text/javascript; charset=utf-8", HTMX) }),
        )
}

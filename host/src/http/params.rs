//! Query parameters a route does not take are refused, on every route (a
//! 422 naming each, as for unknown body fields), including routes that take
//! none at all. Which names each route takes comes from the OpenAPI
//! document generated from the handlers, so the documentation and the
//! check cannot disagree.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::OpenApi;
use utoipa::openapi::path::{Operation, ParameterIn};

use crate::Error;
use crate::error::FieldError;

/// The query parameters of each documented route, by method and template.
#[derive(Debug, Default)]
pub struct KnownQueries(HashMap<(Method, String), HashSet<String>>);

impl KnownQueries {
    pub fn from_openapi(doc: &OpenApi) -> KnownQueries {
        let mut known = HashMap::new();
        for (path, item) in &doc.paths.paths {
            let operations = [
                (Method::GET, &item.get),
                (Method::POST, &item.post),
                (Method::PUT, &item.put),
                (Method::PATCH, &item.patch),
                (Method::DELETE, &item.delete),
            ];
            for (method, operation) in operations {
                if let Some(operation) = operation {
                    known.insert((method, path.clone()), query_names(operation));
                }
            }
        }
        KnownQueries(known)
    }
}

fn query_names(operation: &Operation) -> HashSet<String> {
    operation
        .parameters
        .iter()
        .flatten()
        .filter(|p| matches!(p.parameter_in, ParameterIn::Query))
        .map(|p| p.name.clone())
        .collect()
}

pub async fn layer(State(known): State<Arc<KnownQueries>>, req: Request, next: Next) -> Response {
    let (Some(query), Some(route)) = (req.uri().query(), req.extensions().get::<MatchedPath>())
    else {
        return next.run(req).await;
    };
    let Some(allowed) = known
        .0
        .get(&(req.method().clone(), route.as_str().to_string()))
    else {
        return next.run(req).await;
    };
    let mut errors: Vec<FieldError> = Vec::new();
    for (name, _) in form_urlencoded::parse(query.as_bytes()) {
        if !allowed.contains(name.as_ref()) && !errors.iter().any(|e| e.field == name) {
            errors.push(FieldError::new(
                name.as_ref(),
                "is not a parameter of this route; remove it",
            ));
        }
    }
    if errors.is_empty() {
        return next.run(req).await;
    }
    let names: Vec<String> = errors.iter().map(|e| format!("`{}`", e.field)).collect();
    Error::Validation {
        detail: format!(
            "{} {} not a parameter of this route; remove {}",
            names.join(", "),
            if names.len() == 1 { "is" } else { "are" },
            if names.len() == 1 { "it" } else { "them" },
        ),
        errors,
        policy: None,
    }
    .into_response()
}

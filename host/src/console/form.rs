//! Forms: fields with their labels and the refusal that names them, and
//! the problems of a refused submission.

use axum::http::StatusCode;
use maud::{Markup, html};

use crate::Error;
use crate::error::FieldError;

/// What a refused submission shows: a summary, and each field's reason
/// beside the field.
#[derive(Debug, Default, Clone)]
pub struct Problems {
    pub status: Option<StatusCode>,
    pub summary: Option<String>,
    pub fields: Vec<FieldError>,
}

impl Problems {
    /// The problems of a refusal a person can fix on the form; `Err` for
    /// one they cannot (a lost sign-in, a missing account, a failure),
    /// which gets its own page.
    pub fn of(e: Error) -> Result<Problems, super::Failure> {
        match &e {
            Error::Unauthenticated(_) | Error::NotFound(_) | Error::Internal(_) => {
                Err(super::Failure(e))
            }
            _ => {
                let status =
                    StatusCode::from_u16(e.status()).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
                let fields = match &e {
                    Error::Validation { errors, .. } => errors.clone(),
                    _ => Vec::new(),
                };
                let policy = e.policy().map(|p| format!(" (policy {})", p.name));
                Ok(Problems {
                    status: Some(status),
                    summary: Some(format!("{e}{}", policy.unwrap_or_default())),
                    fields,
                })
            }
        }
    }

    pub fn status(&self) -> StatusCode {
        self.status.unwrap_or(StatusCode::OK)
    }

    /// The reason given for `field`, if any.
    pub fn on(&self, field: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|f| f.field == field || f.field.starts_with(&format!("{field}.")))
            .map(|f| f.reason.as_str())
    }

    /// The summary at the top of a refused form.
    pub fn summary(&self) -> Markup {
        html! {
            @if let Some(summary) = &self.summary {
                div.problem role="alert" {
                    p { strong { "Not done: " } (summary) }
                    @if !self.fields.is_empty() {
                        ul { @for f in &self.fields { li { code { (f.field) } ": " (f.reason) } } }
                    }
                }
            }
        }
    }
}

/// One labelled input with its refusal, if any. `kind` is the input type.
pub fn field(
    name: &str,
    label: &str,
    kind: &str,
    value: &str,
    problems: &Problems,
    hint: Option<&str>,
) -> Markup {
    let id = format!("f-{name}");
    let error_id = format!("{id}-error");
    let hint_id = format!("{id}-hint");
    let problem = problems.on(name);
    let described = [
        hint.map(|_| hint_id.clone()),
        problem.map(|_| error_id.clone()),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ");
    html! {
        div.field {
            label for=(id) { (label) }
            @if let Some(hint) = hint { span.hint id=(hint_id) { (hint) } }
            input id=(id) name=(name) type=(kind) value=(value)
                aria-invalid=[problem.map(|_| "true")]
                aria-describedby=[(!described.is_empty()).then_some(described.as_str())];
            @if let Some(reason) = problem {
                span.field-error id=(error_id) { (reason) }
            }
        }
    }
}

/// A labelled choice between `options` (value, label).
pub fn select(
    name: &str,
    label: &str,
    options: &[(&str, &str)],
    chosen: &str,
    problems: &Problems,
) -> Markup {
    let id = format!("f-{name}");
    let error_id = format!("{id}-error");
    let problem = problems.on(name);
    html! {
        div.field {
            label for=(id) { (label) }
            select id=(id) name=(name) aria-invalid=[problem.map(|_| "true")]
                aria-describedby=[problem.map(|_| error_id.as_str())] {
                @for (value, text) in options {
                    option value=(value) selected[*value == chosen] { (text) }
                }
            }
            @if let Some(reason) = problem { span.field-error id=(error_id) { (reason) } }
        }
    }
}

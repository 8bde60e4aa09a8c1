//! A policy upload in any of its three forms (docs/POLICIES.md "Uploading,
//! versions, shadow mode"):
//!
//! - `application/json` (or no content type, as `curl -d` sends): the
//!   [`Upload`] document, a component base64 in `module`;
//! - `multipart/form-data`: fields `name`, `hook`, `runtime` (optional), and
//!   the policy as a file in `module` (component bytes) or `source` (Rhai);
//! - `application/wasm`: the component's bytes as the body, `name` and
//!   `hook` in the query string.
//!
//! Each becomes the same [`Upload`] for `ops::policies`, so every form is
//! checked, compiled and stored alike.

use axum::extract::{FromRequest, FromRequestParts, Multipart, Request};
use axum::http::header::CONTENT_TYPE;
use base64::Engine as _;
use serde::Deserialize;

use super::extract::{Body, Query, body_bytes, too_large};
use crate::Error;
use crate::ops::policies::Upload;

/// Largest text field (`name`, `hook`, `runtime`) of a multipart upload.
const FORM_TEXT_BYTES_MAX: usize = 1024;

pub struct PolicyUpload(pub Upload);

/// The query string of an `application/wasm` upload.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RawUploadQuery {
    /// With `Content-Type: application/wasm` (and then required): the
    /// policy's name (uploading again under it adds a version).
    pub name: Option<String>,
    /// With `Content-Type: application/wasm` (and then required): the hook.
    pub hook: Option<String>,
}

/// The `application/wasm` body: the component's bytes.
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct ComponentBytes(pub axum::body::Bytes);

/// The `multipart/form-data` form of an upload.
#[derive(Debug, Default, utoipa::ToSchema)]
pub struct UploadForm {
    /// Uploading again under the same name adds the next version.
    pub name: Option<String>,
    #[schema(example = "subaccount.validate")]
    pub hook: Option<String>,
    /// `rhai` or `wasm`; default: `wasm` for a `module`, `rhai` for a `source`.
    pub runtime: Option<String>,
    /// The Wasm component's bytes (a file part, not base64).
    #[schema(value_type = Option<String>, format = Binary)]
    pub module: Option<Vec<u8>>,
    /// The Rhai script (a file or text part).
    pub source: Option<String>,
}

impl<S: Send + Sync> FromRequest<S> for PolicyUpload {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<PolicyUpload, Error> {
        let media = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase())
            .unwrap_or_default();
        match media.as_str() {
            "application/wasm" => raw(req, state).await.map(PolicyUpload),
            "multipart/form-data" => {
                let form = Multipart::from_request(req, state).await.map_err(|e| {
                    Error::invalid("body", format!("is not multipart/form-data: {e}"))
                })?;
                from_multipart(form).await.map(PolicyUpload)
            }
            _ => Body::<Upload>::from_request(req, state)
                .await
                .map(|Body(u)| PolicyUpload(u)),
        }
    }
}

async fn raw<S: Send + Sync>(req: Request, state: &S) -> Result<Upload, Error> {
    let (mut parts, body) = req.into_parts();
    let Query(q) = Query::<RawUploadQuery>::from_request_parts(&mut parts, state).await?;
    let missing = |field: &str| {
        Error::invalid(
            field,
            "is missing: an application/wasm upload gives `name` and `hook` in the query string (`?name=...&hook=...`)",
        )
    };
    let name = q.name.ok_or_else(|| missing("name"))?;
    let hook = q.hook.ok_or_else(|| missing("hook"))?;
    let component = ComponentBytes(body_bytes(Request::from_parts(parts, body), state).await?);
    Ok(Upload {
        name,
        hook,
        runtime: "wasm".into(),
        source: None,
        module: Some(base64::engine::general_purpose::STANDARD.encode(&component.0)),
    })
}

/// The upload a multipart form carries, from its next field on (the
/// console reads its CSRF field first, then hands over the rest).
pub(crate) async fn from_multipart(form: Multipart) -> Result<Upload, Error> {
    read_form(form).await?.into_upload()
}

async fn read_form(mut form: Multipart) -> Result<UploadForm, Error> {
    let mut out = UploadForm::default();
    loop {
        let field = form.next_field().await.map_err(multipart_error)?;
        let Some(field) = field else {
            return Ok(out);
        };
        let name = field.name().unwrap_or_default().to_string();
        let bytes = field.bytes().await.map_err(multipart_error)?;
        let slot_taken = match name.as_str() {
            "name" => out.name.replace(text(&name, &bytes, true)?).is_some(),
            "hook" => out.hook.replace(text(&name, &bytes, true)?).is_some(),
            "runtime" => out.runtime.replace(text(&name, &bytes, true)?).is_some(),
            "source" => out.source.replace(text(&name, &bytes, false)?).is_some(),
            "module" => out.module.replace(bytes.to_vec()).is_some(),
            _ => {
                return Err(Error::invalid(
                    &name,
                    "is not a field of a policy upload: send `name`, `hook`, `runtime` (optional) and the policy as `module` (a Wasm component file) or `source` (a Rhai script)",
                ));
            }
        };
        if slot_taken {
            return Err(Error::invalid(&name, "is given twice; send it once"));
        }
    }
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> Error {
    if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        too_large()
    } else {
        Error::invalid("body", format!("is not valid multipart/form-data: {e}"))
    }
}

fn text(field: &str, bytes: &[u8], short: bool) -> Result<String, Error> {
    if short && bytes.len() > FORM_TEXT_BYTES_MAX {
        return Err(Error::invalid(
            field,
            format!("must be at most {FORM_TEXT_BYTES_MAX} bytes"),
        ));
    }
    String::from_utf8(bytes.to_vec()).map_err(|_| Error::invalid(field, "must be UTF-8 text"))
}

impl UploadForm {
    fn into_upload(self) -> Result<Upload, Error> {
        let missing =
            |field: &str| Error::invalid(field, format!("is missing: add a form field `{field}`"));
        let runtime = match (&self.runtime, &self.module, &self.source) {
            (Some(r), _, _) => r.clone(),
            (None, Some(_), None) => "wasm".into(),
            (None, None, Some(_)) => "rhai".into(),
            (None, Some(_), Some(_)) => {
                return Err(Error::invalid(
                    "source",
                    "and `module` are both given: send the policy in one of them",
                ));
            }
            (None, None, None) => {
                return Err(Error::invalid(
                    "module",
                    "is missing: send the policy as a file in `module` (a Wasm component) or `source` (a Rhai script)",
                ));
            }
        };
        Ok(Upload {
            name: self.name.ok_or_else(|| missing("name"))?,
            hook: self.hook.ok_or_else(|| missing("hook"))?,
            runtime,
            source: self.source,
            module: self
                .module
                .map(|bytes| base64::engine::general_purpose::STANDARD.encode(bytes)),
        })
    }
}

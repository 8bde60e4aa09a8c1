//! The web console over plain HTTP: a client that keeps its cookies, reads
//! each form's CSRF token from the page, and posts forms as a browser does.

use serde_json::json;

use crate::{Parent, TestApp};

/// The password test users are given when they accept an invitation.
pub const PASSWORD: &str = "correct horse battery";

/// One browser's worth of console cookies.
pub struct Console {
    pub base: String,
    http: reqwest::Client,
}

/// A console page as fetched: status, final address, HTML.
#[derive(Debug)]
pub struct Fetched {
    pub status: u16,
    pub url: String,
    pub html: String,
}

impl Fetched {
    /// The CSRF token of the page's first form.
    pub fn csrf(&self) -> String {
        csrf_of(&self.html).unwrap_or_else(|| panic!("a form with a CSRF token: {}", self.html))
    }
}

/// The value of the first `name="csrf"` input in `html`.
pub fn csrf_of(html: &str) -> Option<String> {
    let at = html.find("name=\"csrf\"")?;
    let rest = &html[at..];
    let value = rest.find("value=\"")? + "value=\"".len();
    let end = rest[value..].find('"')?;
    Some(rest[value..value + end].to_string())
}

impl Console {
    pub fn new(app: &TestApp) -> Console {
        Console {
            base: app.base.clone(),
            http: reqwest::Client::builder()
                .cookie_store(true)
                .build()
                .unwrap(),
        }
    }

    async fn fetched(response: reqwest::Response) -> Fetched {
        Fetched {
            status: response.status().as_u16(),
            url: response.url().to_string(),
            html: response.text().await.unwrap(),
        }
    }

    pub async fn get(&self, path: &str) -> Fetched {
        Self::fetched(
            self.http
                .get(format!("{}{path}", self.base))
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// Posts `fields` to `path` as a URL-encoded form, as given (no token
    /// is added).
    pub async fn post_raw(&self, path: &str, fields: &[(&str, &str)]) -> Fetched {
        Self::fetched(
            self.http
                .post(format!("{}{path}", self.base))
                .form(fields)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// Posts a form from the page at `page`, with that page's CSRF token.
    pub async fn post(&self, page: &str, path: &str, fields: &[(&str, &str)]) -> Fetched {
        let csrf = self.get(page).await.csrf();
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(path, &all).await
    }

    /// Signs in as the operator.
    pub async fn operator(app: &TestApp) -> Console {
        let console = Console::new(app);
        let page = console
            .post(
                "/console/sign-in",
                "/console/sign-in/operator",
                &[("token", &app.operator_token)],
            )
            .await;
        assert!(
            page.url.ends_with("/console/operator"),
            "the operator signs in: {} {}",
            page.url,
            page.html
        );
        console
    }

    /// Signs in as a user.
    pub async fn user(app: &TestApp, email: &str, password: &str) -> Console {
        let console = Console::new(app);
        let page = console
            .post(
                "/console/sign-in",
                "/console/sign-in",
                &[("email", email), ("password", password)],
            )
            .await;
        assert_eq!(page.status, 200, "{email} signs in: {}", page.html);
        assert!(
            !page.url.ends_with("/console/sign-in"),
            "{email} signs in: {}",
            page.html
        );
        console
    }
}

/// The parent's admin accepts its invitation with [`PASSWORD`]; returns
/// the admin's e-mail.
pub async fn admin_of(app: &TestApp, parent: &Parent, domain: &str) -> String {
    app.accept(&parent.invitation, "Parent Admin", PASSWORD)
        .await;
    format!("admin@{domain}")
}

/// Invites `email` into `account` with `role` and accepts with
/// [`PASSWORD`].
pub async fn user_in(app: &TestApp, inviter_key: &str, account: &str, email: &str, role: &str) {
    let body = app
        .post(
            &format!("/v1/accounts/{account}/members"),
            inviter_key,
            json!({"email": email, "role": role}),
        )
        .await
        .expect(201);
    app.accept(
        body["invitation"]["token"].as_str().unwrap(),
        "Member",
        PASSWORD,
    )
    .await;
}

/// A `multipart/form-data` body of `(field, file name, bytes)` parts, as a
/// browser sends a form with a file; returns its content type and body.
pub fn multipart(parts: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    const BOUNDARY: &str = "console-form-boundary";
    let mut body = Vec::new();
    for (name, file, bytes) in parts {
        let head = match file {
            None => {
                format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n")
            }
            Some(file) => format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{file}\"\r\nContent-Type: application/wasm\r\n\r\n"
            ),
        };
        body.extend(head.into_bytes());
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend(format!("--{BOUNDARY}--\r\n").into_bytes());
    (format!("multipart/form-data; boundary={BOUNDARY}"), body)
}

impl Console {
    /// Posts `body` of `content_type` to `path`, as given (a multipart form
    /// carries its token as a field of its own).
    pub async fn post_body(&self, path: &str, content_type: &str, body: Vec<u8>) -> Fetched {
        Self::fetched(
            self.http
                .post(format!("{}{path}", self.base))
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }
}

//! Identity (invariant 6): an invitation token proves nothing about an
//! e-mail, so nobody reaches an account through an invitation that someone
//! else's credentials were set by. Every takeover variant found by trying
//! the product as an attacker is here, on both backends.

use std::time::Duration;

use canopy_e2e::{Backend, Options, Parent, TestApp, fake_smtp, spawn_app_with};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedReceiver;

type Inbox = UnboundedReceiver<(Vec<String>, String)>;

const ATTACKER_PASSWORD: &str = "attacker chose this";
const OWNER_PASSWORD: &str = "the real owner's one";

async fn app_with_mail(backend: Backend) -> (TestApp, Inbox) {
    let (smtp_url, inbox) = fake_smtp().await;
    let app = spawn_app_with(
        backend,
        Options {
            smtp_url: Some(smtp_url),
            ..Options::default()
        },
    )
    .await;
    (app, inbox)
}

async fn accept_raw(
    app: &TestApp,
    token: &str,
    password: &str,
    auth: Option<&str>,
) -> canopy_e2e::Reply {
    app.request(
        Method::POST,
        "/v1/invitations/accept",
        auth,
        Some(json!({"token": token, "name": "Someone", "password": password})),
    )
    .await
}

async fn login(app: &TestApp, email: &str, password: &str) -> canopy_e2e::Reply {
    app.request(
        Method::POST,
        "/v1/sessions",
        None,
        Some(json!({"email": email, "password": password})),
    )
    .await
}

async fn session(app: &TestApp, email: &str, password: &str) -> String {
    login(app, email, password).await.expect(201)["token"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn invite(app: &TestApp, key: &str, account: &str, email: &str, role: &str) -> String {
    app.post(
        &format!("/v1/accounts/{account}/members"),
        key,
        json!({"email": email, "role": role}),
    )
    .await
    .expect(201)["invitation"]["token"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Asks for a password reset and returns the token mailed to `email`.
async fn reset_token(app: &TestApp, inbox: &mut Inbox, email: &str) -> String {
    app.request(
        Method::POST,
        "/v1/password-resets",
        None,
        Some(json!({"email": email})),
    )
    .await
    .expect(202);
    let (to, text) = tokio::time::timeout(Duration::from_secs(15), inbox.recv())
        .await
        .expect("the reset is mailed")
        .expect("inbox open");
    assert_eq!(to, vec![email.to_string()], "mailed to the e-mail itself");
    let start = text.find("cpr_").expect("the mail carries a token");
    text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect()
}

async fn confirm_reset(app: &TestApp, token: &str, password: &str) -> Value {
    app.request(
        Method::POST,
        "/v1/password-resets/confirm",
        None,
        Some(json!({"token": token, "password": password})),
    )
    .await
    .expect(200)
}

/// Tree A's admin invites tree B's admin's e-mail into A and tries to set
/// its password by accepting: refused whether or not B's admin has a
/// password yet, and B's admin keeps signing in.
async fn cross_tree_invitation_cannot_take_over_another_admin(app: TestApp) {
    let a = app.parent("a.example", "enterprise").await;
    let b = app.parent("b.example", "enterprise").await;
    // B's admin has not set a password yet: an invitation from A cannot.
    let token = invite(&app, &a.key, &a.id, "admin@b.example", "basic").await;
    accept_raw(&app, &token, ATTACKER_PASSWORD, None)
        .await
        .expect_problem(401, "unauthenticated");
    login(&app, "admin@b.example", ATTACKER_PASSWORD)
        .await
        .expect_problem(401, "unauthenticated");
    // B's admin sets theirs through B's own invitation.
    app.accept(&b.invitation, "B Admin", OWNER_PASSWORD).await;
    let token = invite(&app, &a.key, &a.id, "admin@b.example", "basic").await;
    accept_raw(&app, &token, ATTACKER_PASSWORD, None)
        .await
        .expect_problem(401, "unauthenticated");
    // A's own key proves nothing about B's admin either.
    accept_raw(&app, &token, ATTACKER_PASSWORD, Some(&a.key))
        .await
        .expect_problem(401, "unauthenticated");
    login(&app, "admin@b.example", ATTACKER_PASSWORD)
        .await
        .expect_problem(401, "unauthenticated");
    let owner = session(&app, "admin@b.example", OWNER_PASSWORD).await;
    app.post(
        &format!("/v1/accounts/{}/api-keys", b.id),
        &owner,
        json!({"name": "mine"}),
    )
    .await
    .expect(201);
    // The failed attempts left the invitation unused: nothing was granted.
    let members = app
        .get(&format!("/v1/accounts/{}/members", a.id), &a.key)
        .await
        .expect(200);
    assert!(
        !members.to_string().contains("admin@b.example"),
        "{members}"
    );
}

/// Accepting with someone's password is no faster a way to guess it than
/// signing in: after a few wrong ones, attempts back off (429).
async fn acceptance_is_no_password_oracle(app: TestApp) {
    let a = app.parent("a.example", "enterprise").await;
    let b = app.parent("b.example", "enterprise").await;
    app.accept(&b.invitation, "B Admin", OWNER_PASSWORD).await;
    let token = invite(&app, &a.key, &a.id, "admin@b.example", "basic").await;
    let mut statuses = Vec::new();
    for i in 0..8 {
        let guess = format!("guess number {i}");
        statuses.push(accept_raw(&app, &token, &guess, None).await.status.as_u16());
    }
    assert_eq!(statuses[0], 401, "{statuses:?}");
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 429),
        "{statuses:?}"
    );
}

/// A sub-account's admin invites its own parent's admin into the
/// sub-account: refused the same way.
async fn subaccount_admin_cannot_take_over_its_parent_admin(app: TestApp) {
    let parent = app.parent("p.example", "enterprise").await;
    app.accept(&parent.invitation, "Parent Admin", OWNER_PASSWORD)
        .await;
    let sub = app.sub(&parent, "Team", "team@p.example").await;
    let sub_key = app
        .accept(
            sub.invitation.as_deref().unwrap(),
            "Team Admin",
            "team admin pw",
        )
        .await;
    let token = invite(&app, &sub_key, &sub.id, "admin@p.example", "basic").await;
    accept_raw(&app, &token, ATTACKER_PASSWORD, None)
        .await
        .expect_problem(401, "unauthenticated");
    login(&app, "admin@p.example", ATTACKER_PASSWORD)
        .await
        .expect_problem(401, "unauthenticated");
    session(&app, "admin@p.example", OWNER_PASSWORD).await;
}

/// Pre-registration: tree A invites an e-mail before the operator makes it
/// a new parent's admin, and sets its password. The new parent's
/// membership waits for a verified acceptance, so the attacker's password
/// never opens it; the real admin proves the e-mail by a mailed reset,
/// which also ends the attacker's sessions, and then accepts.
async fn pre_registered_email_does_not_open_a_later_parent(app: TestApp, mut inbox: Inbox) {
    let a = app.parent("a.example", "enterprise").await;
    let token = invite(&app, &a.key, &a.id, "ceo@newco.example", "basic").await;
    // Nobody had this e-mail: the invitation creates the user.
    accept_raw(&app, &token, ATTACKER_PASSWORD, None)
        .await
        .expect(200);
    let attacker = session(&app, "ceo@newco.example", ATTACKER_PASSWORD).await;

    let newco = app
        .op_post(
            "/v1/operator/accounts",
            json!({"name": "NewCo", "company_name": "NewCo Ltd", "email": "billing@newco.example",
                   "billing_type": "prepaid", "currency": "USD", "prices": {"sms": "0.01"},
                   "admin": {"email": "ceo@newco.example", "name": "CEO"}}),
        )
        .await
        .expect(201);
    let newco_id = newco["account"]["id"].as_str().unwrap().to_string();
    let newco_key = newco["api_key"]["secret"].as_str().unwrap().to_string();
    let newco_invitation = newco["invitation"]["token"].as_str().unwrap().to_string();

    // The attacker's session does not reach the new parent.
    app.get(&format!("/v1/accounts/{newco_id}"), &attacker)
        .await
        .expect_problem(404, "not_found");
    app.post(
        &format!("/v1/accounts/{newco_id}/api-keys"),
        &attacker,
        json!({"name": "takeover"}),
    )
    .await
    .expect_problem(404, "not_found");
    // The key the operator handed over works.
    app.get(&format!("/v1/accounts/{newco_id}"), &newco_key)
        .await
        .expect(200);
    // The real admin cannot accept with a password of their own: the user
    // exists, and someone else's password is on it.
    accept_raw(&app, &newco_invitation, OWNER_PASSWORD, None)
        .await
        .expect_problem(401, "unauthenticated");
    // Nor can the attacker, who knows that password: the user is not
    // verified, and a membership created later waits for a verified one.
    accept_raw(&app, &newco_invitation, ATTACKER_PASSWORD, None)
        .await
        .expect_problem(403, "forbidden");

    // The real admin proves the e-mail through the mailed reset.
    let reset = reset_token(&app, &mut inbox, "ceo@newco.example").await;
    let done = confirm_reset(&app, &reset, OWNER_PASSWORD).await;
    assert_eq!(done["user"]["verified"], true, "{done}");
    // A token works once.
    app.request(
        Method::POST,
        "/v1/password-resets/confirm",
        None,
        Some(json!({"token": reset, "password": "another password"})),
    )
    .await
    .expect_problem(410, "invitation_expired");
    // The attacker's session and password are gone.
    app.get(&format!("/v1/accounts/{}", a.id), &attacker)
        .await
        .expect_problem(401, "unauthenticated");
    login(&app, "ceo@newco.example", ATTACKER_PASSWORD)
        .await
        .expect_problem(401, "unauthenticated");
    // Now the verified owner accepts, and their session reaches the parent.
    accept_raw(&app, &newco_invitation, OWNER_PASSWORD, None)
        .await
        .expect(200);
    let owner = session(&app, "ceo@newco.example", OWNER_PASSWORD).await;
    app.get(&format!("/v1/accounts/{newco_id}"), &owner)
        .await
        .expect(200);
}

/// A verified user joins a second account with their session as proof; a
/// reset for an unknown e-mail answers the same and mails nothing.
async fn verified_user_accepts_with_their_session(app: TestApp, mut inbox: Inbox) {
    let a = app.parent("a.example", "enterprise").await;
    let b: Parent = app.parent("b.example", "enterprise").await;
    app.accept(&a.invitation, "A Admin", OWNER_PASSWORD).await;
    app.request(
        Method::POST,
        "/v1/password-resets",
        None,
        Some(json!({"email": "nobody@nowhere.example"})),
    )
    .await
    .expect(202);
    let reset = reset_token(&app, &mut inbox, "admin@a.example").await;
    confirm_reset(&app, &reset, OWNER_PASSWORD).await;
    let own = session(&app, "admin@a.example", OWNER_PASSWORD).await;
    let token = invite(&app, &b.key, &b.id, "admin@a.example", "advanced").await;
    // Someone else's session is refused as proof.
    accept_raw(&app, &token, "", Some(&b.key))
        .await
        .expect_problem(401, "unauthenticated");
    let joined = app
        .request(
            Method::POST,
            "/v1/invitations/accept",
            Some(&own),
            Some(json!({"token": token})),
        )
        .await
        .expect(200);
    assert_eq!(joined["role"], "advanced", "{joined}");
    app.get(&format!("/v1/accounts/{}", b.id), &own)
        .await
        .expect(200);

    // The operator makes the verified user the admin of a new parent: the
    // first admin key it hands out acts as that user, but does not prove
    // who they are, so it cannot accept in their name.
    let newco = app
        .op_post(
            "/v1/operator/accounts",
            json!({"name": "NewCo", "company_name": "NewCo Ltd", "email": "billing@newco.example",
                   "billing_type": "prepaid", "currency": "USD", "prices": {"sms": "0.01"},
                   "admin": {"email": "admin@a.example", "name": "A Admin"}}),
        )
        .await
        .expect(201);
    let handed_out = newco["api_key"]["secret"].as_str().unwrap();
    let invitation = newco["invitation"]["token"].as_str().unwrap();
    app.request(
        Method::POST,
        "/v1/invitations/accept",
        Some(handed_out),
        Some(json!({"token": invitation})),
    )
    .await
    .expect_problem(401, "unauthenticated");
    app.request(
        Method::POST,
        "/v1/invitations/accept",
        Some(&own),
        Some(json!({"token": invitation})),
    )
    .await
    .expect(200);

    // One reset ends every other reset token mailed for the user.
    let first = reset_token(&app, &mut inbox, "admin@a.example").await;
    let second = reset_token(&app, &mut inbox, "admin@a.example").await;
    confirm_reset(&app, &second, "a newer password").await;
    app.request(
        Method::POST,
        "/v1/password-resets/confirm",
        None,
        Some(json!({"token": first, "password": "an older password"})),
    )
    .await
    .expect_problem(410, "invitation_expired");
}

/// An invitation sets credentials only for a user who belongs to nothing
/// else: the first admin of two new parents sets a password by neither
/// invitation, and proves the e-mail instead.
async fn credentials_are_set_only_for_a_user_with_nothing_else(app: TestApp) {
    let first = app.parent("one.example", "enterprise").await;
    let second = app
        .op_post(
            "/v1/operator/accounts",
            json!({"name": "Two", "company_name": "Two Ltd", "email": "billing@two.example",
                   "billing_type": "prepaid", "currency": "USD", "prices": {"sms": "0.01"},
                   "admin": {"email": "admin@one.example", "name": "Admin"}}),
        )
        .await
        .expect(201);
    accept_raw(&app, &first.invitation, OWNER_PASSWORD, None)
        .await
        .expect_problem(401, "unauthenticated");
    accept_raw(
        &app,
        second["invitation"]["token"].as_str().unwrap(),
        OWNER_PASSWORD,
        None,
    )
    .await
    .expect_problem(401, "unauthenticated");
    login(&app, "admin@one.example", OWNER_PASSWORD)
        .await
        .expect_problem(401, "unauthenticated");
}

/// One user, two accounts: an existing user joins a second account with
/// their password once they proved their e-mail, and a session reaches
/// both.
async fn an_existing_user_joins_another_account_with_their_password(
    app: TestApp,
    mut inbox: Inbox,
) {
    let parent = app.parent("acme.example", "enterprise").await;
    let first = invite(
        &app,
        &parent.key,
        &parent.id,
        "pat@acme.example",
        "advanced",
    )
    .await;
    app.accept(&first, "Pat", "pats password 1").await;
    let sub = app.sub(&parent, "Team", "team@acme.example").await;
    let token = invite(&app, &parent.key, &sub.id, "PAT@acme.example", "basic").await;
    accept_raw(&app, &token, "not pats password", None)
        .await
        .expect_problem(401, "unauthenticated");
    // The right password, but nobody proved the e-mail yet.
    accept_raw(&app, &token, "pats password 1", None)
        .await
        .expect_problem(403, "forbidden");
    let reset = reset_token(&app, &mut inbox, "pat@acme.example").await;
    confirm_reset(&app, &reset, "pats password 2").await;
    let key = app.accept(&token, "Pat", "pats password 2").await;
    app.get(&format!("/v1/accounts/{}", sub.id), &key)
        .await
        .expect(200);
    let own = session(&app, "pat@acme.example", "pats password 2").await;
    app.get(&format!("/v1/accounts/{}", parent.id), &own)
        .await
        .expect(200);
    app.get(&format!("/v1/accounts/{}", sub.id), &own)
        .await
        .expect(200);
    login(&app, "pat@acme.example", "pats password 1")
        .await
        .expect_problem(401, "unauthenticated");
}

macro_rules! with_mail {
    ($($name:ident),*) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let (app, inbox) = super::app_with_mail(super::Backend::Sqlite).await;
                super::$name(app, inbox).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let (app, inbox) = super::app_with_mail(super::Backend::Postgres).await;
                super::$name(app, inbox).await
            }
        }
    )*};
}

macro_rules! plain {
    ($($name:ident),*) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(canopy_e2e::spawn_app(super::Backend::Sqlite).await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(canopy_e2e::spawn_app(super::Backend::Postgres).await).await
            }
        }
    )*};
}

plain!(
    acceptance_is_no_password_oracle,
    credentials_are_set_only_for_a_user_with_nothing_else,
    cross_tree_invitation_cannot_take_over_another_admin,
    subaccount_admin_cannot_take_over_its_parent_admin
);
with_mail!(
    an_existing_user_joins_another_account_with_their_password,
    pre_registered_email_does_not_open_a_later_parent,
    verified_user_accepts_with_their_session
);

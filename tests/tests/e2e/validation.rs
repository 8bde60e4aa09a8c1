//! Input that must be refused before it reaches the ledger or the tree:
//! money text checked against its currency and bounded, balances that
//! cannot overflow, ISO 4217 currencies, E.164 recipients, invisible
//! characters in names, look-alike free-mail domains.

use canopy_e2e::{Backend, Options, TestApp, both_backends, spawn_app_with};
use serde_json::{Value, json};

/// The most one amount may be (`domain::money::AMOUNT_MAX_UNITS`).
const AMOUNT_MAX: &str = "1000000000.00";
/// Top-ups of the maximum amount a balance holds at most
/// (`BALANCE_MAX_UNITS / AMOUNT_MAX_UNITS`).
const TOPUPS_TO_BALANCE_MAX: usize = 100;

fn topups(parent: &canopy_e2e::Parent) -> String {
    format!("/v1/operator/accounts/{}/topups", parent.id)
}

/// A 422 on `field` whose reason contains `says`.
fn refused(body: &Value, field: &str, says: &str) {
    assert_eq!(body["errors"][0]["field"], field, "{body}");
    let reason = body["errors"][0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains(says), "{reason:?} does not say {says:?}");
}

/// The shipped validation policy refuses look-alike free-mail addresses.
async fn look_alike_free_mail_is_refused(app: &TestApp) {
    let parent = app.parent("acme.example", "reseller").await;
    for email in ["x@ｇｍａｉｌ.com", "x@mail.gmail.com", "x@MAIL.GMail.com"] {
        let body = app
            .try_sub(&parent, "Team", email, json!({}))
            .await
            .expect_problem(422, "validation_failed");
        assert_eq!(body["errors"][0]["field"], "email", "{email}: {body}");
        assert_eq!(body["policy"]["id"], "default.subaccount.validate");
        assert!(
            body["policy"]["reason"]
                .as_str()
                .unwrap()
                .contains("gmail.com"),
            "{body}"
        );
    }
    // A domain that only ends in the same letters is a business domain.
    app.try_sub(&parent, "Team", "x@notgmail.com", json!({}))
        .await
        .expect(201);
}

async fn look_alike_free_mail_under(backend: Backend, runtime: canopy::policy::DefaultsRuntime) {
    let app = spawn_app_with(
        backend,
        Options {
            defaults_runtime: runtime,
            ..Options::default()
        },
    )
    .await;
    look_alike_free_mail_is_refused(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn look_alike_free_mail_is_refused_by_the_rhai_defaults_sqlite() {
    look_alike_free_mail_under(Backend::Sqlite, canopy::policy::DefaultsRuntime::Rhai).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn look_alike_free_mail_is_refused_by_the_rhai_defaults_postgres() {
    look_alike_free_mail_under(Backend::Postgres, canopy::policy::DefaultsRuntime::Rhai).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn look_alike_free_mail_is_refused_by_the_wasm_defaults_sqlite() {
    look_alike_free_mail_under(Backend::Sqlite, canopy::policy::DefaultsRuntime::Wasm).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn look_alike_free_mail_is_refused_by_the_wasm_defaults_postgres() {
    look_alike_free_mail_under(Backend::Postgres, canopy::policy::DefaultsRuntime::Wasm).await;
}

both_backends! {
    async fn a_topup_over_the_maximum_amount_is_refused_naming_it(app) {
        let parent = app.parent("acme.example", "enterprise").await;
        app.op_post(&topups(&parent), json!({"amount": AMOUNT_MAX})).await.expect(201);
        let body = app
            .op_post(&topups(&parent), json!({"amount": "1000000000.01"}))
            .await
            .expect_problem(422, "validation_failed");
        refused(&body, "amount", AMOUNT_MAX);
        let body = app
            .op_post(&topups(&parent), json!({"amount": "92233720368547.75"}))
            .await
            .expect_problem(422, "validation_failed");
        refused(&body, "amount", "maximum");
        assert_eq!(app.money(&parent.id, &parent.key, "balance").await, AMOUNT_MAX);
        app.assert_ledger_balanced().await;
    }

    async fn a_topup_past_the_maximum_balance_is_refused_never_a_500(app) {
        let parent = app.parent("acme.example", "enterprise").await;
        for _ in 0..TOPUPS_TO_BALANCE_MAX {
            app.op_post(&topups(&parent), json!({"amount": AMOUNT_MAX})).await.expect(201);
        }
        let body = app
            .op_post(&topups(&parent), json!({"amount": "0.01"}))
            .await
            .expect_problem(422, "validation_failed");
        refused(&body, "amount", "maximum balance of 100000000000.00 USD");
        assert_eq!(app.money(&parent.id, &parent.key, "balance").await, "100000000000.00");
        let check = app.assert_ledger_balanced().await;
        assert_eq!(check["sums"]["USD"], "0");
    }

    async fn amounts_are_refused_rather_than_rounded(app) {
        let parent = app.parent("acme.example", "enterprise").await;
        let body = app.op_post(&topups(&parent), json!({"amount": "1.001"})).await.expect_problem(422, "validation_failed");
        refused(&body, "amount", "USD");
        let body = app.op_post(&topups(&parent), json!({"amount": "1e3"})).await.expect_problem(422, "validation_failed");
        refused(&body, "amount", "exponent");
        let body = app.op_post(&topups(&parent), json!({"amount": format!("1.{}1", "0".repeat(28))})).await.expect_problem(422, "validation_failed");
        refused(&body, "amount", "decimal places");
        let body = app.op_post(&topups(&parent), json!({"amount": 150})).await.expect_problem(422, "validation_failed");
        refused(&body, "amount", "send a decimal string such as \"150.00\"");
        // Trailing zeros are not extra places.
        app.op_post(&topups(&parent), json!({"amount": "10.000"})).await.expect(201);
        assert_eq!(app.money(&parent.id, &parent.key, "balance").await, "10.00");

        // A budget in the sub-account's (inherited) currency, and its alert.
        let body = app.try_sub(&parent, "Team", "team@acme.example", json!({
            "invite": false, "credit": {"mode": "assigned_budget", "initial_credit": "2.555"}
        })).await.expect_problem(422, "validation_failed");
        refused(&body, "credit.initial_credit", "USD");
        let body = app.try_sub(&parent, "Team", "team@acme.example", json!({
            "invite": false, "credit": {"mode": "assigned_budget",
                "low_balance_alert": {"threshold": "-1", "emails": ["ops@acme.example"]}}
        })).await.expect_problem(422, "validation_failed");
        refused(&body, "low_balance_alert.threshold", "negative");
        app.assert_ledger_balanced().await;
    }

    async fn places_follow_the_currency_and_prices_keep_six(app) {
        let jpy = app.parent_with("yen.example", "enterprise", json!({"currency": "JPY", "prices": {"sms": "0.0035"}})).await;
        let body = app.op_post(&topups(&jpy), json!({"amount": "100.5"})).await.expect_problem(422, "validation_failed");
        refused(&body, "amount", "JPY has no minor unit");
        app.op_post(&topups(&jpy), json!({"amount": "100"})).await.expect(201);
        let kwd = app.parent_with("kwd.example", "enterprise", json!({"currency": "KWD"})).await;
        app.op_post(&topups(&kwd), json!({"amount": "1.125"})).await.expect(201);
        let body = app.op_post("/v1/operator/accounts", json!({
            "name": "P", "company_name": "P Ltd", "email": "billing@p.example", "billing_type": "prepaid",
            "currency": "USD", "prices": {"sms": "0.0000001"},
            "admin": {"email": "admin@p.example", "name": "Admin"},
        })).await.expect_problem(422, "validation_failed");
        refused(&body, "prices.sms", "6 decimal places");
    }

    async fn a_currency_outside_iso_4217_is_refused(app) {
        for currency in ["XYZ", "usd", "US", "DOLLARS"] {
            let body = app.op_post("/v1/operator/accounts", json!({
                "name": "P", "company_name": "P Ltd", "email": "billing@p.example", "billing_type": "prepaid",
                "currency": currency, "admin": {"email": "admin@p.example", "name": "Admin"},
            })).await.expect_problem(422, "validation_failed");
            refused(&body, "currency", "ISO 4217");
        }
    }

    async fn sms_recipients_must_be_e164(app) {
        let parent = app.parent("acme.example", "enterprise").await;
        app.op_post(&topups(&parent), json!({"amount": "10.00"})).await.expect(201);
        let path = format!("/v1/accounts/{}/messages", parent.id);
        for to in ["393471234567", "+0393471234567", "+39 347 1234567", "+1234567", "+1234567890123456", "+39347abc"] {
            let body = app.post(&path, &parent.key, json!({"channel": "sms", "to": to, "body": "hi"}))
                .await
                .expect_problem(422, "validation_failed");
            refused(&body, "to", "E.164");
        }
        app.post(&path, &parent.key, json!({"channel": "sms", "to": "+393471234567", "body": "hi"})).await.expect(201);
    }

    async fn invisible_characters_in_names_are_refused(app) {
        let parent = app.parent("acme.example", "enterprise").await;
        app.sub(&parent, "Marketing", "marketing@acme.example").await;
        for name in ["Mar\u{200B}keting", "Mar\u{202E}keting", "Mar\u{2066}keting", "Mar\u{FEFF}keting", "Mar\u{7}keting"] {
            let body = app.try_sub(&parent, name, "m2@acme.example", json!({})).await.expect_problem(422, "validation_failed");
            refused(&body, "name", "invisible");
        }
        let body = app.try_sub(&parent, "Ops", "o\u{200D}ps@acme.example", json!({})).await.expect_problem(422, "validation_failed");
        refused(&body, "email", "invisible");
        // Full-width letters are the same name (NFKC) and the same e-mail.
        let body = app.try_sub(&parent, "ＭＡＲＫＥＴＩＮＧ", "m3@acme.example", json!({})).await.expect_problem(409, "conflict");
        assert!(body["detail"].as_str().unwrap().contains("name"), "{body}");
        app.try_sub(&parent, "Sales", "ｍａｒｋｅｔｉｎｇ@acme.example", json!({})).await.expect_problem(409, "conflict");
    }
}

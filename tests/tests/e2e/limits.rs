//! Abuse and race limits: login backoff per e-mail and per client, and the
//! count limits and currency change holding under parallel requests on
//! both backends.

use canopy_e2e::{Backend, Options, Parent, TestApp, both_backends, spawn_app_with};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery";

/// One answer of a parallel batch: status, body and `Retry-After`.
struct Answer {
    status: u16,
    body: Value,
    retry_after: Option<u64>,
}

/// Sends every request at once and waits for all the answers, in order.
async fn parallel(
    app: &TestApp,
    requests: Vec<(Method, String, Option<String>, Value)>,
) -> Vec<Answer> {
    let client = reqwest::Client::new();
    let tasks: Vec<_> = requests
        .into_iter()
        .map(|(method, path, token, body)| {
            let mut req = client
                .request(method, format!("{}{path}", app.base))
                .json(&body);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            tokio::spawn(async move {
                let resp = req.send().await.expect("server answers");
                let status = resp.status().as_u16();
                let retry_after = resp.headers().get("retry-after").map(|v| {
                    v.to_str()
                        .unwrap()
                        .parse::<u64>()
                        .expect("Retry-After is whole seconds")
                });
                let body = resp.json::<Value>().await.unwrap_or(Value::Null);
                Answer {
                    status,
                    body,
                    retry_after,
                }
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

fn count(answers: &[Answer], status: u16) -> usize {
    answers.iter().filter(|a| a.status == status).count()
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

both_backends! {
    async fn parallel_wrong_passwords_back_off_per_email_and_a_success_resets(app) {
        app.set_clock("2031-05-01T10:00:00Z").await;
        // The clock runs on from here: how far it has run bounds when the
        // server last counted a failure.
        let clock_set = std::time::Instant::now();
        let parent = app.parent("acme.example", "enterprise").await;
        app.accept(&parent.invitation, "Admin", PASSWORD).await;
        let email = "admin@acme.example";
        login(&app, email, PASSWORD).await.expect(201);

        let guesses = (0..30)
            .map(|i| (Method::POST, "/v1/sessions".to_string(), None, json!({"email": email, "password": format!("wrong guess {i}")})))
            .collect();
        let answers = parallel(&app, guesses).await;
        let refused: Vec<&Answer> = answers.iter().filter(|a| a.status == 429).collect();
        assert_eq!(count(&answers, 401) + refused.len(), 30, "only 401 or 429");
        assert!(!refused.is_empty(), "30 parallel guesses are not all checked");
        assert!(count(&answers, 401) <= 10, "at most a few guesses are checked: {}", count(&answers, 401));
        for r in &refused {
            assert_eq!(r.body["code"], "rate_limited", "{}", r.body);
            let after = r.retry_after.expect("a 429 says when to retry");
            assert!((1..=900).contains(&after), "Retry-After {after}");
        }

        // Backing off: even the right password waits, and says for how long.
        let waiting = login(&app, email, PASSWORD).await;
        let after: u64 = waiting.headers.get("retry-after").expect("Retry-After").to_str().unwrap().parse().unwrap();
        waiting.expect_problem(429, "rate_limited");
        // The same e-mail written differently is the same key.
        login(&app, "ADMIN@Acme.Example", PASSWORD).await.expect_problem(429, "rate_limited");

        // Past the delay the right password works, and resets the count.
        let past = clock_set.elapsed().as_secs() + after + 1;
        app.set_clock(&format!("2031-05-01T10:{:02}:{:02}Z", past / 60, past % 60)).await;
        login(&app, email, PASSWORD).await.expect(201);
        login(&app, email, "wrong again 1").await.expect_problem(401, "unauthenticated");
        login(&app, email, PASSWORD).await.expect(201);
    }

    async fn an_unknown_email_is_refused_then_backs_off_like_a_known_one(app) {
        app.set_clock("2031-05-01T10:00:00Z").await;
        let email = "nobody@acme.example";
        let mut statuses = Vec::new();
        for i in 0..8 {
            let reply = login(&app, email, &format!("guess number {i}")).await;
            statuses.push((reply.status, reply.code().to_string(), reply.headers.contains_key("retry-after")));
        }
        let first = statuses.iter().take_while(|(s, _, _)| *s == StatusCode::UNAUTHORIZED).count();
        assert!((1..=5).contains(&first), "{statuses:?}");
        assert!(statuses[..first].iter().all(|(_, code, _)| code == "unauthenticated"), "{statuses:?}");
        assert!(
            statuses[first..].iter().all(|(s, code, retry)| s.as_u16() == 429 && code == "rate_limited" && *retry),
            "{statuses:?}"
        );
    }

    async fn many_emails_from_one_client_back_off_per_client(app) {
        app.set_clock("2031-05-01T10:00:00Z").await;
        let mut refused = None;
        for i in 0..80 {
            let reply = login(&app, &format!("user{i}@acme.example"), "not the password").await;
            if reply.status.as_u16() == 429 {
                refused = Some(i);
                reply.expect_problem(429, "rate_limited");
                break;
            }
            reply.expect_problem(401, "unauthenticated");
        }
        let at = refused.expect("one client guessing across e-mails is limited");
        assert!(at > 5, "the per-client threshold is higher than the per-e-mail one: {at}");
    }

    async fn parallel_api_keys_stop_at_the_limit(app) {
        let parent = app.parent("acme.example", "enterprise").await;
        let keys = format!("/v1/accounts/{}/api-keys", parent.id);
        let live_before = app.get(&format!("{keys}?limit=1000"), &parent.key).await.expect(200)["data"]
            .as_array().unwrap().iter().filter(|k| k["revoked_at"].is_null()).count();
        let requests = (0..130)
            .map(|i| (Method::POST, keys.clone(), Some(parent.key.clone()), json!({"name": format!("key {i}")})))
            .collect();
        let answers = parallel(&app, requests).await;
        assert_eq!(count(&answers, 201), 100 - live_before, "exactly up to the limit");
        assert_eq!(count(&answers, 409), 130 - (100 - live_before));
        for a in answers.iter().filter(|a| a.status == 409) {
            assert!(a.body["detail"].as_str().unwrap().contains("100 live API keys"), "{}", a.body);
        }
        let live = app.get(&format!("{keys}?limit=1000"), &parent.key).await.expect(200)["data"]
            .as_array().unwrap().iter().filter(|k| k["revoked_at"].is_null()).count();
        assert_eq!(live, 100);
    }

    async fn parallel_policy_uploads_stop_at_the_limit(app) {
        let parent = app.parent("acme.example", "enterprise").await;
        let path = format!("/v1/accounts/{}/policies", parent.id);
        let requests = (0..115)
            .map(|i| (Method::POST, path.clone(), Some(parent.key.clone()), json!({
                "name": format!("rule {i}"), "hook": "authorize", "runtime": "rhai",
                "source": format!("fn evaluate(hook, input) {{ if input.action == \"nothing.{i}\" {{ return #{{ decision: \"deny\", reason: \"no\" }}; }} #{{ decision: \"allow\" }} }}"),
            })))
            .collect();
        let answers = parallel(&app, requests).await;
        assert_eq!(count(&answers, 201), 100, "exactly the limit");
        assert_eq!(count(&answers, 409), 15);
        for a in answers.iter().filter(|a| a.status == 409) {
            assert!(a.body["detail"].as_str().unwrap().contains("at most 100 policies"), "{}", a.body);
        }
        let listed = app.get(&path, &parent.key).await.expect(200);
        let listed = listed["data"].as_array().or(listed.as_array()).map(Vec::len);
        assert_eq!(listed, Some(100));
    }

    async fn a_currency_change_racing_top_ups_leaves_no_money_behind(app) {
        for round in 0..12 {
            let parent = app.parent(&format!("t{round}.example"), "enterprise").await;
            let answers = parallel(&app, vec![
                (Method::POST, format!("/v1/operator/accounts/{}/topups", parent.id), Some(app.operator_token.clone()), json!({"amount": "10.00"})),
                (Method::PATCH, format!("/v1/operator/accounts/{}", parent.id), Some(app.operator_token.clone()), json!({"currency": "EUR"})),
            ]).await;
            let (topped, changed) = (answers[0].status, answers[1].status);
            // Either may win; a top-up after the change is in the new currency.
            assert!(matches!((topped, changed), (201, 409) | (409 | 201, 200)), "round {round}: top-up {topped} {}, change {changed} {}", answers[0].body, answers[1].body);
            settled(&app, &parent, if changed == 200 { "EUR" } else { "USD" }, if topped == 201 { "10.00" } else { "0.00" }, "balance").await;
        }
    }

    async fn a_currency_change_racing_allocations_leaves_no_money_behind(app) {
        for round in 0..12 {
            let parent = app.parent_with(&format!("a{round}.example"), "enterprise", json!({
                "billing_type": "postpaid", "monthly_credit_limit": "1000", "prices": {"sms": "1.00"}
            })).await;
            let sub = app.try_sub(&parent, "Team", &format!("team@a{round}.example"), json!({"invite": false})).await.expect(201);
            let sub_id = sub["id"].as_str().unwrap().to_string();
            let answers = parallel(&app, vec![
                (Method::POST, format!("/v1/accounts/{sub_id}/budget"), Some(parent.key.clone()), json!({"amount": "10.00"})),
                (Method::PATCH, format!("/v1/operator/accounts/{}", parent.id), Some(app.operator_token.clone()), json!({"currency": "EUR"})),
            ]).await;
            let (moved, changed) = (answers[0].status, answers[1].status);
            assert!(matches!((moved, changed), (201, 409) | (409 | 201, 200)), "round {round}: allocation {moved} {}, change {changed} {}", answers[0].body, answers[1].body);
            let currency = if changed == 200 { "EUR" } else { "USD" };
            let budget = if moved == 201 { "10.00" } else { "0.00" };
            let balance = app.get(&format!("/v1/accounts/{sub_id}/balance"), &parent.key).await.expect(200);
            assert_eq!((balance["currency"].as_str(), balance["budget"].as_str()), (Some(currency), Some(budget)), "round {round}: {balance}");
            let spent = if moved == 201 { "10.00" } else { "0.00" };
            settled(&app, &parent, currency, spent, "spent_this_month").await;
        }
    }
}

/// The parent reads `currency`, its `field` is `amount`, and the ledger
/// balances with nothing left in another currency of the tree.
async fn settled(app: &TestApp, parent: &Parent, currency: &str, amount: &str, field: &str) {
    let balance = app
        .get(&format!("/v1/accounts/{}/balance", parent.id), &parent.key)
        .await
        .expect(200);
    assert_eq!(balance["currency"], currency, "{balance}");
    assert_eq!(balance[field], amount, "{balance}");
    let check = app.assert_ledger_balanced().await;
    // Money the tree holds in a currency it no longer uses would show as a
    // non-zero sum nowhere, so look at the tree's transfers instead.
    let statement = app
        .get(
            &format!("/v1/accounts/{}/transactions?limit=1000", parent.id),
            &parent.key,
        )
        .await
        .expect(200);
    for t in statement["data"].as_array().unwrap() {
        assert_eq!(
            t["currency"], currency,
            "a transfer in another currency than the tree's: {t}; {check}"
        );
    }
}

/// Sub-account creation at a lowered limit, on both backends.
async fn parallel_subaccounts_stop_at_the_limit(backend: Backend) {
    let app = spawn_app_with(
        backend,
        Options {
            subaccounts_max: Some(5),
            ..Options::default()
        },
    )
    .await;
    let parent = app.parent("acme.example", "enterprise").await;
    let requests = (0..30)
        .map(|i| (Method::POST, format!("/v1/accounts/{}/subaccounts", parent.id), Some(parent.key.clone()),
            json!({"name": format!("Team {i}"), "email": format!("team{i}@acme.example"), "invite": false})))
        .collect();
    let answers = parallel(&app, requests).await;
    assert_eq!(count(&answers, 201), 5, "exactly the limit");
    assert_eq!(count(&answers, 409), 25);
    for a in answers.iter().filter(|a| a.status == 409) {
        assert!(
            a.body["detail"]
                .as_str()
                .unwrap()
                .contains("already has 5 sub-accounts"),
            "{}",
            a.body
        );
    }
    let subs = app
        .get(
            &format!("/v1/accounts/{}/subaccounts?limit=1000", parent.id),
            &parent.key,
        )
        .await
        .expect(200);
    assert_eq!(subs["data"].as_array().unwrap().len(), 5);
}

mod parallel_subaccounts_stop_at_a_lowered_limit {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        parallel_subaccounts_stop_at_the_limit(Backend::Sqlite).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        parallel_subaccounts_stop_at_the_limit(Backend::Postgres).await
    }
}

//! A parent at the most sub-accounts one parent may hold is suspended,
//! reactivated and deleted with the shipped defaults, in Rhai and in Wasm,
//! on both backends (docs/POLICIES.md, "cascade").

use std::collections::BTreeMap;
use std::time::Instant;

use canopy::policy::DefaultsRuntime;
use canopy_e2e::serde_json::json;
use canopy_e2e::{Backend, Options, RawSub, TestApp, spawn_app_with};

/// `SUBACCOUNTS_MAX` of the host.
const MAX: usize = canopy::ops::subaccounts::SUBACCOUNTS_MAX as usize;

/// `id -> (status, previous_status, suspended_by)` of every sub-account.
type Statuses = BTreeMap<String, (String, Option<String>, Option<String>)>;

async fn statuses(app: &TestApp, parent: &str) -> Statuses {
    app.query_rows(
        "SELECT id, status, previous_status, suspended_by FROM accounts WHERE parent_id = $1",
        parent,
    )
    .await
    .into_iter()
    .map(|r| {
        let id = r[0].clone().unwrap();
        (id, (r[1].clone().unwrap(), r[2].clone(), r[3].clone()))
    })
    .collect()
}

/// Sub-accounts of the tree whose budget holds money, and the returns made.
async fn budgets_held(app: &TestApp, parent: &str) -> (usize, usize) {
    let held = app
        .query_rows(
            "SELECT l.id FROM ledger_accounts l JOIN accounts a ON a.id = l.owner_id
             WHERE a.parent_id = $1 AND l.kind = 'budget' AND l.balance_micros <> 0",
            parent,
        )
        .await;
    let returns = app
        .query_rows(
            "SELECT id FROM transfers WHERE tree_id = $1 AND kind = 'return'",
            parent,
        )
        .await;
    (held.len(), returns.len())
}

async fn scenario(backend: Backend, runtime: DefaultsRuntime) {
    let app = spawn_app_with(
        backend,
        Options {
            defaults_runtime: runtime,
            ..Options::default()
        },
    )
    .await;
    let parent = app.parent("big.example", "enterprise").await;
    let topups = format!("/v1/operator/accounts/{}/topups", parent.id);
    app.op_post(&topups, json!({"amount": "1000.00"}))
        .await
        .expect(201);

    // A few through the API: budgets, invitations, suspended on their own.
    let mut by_http = Vec::new();
    for i in 0..10 {
        let invite = i >= 8;
        let credit = match i {
            0..=5 => "10.00",
            8 | 9 => "5.25",
            _ => "0",
        };
        let body = app
            .try_sub(
                &parent,
                &format!("Team {i}"),
                &format!("team{i}@big.example"),
                json!({"invite": invite, "credit": {"mode": "assigned_budget", "initial_credit": credit}}),
            )
            .await
            .expect(201);
        by_http.push(body["id"].as_str().unwrap().to_string());
    }
    for id in [&by_http[0], &by_http[1], &by_http[6]] {
        app.post(
            &format!("/v1/accounts/{id}/suspend"),
            &parent.key,
            json!({}),
        )
        .await
        .expect(200);
    }
    // The rest straight into the database, invited and active.
    let bulk: Vec<RawSub> = (by_http.len()..MAX)
        .map(|i| RawSub {
            name: format!("Bulk {i}"),
            email: format!("bulk{i}@big.example"),
            status: if i % 3 == 0 { "invited" } else { "active" },
        })
        .collect();
    app.insert_subaccounts(&parent.id, &bulk).await;
    app.try_sub(&parent, "One more", "more@big.example", json!({}))
        .await
        .expect_problem(409, "conflict");

    let before = statuses(&app, &parent.id).await;
    assert_eq!(before.len(), MAX);
    let parent_path = format!("/v1/operator/accounts/{}", parent.id);

    let started = Instant::now();
    app.op_post(&format!("{parent_path}/suspend"), json!({}))
        .await
        .expect(200);
    eprintln!(
        "{backend:?} {runtime:?}: suspended {MAX} in {:?}",
        started.elapsed()
    );
    let suspended = statuses(&app, &parent.id).await;
    for (id, (status, previous, by)) in &before {
        let now = &suspended[id];
        if status == "suspended" {
            assert_eq!(now, &before[id], "{id} was suspended on its own");
        } else {
            assert_eq!(
                now,
                &(
                    "suspended".into(),
                    Some(status.clone()),
                    Some("parent".into())
                ),
                "{id} was {status} ({previous:?}, {by:?})"
            );
        }
    }

    let started = Instant::now();
    app.op_post(&format!("{parent_path}/unsuspend"), json!({}))
        .await
        .expect(200);
    eprintln!(
        "{backend:?} {runtime:?}: reactivated {MAX} in {:?}",
        started.elapsed()
    );
    assert_eq!(
        statuses(&app, &parent.id).await,
        before,
        "each back to its previous status"
    );

    assert_eq!(budgets_held(&app, &parent.id).await, (8, 0));
    let started = Instant::now();
    let token = app.operator_token.clone();
    let gone = app.delete(&parent_path, &token).await.expect(200);
    eprintln!(
        "{backend:?} {runtime:?}: deleted {MAX} in {:?}",
        started.elapsed()
    );
    assert_eq!(gone["status"], "deleted");
    let deleted = statuses(&app, &parent.id).await;
    assert_eq!(deleted.len(), MAX);
    assert!(deleted.values().all(|(s, _, _)| s == "deleted"));
    assert_eq!(
        budgets_held(&app, &parent.id).await,
        (0, 8),
        "every budget returned"
    );
    let check = app.assert_ledger_balanced().await;
    assert_eq!(check["sums"]["USD"], "0", "{check}");
    app.stop().await;
}

macro_rules! each {
    ($($name:ident: $backend:ident, $runtime:ident;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            scenario(Backend::$backend, DefaultsRuntime::$runtime).await
        }
    )*};
}

each! {
    a_parent_at_the_maximum_is_suspended_reactivated_and_deleted_sqlite_rhai: Sqlite, Rhai;
    a_parent_at_the_maximum_is_suspended_reactivated_and_deleted_sqlite_wasm: Sqlite, Wasm;
    a_parent_at_the_maximum_is_suspended_reactivated_and_deleted_postgres_rhai: Postgres, Rhai;
    a_parent_at_the_maximum_is_suspended_reactivated_and_deleted_postgres_wasm: Postgres, Wasm;
}

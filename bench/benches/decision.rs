//! One `authorize` decision on the role-permission check of
//! `policies/authorize.rhai`, in native Rust (the floor), the shipped Rhai
//! policy, the shipped Wasm policy (warm instance and fresh instance) and
//! the same check written in Cedar, in one criterion run (BENCHMARKS.md,
//! "Policy decision: one `authorize`").
//!
//! ```sh
//! cargo bench -p canopy-bench --bench decision -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! Every timed iteration starts from the data the host has in hand when it
//! authorizes (the principal: user id, role, home account and its kind,
//! module, relation; the action; the target `Account` and its parent) and
//! ends with a parsed allow or deny. For Rhai and Wasm that is what
//! `ops::access` and `policy::Policies` do per decision: build the target's
//! and the input document (`input::account`, `input::authorize`), evaluate,
//! parse the output (`output::decision`). Not included: the async
//! `Policies::authorize` wrapper, its input size check (a `serde_json::to_vec`
//! of the input, measured on its own as `part_input_to_json`), the decision log.
//!
//! Two cases per engine: `allow` (a parent's admin suspending one of its
//! sub-accounts: relation `parent_of`, the target carries its parent) and
//! `deny` (a sub-account's basic user trying `subaccount.create` on its own
//! account: the policies format a reason).
//!
//! Before timing, all six agree on every role x account kind x relation x
//! action (asserted).

use std::collections::{HashMap, HashSet};
use std::hint::black_box;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use canopy::domain::{
    Account, AccountKind, CreditMode, Module, Relation, Role, Status, account::TreeSettings,
};
use canopy::policy::input::{self, PrincipalDoc};
use canopy::policy::output::{self, Decision};
use canopy::policy::wasm::WasmPolicy;
use canopy::policy::{Budget, DefaultsRuntime, Hook, Policy, SHIPPED_WASM, shipped_default};
use cedar_policy::{
    Authorizer, Context, Entities, Entity, EntityId, EntityTypeName, EntityUid, PolicySet, Request,
    RestrictedExpression,
};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

// ---------------------------------------------------------------- native

/// The permission table of `policies/authorize.rhai`.
const PARENT_ADMIN: &[&str] = &[
    "account.read",
    "account.update",
    "subaccount.create",
    "subaccount.list",
    "subaccount.suspend",
    "subaccount.unsuspend",
    "subaccount.delete",
    "member.list",
    "member.invite",
    "member.remove",
    "apikey.create",
    "apikey.list",
    "apikey.revoke",
    "topup.create",
    "budget.allocate",
    "balance.read",
    "transactions.read",
    "notification.list",
    "message.send",
    "message.list",
    "policy.manage",
    "decision.list",
];
const SUBACCOUNT_ADMIN: &[&str] = &[
    "account.read",
    "account.update",
    "member.list",
    "member.invite",
    "member.remove",
    "apikey.create",
    "apikey.list",
    "apikey.revoke",
    "balance.read",
    "transactions.read",
    "notification.list",
    "message.send",
    "message.list",
];
const ADVANCED: &[&str] = &[
    "account.read",
    "member.list",
    "message.send",
    "message.list",
];
const BASIC: &[&str] = &["account.read", "message.send", "message.list"];

/// The floor: the same rules as a plain match, allow = `true`.
fn native(p: &PrincipalDoc, action: &str) -> bool {
    if p.relation == Relation::Operator {
        return true;
    }
    if p.relation == Relation::ParentOf && p.role != Some(Role::Admin) {
        return false;
    }
    let permitted: &[&str] = match p.role {
        Some(Role::Admin) if p.account_kind == Some(AccountKind::Parent) => PARENT_ADMIN,
        Some(Role::Admin) => SUBACCOUNT_ADMIN,
        Some(Role::Advanced) => ADVANCED,
        Some(Role::Basic) => BASIC,
        None => &[],
    };
    permitted.contains(&action)
}

// ------------------------------------------------------- Rhai and Wasm

/// What the host does per decision around `Policy::evaluate`.
fn hosted(policy: &dyn Policy, case: &Case) -> bool {
    let target = input::account(&case.target, case.parent.as_ref());
    let doc = input::authorize(&case.principal, case.action, target, &[]);
    let out = policy
        .evaluate(Hook::Authorize, &doc, Budget::DEFAULT)
        .expect("the policy evaluates");
    match output::decision(&out).expect("a well-formed decision") {
        Decision::Allow => true,
        Decision::Deny { .. } => false,
    }
}

// ---------------------------------------------------------------- Cedar

/// The same rules in Cedar: a forbid for a parent's non-admins acting in a
/// sub-account, a permit per role, and one for operators. Attributes the
/// host has no value for (an operator's role) are left out, hence the `has`.
const CEDAR_POLICIES: &str = r#"
permit(principal, action, resource)
when { principal.relation == "operator" };

forbid(principal, action, resource)
when { principal.relation == "parent_of" && !(principal has role && principal.role == "admin") };

permit(
  principal,
  action in [
    Action::"account.read", Action::"account.update",
    Action::"subaccount.create", Action::"subaccount.list", Action::"subaccount.suspend",
    Action::"subaccount.unsuspend", Action::"subaccount.delete",
    Action::"member.list", Action::"member.invite", Action::"member.remove",
    Action::"apikey.create", Action::"apikey.list", Action::"apikey.revoke",
    Action::"topup.create", Action::"budget.allocate", Action::"balance.read",
    Action::"transactions.read", Action::"notification.list",
    Action::"message.send", Action::"message.list",
    Action::"policy.manage", Action::"decision.list"
  ],
  resource
)
when { principal has role && principal.role == "admin"
       && principal has account_kind && principal.account_kind == "parent" };

permit(
  principal,
  action in [
    Action::"account.read", Action::"account.update",
    Action::"member.list", Action::"member.invite", Action::"member.remove",
    Action::"apikey.create", Action::"apikey.list", Action::"apikey.revoke",
    Action::"balance.read", Action::"transactions.read", Action::"notification.list",
    Action::"message.send", Action::"message.list"
  ],
  resource
)
when { principal has role && principal.role == "admin"
       && !(principal has account_kind && principal.account_kind == "parent") };

permit(
  principal,
  action in [Action::"account.read", Action::"member.list", Action::"message.send", Action::"message.list"],
  resource
)
when { principal has role && principal.role == "advanced" };

permit(
  principal,
  action in [Action::"account.read", Action::"message.send", Action::"message.list"],
  resource
)
when { principal has role && principal.role == "basic" };
"#;

/// Written once: the policy set, the authorizer and the entity type names.
struct Cedar {
    policies: PolicySet,
    authorizer: Authorizer,
    user: EntityTypeName,
    account: EntityTypeName,
    action: EntityTypeName,
}

fn string(s: &str) -> RestrictedExpression {
    RestrictedExpression::new_string(s.to_string())
}

impl Cedar {
    fn new() -> Cedar {
        Cedar {
            policies: PolicySet::from_str(CEDAR_POLICIES).expect("the Cedar policies parse"),
            authorizer: Authorizer::new(),
            user: EntityTypeName::from_str("User").unwrap(),
            account: EntityTypeName::from_str("Account").unwrap(),
            action: EntityTypeName::from_str("Action").unwrap(),
        }
    }

    fn account_uid(&self, id: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(self.account.clone(), EntityId::new(id))
    }

    /// An account entity with the fields `input::account` gives policies
    /// (Cedar has no null: absent values are left out).
    fn account_entity(&self, a: &Account, parent: Option<&Account>) -> Entity {
        let mut attrs: HashMap<String, RestrictedExpression> = HashMap::with_capacity(16);
        attrs.insert("kind".into(), string(a.kind.as_str()));
        attrs.insert("status".into(), string(a.status.as_str()));
        attrs.insert("name".into(), string(&a.name));
        attrs.insert("email".into(), string(&a.email));
        let domain = a
            .email
            .rsplit_once('@')
            .map(|(_, d)| d.to_lowercase())
            .unwrap_or_default();
        attrs.insert(
            "email_domain".into(),
            RestrictedExpression::new_string(domain),
        );
        if let Some(x) = &a.external_id {
            attrs.insert("external_id".into(), string(x));
        }
        attrs.insert(
            "channels".into(),
            RestrictedExpression::new_set(a.channels.iter().map(|c| string(c))),
        );
        attrs.insert("currency".into(), string(&a.currency));
        if let Some(r) = &a.region {
            attrs.insert("region".into(), string(r));
        }
        if let Some(m) = a.tree.module {
            attrs.insert("module".into(), string(m.as_str()));
        }
        attrs.insert(
            "subaccounts_enabled".into(),
            RestrictedExpression::new_bool(a.tree.subaccounts_enabled),
        );
        if let Some(b) = a.billing_type {
            attrs.insert("billing_type".into(), string(b.as_str()));
        }
        if let Some(c) = a.credit_mode {
            attrs.insert("credit_mode".into(), string(c.as_str()));
        }
        let parents: HashSet<EntityUid> = parent
            .map(|p| self.account_uid(&p.id))
            .into_iter()
            .collect();
        Entity::new(self.account_uid(&a.id), attrs, parents).expect("a valid entity")
    }

    fn principal_entity(&self, p: &PrincipalDoc) -> (EntityUid, Entity) {
        let uid = EntityUid::from_type_name_and_id(
            self.user.clone(),
            EntityId::new(p.user_id.as_deref().unwrap_or("operator")),
        );
        let mut attrs: HashMap<String, RestrictedExpression> = HashMap::with_capacity(6);
        attrs.insert("relation".into(), string(p.relation.as_str()));
        if let Some(r) = p.role {
            attrs.insert("role".into(), string(r.as_str()));
        }
        if let Some(a) = &p.account_id {
            attrs.insert("account_id".into(), string(a));
        }
        if let Some(k) = p.account_kind {
            attrs.insert("account_kind".into(), string(k.as_str()));
        }
        if let Some(m) = p.module {
            attrs.insert("module".into(), string(m.as_str()));
        }
        let entity = Entity::new(uid.clone(), attrs, HashSet::new()).expect("a valid entity");
        (uid, entity)
    }

    /// The request and entities of one decision, from the in-hand data.
    fn build(&self, case: &Case) -> (Request, Entities) {
        let (principal, user) = self.principal_entity(&case.principal);
        let mut entities = vec![
            user,
            self.account_entity(&case.target, case.parent.as_ref()),
        ];
        if let Some(p) = &case.parent {
            entities.push(self.account_entity(p, None));
        }
        let entities = Entities::from_entities(entities, None).expect("valid entities");
        let action =
            EntityUid::from_type_name_and_id(self.action.clone(), EntityId::new(case.action));
        let request = Request::new(
            principal,
            action,
            self.account_uid(&case.target.id),
            Context::empty(),
            None,
        )
        .expect("a valid request");
        (request, entities)
    }

    fn allows(&self, request: &Request, entities: &Entities) -> bool {
        self.authorizer
            .is_authorized(request, &self.policies, entities)
            .decision()
            == cedar_policy::Decision::Allow
    }
}

// ---------------------------------------------------------------- cases

/// What the host has in hand when it authorizes.
struct Case {
    principal: PrincipalDoc,
    action: &'static str,
    target: Account,
    parent: Option<Account>,
}

fn account(id: &str, kind: AccountKind) -> Account {
    let parent = kind == AccountKind::Parent;
    Account {
        id: id.into(),
        kind,
        parent_id: (!parent).then(|| "acct_0190a1b2c3d4e5f60718293a4b5c6d7e".into()),
        name: if parent {
            "Acme Corp"
        } else {
            "Acme Marketing"
        }
        .into(),
        email: if parent {
            "ops@acme.example"
        } else {
            "marketing@acme.example"
        }
        .into(),
        external_id: (!parent).then(|| "crm-42".into()),
        company_name: "Acme".into(),
        status: Status::Active,
        previous_status: None,
        suspended_by: None,
        timezone: "UTC".into(),
        region: Some("eu".into()),
        currency: "USD".into(),
        channels: vec!["sms".into(), "whatsapp".into()],
        prices: Default::default(),
        tree: TreeSettings {
            subaccounts_enabled: true,
            module: Some(Module::Enterprise),
            monthly_usage_limit_enabled: false,
            self_topups_enabled: false,
        },
        billing_type: parent.then_some(canopy::domain::BillingType::Prepaid),
        monthly_credit_limit: None,
        credit_mode: (!parent).then_some(CreditMode::AssignedBudget),
        monthly_usage_limit: None,
        low_balance_alert: None,
        created_at: chrono::DateTime::default(),
        merged_into: None,
    }
}

const PARENT_ID: &str = "acct_0190a1b2c3d4e5f60718293a4b5c6d7e";
const SUB_ID: &str = "acct_0190a1b2c3d4e5f60718293a4b5c6d7f";

/// A user of `home_kind` acting with `relation`: on its own account
/// (`self`), or from the parent in a sub-account (`parent_of`); operators
/// act on a sub-account.
fn case(
    role: Option<Role>,
    home_kind: AccountKind,
    relation: Relation,
    action: &'static str,
) -> Case {
    let parent = account(PARENT_ID, AccountKind::Parent);
    let sub = account(SUB_ID, AccountKind::Subaccount);
    let (home, target, target_parent) = match (relation, home_kind) {
        (Relation::Operator, _) => (None, sub, Some(parent)),
        (Relation::ParentOf, _) => (Some(PARENT_ID), sub, Some(parent)),
        (Relation::Own, AccountKind::Parent) => (Some(PARENT_ID), parent, None),
        (Relation::Own, AccountKind::Subaccount) => (Some(SUB_ID), sub, Some(parent)),
    };
    let operator = relation == Relation::Operator;
    Case {
        principal: PrincipalDoc {
            user_id: (!operator).then(|| "usr_0190a1b2c3d4e5f60718293a4b5c6d80".into()),
            role: if operator { None } else { role },
            account_id: home.map(str::to_string),
            account_kind: (!operator).then_some(home_kind),
            module: (!operator).then_some(Module::Enterprise),
            relation,
        },
        action,
        target,
        parent: target_parent,
    }
}

/// The two timed cases.
fn timed_cases() -> Vec<(&'static str, Case)> {
    vec![
        (
            "allow",
            case(
                Some(Role::Admin),
                AccountKind::Parent,
                Relation::ParentOf,
                "subaccount.suspend",
            ),
        ),
        (
            "deny",
            case(
                Some(Role::Basic),
                AccountKind::Subaccount,
                Relation::Own,
                "subaccount.create",
            ),
        ),
    ]
}

/// Every role x home kind x relation x action the table names (and one it
/// does not), for the agreement check.
fn every_case() -> Vec<Case> {
    let mut actions: Vec<&'static str> = PARENT_ADMIN.to_vec();
    actions.push("no.such.action");
    let mut cases = Vec::new();
    for role in [
        Some(Role::Admin),
        Some(Role::Advanced),
        Some(Role::Basic),
        None,
    ] {
        for kind in [AccountKind::Parent, AccountKind::Subaccount] {
            for relation in [Relation::Own, Relation::ParentOf, Relation::Operator] {
                for &action in &actions {
                    cases.push(case(role, kind, relation, action));
                }
            }
        }
    }
    cases
}

// ---------------------------------------------------------------- bench

struct Engines {
    rhai: Arc<dyn Policy>,
    wasm_warm: Arc<dyn Policy>,
    wasm_fresh: WasmPolicy,
    cedar: Cedar,
}

fn engines() -> Engines {
    let wasm_bytes = SHIPPED_WASM
        .iter()
        .find(|(h, _)| *h == Hook::Authorize)
        .map(|(_, b)| *b)
        .expect("a shipped Wasm authorize");
    Engines {
        rhai: shipped_default(Hook::Authorize, DefaultsRuntime::Rhai).expect("Rhai default"),
        wasm_warm: shipped_default(Hook::Authorize, DefaultsRuntime::Wasm).expect("Wasm default"),
        wasm_fresh: WasmPolicy::load("default.authorize", 1, wasm_bytes)
            .expect("Wasm default")
            .fresh_instances(),
        cedar: Cedar::new(),
    }
}

/// All six agree on every case (outside timing).
fn check_agreement(e: &Engines) {
    let cases = every_case();
    let mut allowed = 0;
    for c in &cases {
        let expected = native(&c.principal, c.action);
        let (request, entities) = e.cedar.build(c);
        let got = [
            ("rhai", hosted(&*e.rhai, c)),
            ("wasm_warm", hosted(&*e.wasm_warm, c)),
            ("wasm_fresh", hosted(&e.wasm_fresh, c)),
            ("cedar", e.cedar.allows(&request, &entities)),
        ];
        for (name, decision) in got {
            assert_eq!(
                decision, expected,
                "{name} disagrees with native on {:?} {:?} {:?} {}",
                c.principal.role, c.principal.account_kind, c.principal.relation, c.action
            );
        }
        allowed += expected as usize;
    }
    for (name, c) in timed_cases() {
        assert_eq!(native(&c.principal, c.action), name == "allow");
    }
    eprintln!(
        "agreement: native, rhai, wasm_warm, wasm_fresh, cedar agree on {} cases ({allowed} allowed)",
        cases.len()
    );
}

fn authorize(c: &mut Criterion) {
    let e = engines();
    check_agreement(&e);

    // The script as the host compiles it, for the Rhai sub-measurements.
    // The host's engine settings (policy/rhai_script.rs), its deadline
    // check included.
    let mut engine = rhai::Engine::new();
    engine
        .set_max_operations(2_000_000)
        .set_max_call_levels(32)
        .set_max_expr_depths(64, 32)
        .set_max_string_size(1024 * 1024)
        .set_max_array_size(20_000)
        .set_max_map_size(50_000)
        .set_strict_variables(true);
    engine.on_progress(|ops| {
        if ops % 256 != 0 {
            return None;
        }
        (std::time::Instant::now() < std::time::Instant::now())
            .then(|| rhai::Dynamic::from("deadline"))
    });
    let ast = engine
        .compile(include_str!("../../policies/authorize.rhai"))
        .expect("the script compiles");

    let mut g = c.benchmark_group("authorize");
    for (name, case) in timed_cases() {
        let case = &case;
        g.bench_with_input(BenchmarkId::new("native", name), case, |b, c| {
            b.iter(|| native(black_box(&c.principal), black_box(c.action)))
        });
        g.bench_with_input(BenchmarkId::new("rhai", name), case, |b, c| {
            b.iter(|| hosted(&*e.rhai, black_box(c)))
        });
        g.bench_with_input(BenchmarkId::new("wasm_warm", name), case, |b, c| {
            b.iter(|| hosted(&*e.wasm_warm, black_box(c)))
        });
        g.bench_with_input(BenchmarkId::new("wasm_fresh", name), case, |b, c| {
            b.iter(|| hosted(&e.wasm_fresh, black_box(c)))
        });
        let (request, entities) = e.cedar.build(case);
        g.bench_with_input(BenchmarkId::new("cedar_prebuilt", name), case, |b, _| {
            b.iter(|| e.cedar.allows(black_box(&request), black_box(&entities)))
        });
        g.bench_with_input(BenchmarkId::new("cedar_from_data", name), case, |b, c| {
            b.iter(|| {
                let (request, entities) = e.cedar.build(black_box(c));
                e.cedar.allows(&request, &entities)
            })
        });

        // Where the time of a hosted decision goes.
        let target = input::account(&case.target, case.parent.as_ref());
        let doc = input::authorize(&case.principal, case.action, target, &[]);
        g.bench_with_input(BenchmarkId::new("part_input_doc", name), case, |b, c| {
            b.iter(|| {
                let target = input::account(&c.target, c.parent.as_ref());
                input::authorize(&c.principal, c.action, target, &[])
            })
        });
        g.bench_with_input(
            BenchmarkId::new("part_input_to_json", name),
            &doc,
            |b, d| b.iter(|| serde_json::to_string(black_box(d)).unwrap()),
        );
        g.bench_with_input(
            BenchmarkId::new("part_rhai_evaluate", name),
            &doc,
            |b, d| {
                b.iter(|| {
                    e.rhai
                        .evaluate(Hook::Authorize, black_box(d), Budget::DEFAULT)
                })
            },
        );
        g.bench_with_input(
            BenchmarkId::new("part_rhai_to_dynamic", name),
            &doc,
            |b, d| b.iter(|| rhai::serde::to_dynamic(black_box(d)).unwrap()),
        );
        let dynamic = rhai::serde::to_dynamic(&doc).unwrap();
        g.bench_with_input(
            BenchmarkId::new("part_rhai_call", name),
            &dynamic,
            |b, d| {
                b.iter(|| {
                    let options = rhai::CallFnOptions::new()
                        .eval_ast(false)
                        .rewind_scope(true);
                    engine
                        .call_fn_with_options::<rhai::Dynamic>(
                            options,
                            &mut rhai::Scope::new(),
                            &ast,
                            "evaluate",
                            ("authorize".to_string(), black_box(d).clone()),
                        )
                        .unwrap()
                })
            },
        );
        g.bench_with_input(
            BenchmarkId::new("part_wasm_evaluate", name),
            &doc,
            |b, d| {
                b.iter(|| {
                    e.wasm_warm
                        .evaluate(Hook::Authorize, black_box(d), Budget::DEFAULT)
                })
            },
        );
        // The same decision without the target document (`"target": null`):
        // what the target's fields cost a policy that reads none of them.
        let bare = input::authorize(&case.principal, case.action, serde_json::Value::Null, &[]);
        g.bench_with_input(
            BenchmarkId::new("part_rhai_evaluate_no_target", name),
            &bare,
            |b, d| {
                b.iter(|| {
                    e.rhai
                        .evaluate(Hook::Authorize, black_box(d), Budget::DEFAULT)
                })
            },
        );
        g.bench_with_input(
            BenchmarkId::new("part_wasm_evaluate_no_target", name),
            &bare,
            |b, d| {
                b.iter(|| {
                    e.wasm_warm
                        .evaluate(Hook::Authorize, black_box(d), Budget::DEFAULT)
                })
            },
        );
        let out = e
            .rhai
            .evaluate(Hook::Authorize, &doc, Budget::DEFAULT)
            .unwrap();
        g.bench_with_input(
            BenchmarkId::new("part_output_decision", name),
            &out,
            |b, o| b.iter(|| output::decision(black_box(o)).unwrap()),
        );
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = authorize
}
criterion_main!(benches);

//! Differential property test: every shipped default policy gives the same
//! decision in both runtimes.
//!
//! The four defaults ship twice: as Rhai scripts (`policies/*.rhai`) and as
//! Wasm components ported from them (`policies/*.wasm`, built from
//! `plugins/defaults`). Which set runs is a deployment setting, so the two
//! must be indistinguishable. For every generated input document this test
//! evaluates both and requires that
//!
//! - both return `Ok` with equal JSON documents (compared as
//!   `serde_json::Value`, so `1` and `1.0` differ, and floats bit for bit), or
//! - both return `Err` (both fail closed; the fault messages may differ).
//!
//! What is generated, per hook:
//!
//! - documents shaped exactly like those `policy::input` builds (same keys,
//!   same nesting), with every enum-valued field drawn from its real values,
//!   `null`, near misses (`"Admin"`, `" admin"`) and arbitrary strings, and
//!   the free-text fields (names, e-mails, domains, actions, resources,
//!   events) drawn to hit each branch of the scripts and their edges:
//!   whitespace-only and padded names around the 160-character limit,
//!   multi-byte and combining characters, free-mail domains in any case,
//!   the parent's own domain, names on either side of the sandbox's
//!   string limit;
//! - the same documents with one to three random nodes replaced by a value
//!   of another type (or removed), to check that both runtimes fail, or do
//!   not fail, on exactly the same malformed inputs;
//! - the shipped samples of `policies/samples/`, deterministically.
//!
//! Failing cases are shrunk by proptest and printed with both outputs (the
//! malformed ones shrink only partly: the changed node is picked by index).
//! No regression file is written (`failure_persistence: None`): a mismatch
//! is pinned as a deterministic test at the end of this file instead.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::strategy::{Union, ValueTree};
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Map, Value, json};

use super::{Budget, DefaultsRuntime, Fault, Hook, Policy, samples, shipped_default};

/// Generated documents per hook, of the host's shape.
const CASES: u32 = 3_000;
/// Generated malformed documents per hook.
const ODD_CASES: u32 = 1_500;
/// Far above the production 100 ms: an unoptimised test build on a busy
/// 2-core machine must not turn a slow evaluation into a spurious fault.
const DEADLINE: Budget = Budget::with_deadline(Duration::from_secs(1));
/// The Rhai sandbox's longest string, in bytes (`rhai_script.rs`); the
/// ports mirror it, so names and values are generated on both sides of it.
const RHAI_STRING_LEN_MAX: usize = 1024 * 1024;

// ---------------------------------------------------------------------------
// The two policy sets, built once (compiling the components takes ~0.3 s).

struct Pair {
    rhai: Arc<dyn Policy>,
    wasm: Arc<dyn Policy>,
}

static DEFAULTS: LazyLock<Vec<(Hook, Pair)>> = LazyLock::new(|| {
    Hook::ALL
        .into_iter()
        .map(|hook| {
            let pair = Pair {
                rhai: shipped_default(hook, DefaultsRuntime::Rhai).expect("Rhai default compiles"),
                wasm: shipped_default(hook, DefaultsRuntime::Wasm).expect("Wasm default loads"),
            };
            (hook, pair)
        })
        .collect()
});

fn pair(hook: Hook) -> &'static Pair {
    &DEFAULTS
        .iter()
        .find(|(h, _)| *h == hook)
        .expect("every hook")
        .1
}

/// Both runtimes' results on one input.
fn run_both(hook: Hook, input: &Value) -> (Result<Value, Fault>, Result<Value, Fault>) {
    let p = pair(hook);
    (
        p.rhai.evaluate(hook, input, DEADLINE),
        p.wasm.evaluate(hook, input, DEADLINE),
    )
}

/// The property: equal documents, or a failure in both.
fn agree(hook: Hook, input: &Value) -> Result<(), TestCaseError> {
    match run_both(hook, input) {
        (Ok(a), Ok(b)) if a == b => Ok(()),
        (Err(_), Err(_)) => Ok(()),
        (rhai, wasm) => Err(TestCaseError::fail(format!(
            "`{}`: the runtimes disagree\n  input: {}\n  rhai:  {}\n  wasm:  {}",
            hook.name(),
            abbreviate(input),
            shown(&rhai),
            shown(&wasm),
        ))),
    }
}

/// Keeps failure messages readable when the input holds a 1 MiB string:
/// long strings are shown as their start and their length.
fn abbreviate(v: &Value) -> Value {
    const MAX: usize = 80;
    match v {
        Value::String(s) if s.chars().count() > MAX => {
            let start: String = s.chars().take(16).collect();
            Value::from(format!(
                "{start}… ({} chars, {} bytes)",
                s.chars().count(),
                s.len()
            ))
        }
        Value::Array(a) => Value::Array(a.iter().map(abbreviate).collect()),
        Value::Object(m) => {
            Value::Object(m.iter().map(|(k, v)| (k.clone(), abbreviate(v))).collect())
        }
        other => other.clone(),
    }
}

fn shown(r: &Result<Value, Fault>) -> String {
    match r {
        Ok(v) => format!("Ok({})", abbreviate(v)),
        Err(f) => format!("Err({:?})", f.0),
    }
}

fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

// ---------------------------------------------------------------------------
// Building blocks.

/// Every action `policies/authorize.rhai` names, plus operator actions and
/// the other hooks' actions, which also reach the policies.
#[rustfmt::skip]
const ACTIONS: &[&str] = &[
    "account.read",
    "account.update",
    "subaccount.create",
    "subaccount.list",
    "subaccount.suspend",
    "subaccount.unsuspend",
    "subaccount.delete",
    "subaccount.update",
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
    // Lines and SIMs (issue 9).
    "resource.list",
    "resource.transfer",
    "resource.activate",
    "resource.suspend",
    "resource.resume",
    "resource.terminate",
    "resource.disconnect",
    "operation.read",
    "offer.assign",
    "billing.read",
    "invoice.read",
    "merge.request",
    "merge.approve",
    "parent.suspend",
    "parent.unsuspend",
    "parent.create",
    "resource.provision",
    // Traffic (issue 10).
    "conversation.list",
    "analytics.read",
    "campaign.create",
    "campaign.list",
    "campaign.cancel",
    "webhook.create",
    "webhook.list",
    "webhook.delete",
    "message.inbound",
];

/// The free-mail domains of `policies/subaccount_validate.rhai`.
#[rustfmt::skip]
const FREE_MAIL: &[&str] = &[
    "gmail.com",
    "googlemail.com",
    "yahoo.com",
    "yahoo.co.uk",
    "yahoo.fr",
    "ymail.com",
    "rocketmail.com",
    "outlook.com",
    "hotmail.com",
    "hotmail.co.uk",
    "hotmail.fr",
    "live.com",
    "msn.com",
    "aol.com",
    "icloud.com",
    "me.com",
    "mac.com",
    "mail.com",
    "gmx.com",
    "gmx.de",
    "gmx.net",
    "web.de",
    "proton.me",
    "protonmail.com",
    "zoho.com",
    "yandex.com",
    "yandex.ru",
    "mail.ru",
    "qq.com",
    "163.com",
    "126.com",
    "rediffmail.com",
    "tutanota.com",
    "fastmail.com",
    "hey.com",
    "libero.it",
    "orange.fr",
    "free.fr",
];

/// Business domains, few so that a sub-account's and its parent's often
/// coincide (the enterprise rule's allow branch).
const BUSINESS: &[&str] = &["acme.example", "globex.example", "bücher.example"];

/// Characters around which `trim` and character counting differ: Unicode
/// white space that Rust's `trim` removes, and look-alikes it keeps
/// (zero-width space, BOM, Mongolian vowel separator).
#[rustfmt::skip]
const SPACES: &[char] = &[
    ' ', '\t', '\n', '\r', '\u{0B}', '\u{0C}', '\u{85}', '\u{A0}', '\u{1680}', '\u{2000}',
    '\u{2009}', '\u{2028}', '\u{2029}', '\u{202F}', '\u{3000}', '\u{200B}', '\u{FEFF}', '\u{180E}',
];

/// Single characters of 1 to 4 UTF-8 bytes, and a combining sequence.
const GLYPHS: &[&str] = &["x", "é", "e\u{301}", "ß", "İ", "日", "😀", "👩‍👩‍👧"];

/// Any string: printable Unicode, or any `char` at all (controls, NUL,
/// surrogate-adjacent code points).
fn any_string() -> BoxedStrategy<String> {
    prop_oneof![
        "\\PC{0,24}",
        vec(any::<char>(), 0..24).prop_map(String::from_iter),
    ]
    .boxed()
}

/// A string field the host fills from an enum: mostly one of `known`,
/// sometimes a near miss (case, padding, a NUL) or an arbitrary string, and
/// `null` when `nullable`.
fn enum_field(known: &'static [&'static str], nullable: bool) -> BoxedStrategy<Value> {
    let near_miss = (select(known), 0..4usize).prop_map(|(k, how)| match how {
        0 => k.to_uppercase(),
        1 => format!(" {k}"),
        2 => format!("{k}\u{0}"),
        _ => k[..k.len() - 1].to_string(),
    });
    let mut arms: Vec<(u32, BoxedStrategy<Value>)> = vec![
        (8, select(known).prop_map(Value::from).boxed()),
        (1, near_miss.prop_map(Value::from).boxed()),
        (1, any_string().prop_map(Value::from).boxed()),
    ];
    if nullable {
        arms.push((2, Just(Value::Null).boxed()));
    }
    Union::new_weighted(arms).boxed()
}

fn id(prefix: &'static str) -> impl Strategy<Value = String> {
    "[0-9a-f]{32}".prop_map(move |hex| format!("{prefix}_{hex}"))
}

fn nullable<S: Strategy<Value = String> + 'static>(s: S) -> BoxedStrategy<Value> {
    prop::option::weighted(0.8, s)
        .prop_map(|o| o.map_or(Value::Null, Value::from))
        .boxed()
}

/// A domain: free-mail, business, random, or a near miss of a free-mail one
/// (a sub-domain, a trailing dot, padding), in any case.
fn domain() -> BoxedStrategy<String> {
    let free_near_miss = (select(FREE_MAIL), 0..4usize).prop_map(|(d, how)| match how {
        0 => format!("mail.{d}"),
        1 => format!("{d}."),
        2 => format!(" {d}"),
        _ => d.replace('.', "-"),
    });
    let cased = (
        prop_oneof![
            4 => select(FREE_MAIL).prop_map(String::from),
            4 => select(BUSINESS).prop_map(String::from),
            2 => "[a-z0-9-]{1,12}\\.[a-z]{2,6}",
            1 => free_near_miss,
            1 => any_string(),
            1 => Just(String::new()),
        ],
        0..4usize,
    )
        // Users type domains in any case; the host lowercases `email_domain`
        // but not `email`.
        .prop_map(|(d, case)| match case {
            0 => d.to_uppercase(),
            _ => d,
        });
    cased.boxed()
}

/// What the host derives from an e-mail.
use crate::policy::input::email_domain;

/// An e-mail: `local@domain` mostly, sometimes with no `@` at all or two.
fn email() -> BoxedStrategy<String> {
    prop_oneof![
        8 => ("[a-z0-9.+_-]{1,12}", domain()).prop_map(|(l, d)| format!("{l}@{d}")),
        1 => "[a-z0-9.]{0,12}",
        1 => ("[a-z]{1,5}", domain()).prop_map(|(l, d)| format!("{l}@x@{d}")),
    ]
    .boxed()
}

/// `principal`, as `PrincipalDoc::to_json` builds it; one in eight is the
/// exact operator principal.
fn principal() -> BoxedStrategy<Value> {
    let any = (
        nullable(id("usr")),
        enum_field(&["admin", "advanced", "basic"], true),
        nullable(id("acct")),
        enum_field(&["parent", "subaccount"], true),
        enum_field(&["enterprise", "reseller"], true),
        enum_field(&["self", "parent_of", "operator"], false),
    )
        .prop_map(
            |(user_id, role, account_id, account_kind, module, relation)| {
                json!({
                    "user_id": user_id,
                    "role": role,
                    "account_id": account_id,
                    "account_kind": account_kind,
                    "module": module,
                    "relation": relation,
                })
            },
        );
    let operator = Just(json!({
        "user_id": null, "role": null, "account_id": null,
        "account_kind": null, "module": null, "relation": "operator",
    }));
    prop_oneof![7 => any, 1 => operator].boxed()
}

/// An action: one the scripts know, a near miss, or anything.
fn action() -> BoxedStrategy<Value> {
    enum_field(ACTIONS, false)
}

/// An account document, as `policy::input::account` builds it, of the given
/// kind; `parent` is the parent's summary or `null`.
fn account(kind: &'static str, with_parent: bool) -> BoxedStrategy<Value> {
    let parent = if with_parent {
        (
            id("acct"),
            "\\PC{1,30}",
            email(),
            enum_field(&["invited", "active", "suspended", "deleted"], false),
            enum_field(&["enterprise", "reseller"], true),
            enum_field(&["prepaid", "postpaid"], true),
        )
            .prop_map(|(id, name, email, status, module, billing)| {
                json!({
                    "id": id, "name": name, "email_domain": email_domain(&email),
                    "email": email, "status": status, "timezone": "Europe/Rome",
                    "module": module, "billing_type": billing,
                })
            })
            .boxed()
    } else {
        Just(Value::Null).boxed()
    };
    let head = (
        id("acct"),
        enum_field(&["invited", "active", "suspended", "deleted"], false),
        "\\PC{1,30}",
        email(),
        nullable("[a-z0-9-]{1,10}"),
        vec(select(&["sms", "whatsapp", "rcs", "email"][..]), 0..4),
    );
    let tail = (
        select(&["USD", "EUR", "GBP"][..]),
        (select(&["eu", "us"][..]), select(&ZONES[..])),
        enum_field(&["enterprise", "reseller"], true),
        any::<bool>(),
        enum_field(&["prepaid", "postpaid"], true),
        enum_field(&["assigned_budget", "shared_usage"], true),
        parent,
    );
    (head, tail)
        .prop_map(move |(head, tail)| {
            let (id, status, name, email, external_id, channels) = head;
            let (currency, (region, zone), module, enabled, billing, credit, parent) = tail;
            json!({
                "id": id,
                "kind": kind,
                "status": status,
                "name": name,
                "email_domain": email_domain(&email),
                "email": email,
                "external_id": external_id,
                "channels": channels,
                "currency": currency,
                "region": region,
                "timezone": zone,
                "module": module,
                "subaccounts_enabled": enabled,
                "billing_type": billing,
                "credit_mode": credit,
                "parent": parent,
            })
        })
        .boxed()
}

/// A target account: a parent (no parent of its own) or a sub-account.
fn target() -> BoxedStrategy<Value> {
    prop_oneof![account("parent", false), account("subaccount", true)].boxed()
}

// ---------------------------------------------------------------------------
// One strategy per hook.

/// `authorize`: principal × action × target × the fields a change sets.
fn authorize_doc() -> BoxedStrategy<Value> {
    let fields = vec(
        select(
            &[
                "name",
                "email",
                "external_id",
                "channels",
                "timezone",
                "credit",
                "role",
                "to",
                "resource_ids",
                "filter",
                "action",
                "offer_id",
                "sources",
                "target",
            ][..],
        ),
        0..4,
    );
    (principal(), action(), target(), fields)
        .prop_map(|(principal, action, target, fields)| {
            json!({
                "hook": "authorize",
                "principal": principal,
                "action": action,
                "target": target,
                "fields": fields,
            })
        })
        .boxed()
}

/// A submitted name, aimed at the script's `trim` and 160-character limit.
fn name() -> BoxedStrategy<String> {
    let spaces = || vec(select(SPACES), 0..6).prop_map(String::from_iter);
    prop_oneof![
        // Ordinary names.
        3 => "[A-Za-z0-9 &'-]{1,40}",
        // White space only (empty after `trim`, or not for the look-alikes).
        2 => vec(select(SPACES), 0..8).prop_map(String::from_iter),
        // 155..=165 characters of 1-4 byte glyphs, padded with white space:
        // the limit counts characters after trimming, not bytes.
        3 => (spaces(), select(GLYPHS), 155..=165usize, spaces())
            .prop_map(|(pre, g, n, post)| format!("{pre}{}{post}", g.repeat(n))),
        // Long, and random.
        1 => "[a-z]{150,400}",
        2 => "\\PC{0,200}",
        1 => vec(any::<char>(), 0..200).prop_map(String::from_iter),
        // Around the sandbox's string limit, padded: the trimmed name is
        // checked against it.
        1 => (-4..=4isize, spaces()).prop_map(|(d, pad)| {
            format!("{pad}{}{pad}", "x".repeat(RHAI_STRING_LEN_MAX.saturating_add_signed(d)))
        }),
    ]
    .boxed()
}

/// A field of `fields` that may be a value, `null`, or missing (`None`;
/// the host always sends the key, but a policy must not depend on it).
fn present_null_absent(s: BoxedStrategy<Value>) -> BoxedStrategy<Option<Value>> {
    prop_oneof![
        6 => s.prop_map(Some),
        2 => Just(Some(Value::Null)),
        1 => Just(None),
    ]
    .boxed()
}

/// `subaccount.validate`: the submitted fields against a parent whose module
/// and domain vary; the target is the parent (create) or a sub-account
/// (update).
fn validate_doc() -> BoxedStrategy<Value> {
    let fields = (
        present_null_absent(name().prop_map(Value::from).boxed()),
        present_null_absent(email().prop_map(Value::from).boxed()),
        nullable("[a-z0-9-]{1,10}"),
        prop::option::of(vec(select(&["sms", "whatsapp", "rcs"][..]), 0..3)),
        nullable(select(&["Europe/Rome", "UTC", "America/New_York"][..]).prop_map(String::from)),
    )
        .prop_map(|(name, email, external_id, channels, timezone)| {
            let mut f = Map::new();
            if let Some(name) = name {
                f.insert("name".into(), name);
            }
            // `email_domain` is what the host derives from `email`.
            let domain = match &email {
                Some(Value::String(e)) => Value::from(email_domain(e)),
                _ => Value::Null,
            };
            if let Some(email) = email {
                f.insert("email".into(), email);
                f.insert("email_domain".into(), domain);
            }
            f.insert("external_id".into(), external_id);
            f.insert("channels".into(), json!(channels));
            f.insert("timezone".into(), timezone);
            Value::Object(f)
        });
    let action = prop_oneof![
        4 => select(&["subaccount.create", "subaccount.update"][..]).prop_map(Value::from),
        1 => action(),
    ];
    (
        principal(),
        action,
        account("parent", false),
        account("subaccount", true),
        any::<bool>(),
        fields,
    )
        .prop_map(|(principal, action, parent, sub, create, fields)| {
            json!({
                "hook": "subaccount.validate",
                "principal": principal,
                "action": action,
                "target": if create { parent.clone() } else { sub },
                "parent": parent,
                "fields": fields,
            })
        })
        .boxed()
}

/// `visibility`: principal × action × resource × target.
fn visibility_doc() -> BoxedStrategy<Value> {
    let resource = enum_field(
        &[
            "account",
            "subaccounts",
            "messages",
            "reports",
            "balance",
            "transactions",
            "members",
            "apikeys",
            "notifications",
            "decisions",
            "pricing",
            "usage",
            "resources",
            "operations",
            "offers",
            "billing",
            "invoices",
        ],
        false,
    );
    (principal(), action(), resource, target())
        .prop_map(|(principal, action, resource, target)| {
            json!({
                "hook": "visibility",
                "principal": principal,
                "action": action,
                "resource": resource,
                "target": target,
            })
        })
        .boxed()
}

/// One entry of a cascade's `subaccounts`, as `policy::input::cascade`
/// builds it.
fn cascade_subaccount() -> BoxedStrategy<Value> {
    const STATUSES: &[&str] = &["invited", "active", "suspended", "deleted"];
    (
        id("acct"),
        enum_field(STATUSES, false),
        enum_field(STATUSES, true),
        enum_field(&["self", "parent"], true),
        enum_field(&["assigned_budget", "shared_usage"], true),
        nullable("[0-9]{1,6}\\.[0-9]{2,4}"),
    )
        .prop_map(|(id, status, previous, by, credit, budget)| {
            json!({
                "id": id,
                "status": status,
                "previous_status": previous,
                "suspended_by": by,
                "credit_mode": credit,
                "budget": budget,
            })
        })
        .boxed()
}

/// `cascade`: an event on a target, with 0 to 20 sub-accounts concerned.
fn cascade_doc() -> BoxedStrategy<Value> {
    let event = enum_field(
        &[
            "parent.suspended",
            "parent.unsuspended",
            "subaccount.suspended",
            "subaccount.unsuspended",
        ],
        false,
    );
    (
        event,
        principal(),
        target(),
        vec(cascade_subaccount(), 0..=20),
    )
        .prop_map(|(event, principal, target, subs)| {
            json!({
                "hook": "cascade",
                "event": event,
                "principal": principal,
                "target": target,
                "subaccounts": subs,
            })
        })
        .boxed()
}

/// Zones accounts are generated in: offsets on both sides of UTC, half
/// hours, daylight saving, and a stored name the database does not know.
const ZONES: [&str; 6] = [
    "UTC",
    "Europe/Rome",
    "America/New_York",
    "Asia/Kolkata",
    "Pacific/Chatham",
    "Mars/Olympus",
];

/// A host document of `hook` as the host hands it over: with `now`, and
/// `local_now` in each account document (`policy::time::stamp`), at an
/// instant anywhere from 1970 to 2100.
fn doc(hook: Hook) -> BoxedStrategy<Value> {
    let doc = match hook {
        Hook::Authorize => authorize_doc(),
        Hook::SubaccountValidate => validate_doc(),
        Hook::Visibility => visibility_doc(),
        Hook::Cascade => cascade_doc(),
    };
    (doc, 0i64..4_102_444_800)
        .prop_map(|(mut doc, secs)| {
            let now = chrono::DateTime::from_timestamp(secs, 0).expect("in range");
            super::time::stamp(&mut doc, now);
            doc
        })
        .boxed()
}

// ---------------------------------------------------------------------------
// Malformed documents: a host document with nodes of the wrong type.

/// A replacement node (`None`: remove it): other types, the tokens the
/// scripts compare against in the wrong place, numbers Rhai and JSON
/// represent differently, and a string past Rhai's limit.
fn odd_value() -> BoxedStrategy<Option<Value>> {
    let token = select(
        &[
            "admin",
            "basic",
            "parent",
            "subaccount",
            "self",
            "parent_of",
            "operator",
            "enterprise",
            "reseller",
            "active",
            "invited",
            "suspended",
            "gmail.com",
            "acme.example",
            "account.read",
            "resource.transfer",
            "resource.activate",
            "parent.suspended",
            "parent.unsuspended",
            "keep",
            "suspend",
            "resume",
            "",
        ][..],
    );
    prop_oneof![
        3 => Just(None),
        3 => Just(Some(Value::Null)),
        1 => any::<bool>().prop_map(|b| Some(json!(b))),
        1 => any::<i64>().prop_map(|n| Some(json!(n))),
        1 => select(&[0i64, 1, -1, i64::MAX, i64::MIN][..]).prop_map(|n| Some(json!(n))),
        1 => Just(Some(json!(u64::MAX))),
        1 => select(&[0.0f64, 1.0, -0.0, 1.5, 1e300, 1e-7, 123456789.0][..]).prop_map(|f| Some(json!(f))),
        1 => any::<f64>().prop_map(|f| Some(json!(f))),
        3 => token.clone().prop_map(|t| Some(json!(t))),
        1 => token.clone().prop_map(|t| Some(json!([t]))),
        1 => token.prop_map(|t| Some(json!({ "x": t }))),
        1 => Just(Some(json!([]))),
        1 => Just(Some(json!({}))),
        1 => Just(Some(json!([1, "a", null, 2.5, [true], {"k": "v"}]))),
        1 => any_string().prop_map(|s| Some(json!(s))),
        1 => Just(Some(json!("x".repeat(RHAI_STRING_LEN_MAX + 1)))),
    ]
    .boxed()
}

/// Where a node sits in a document.
#[derive(Debug, Clone)]
enum Step {
    Key(String),
    At(usize),
}

/// Every node's path, the root's (empty) first.
fn paths(v: &Value, at: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    out.push(at.clone());
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                at.push(Step::Key(k.clone()));
                paths(child, at, out);
                at.pop();
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                at.push(Step::At(i));
                paths(child, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

/// Replaces (or removes) the node at `path`.
fn set(doc: &mut Value, path: &[Step], with: Option<Value>) {
    let Some((last, parent)) = path.split_last() else {
        *doc = with.unwrap_or(Value::Null);
        return;
    };
    let mut node = doc;
    for step in parent {
        node = match (step, node) {
            (Step::Key(k), Value::Object(m)) => m.get_mut(k).expect("path exists"),
            (Step::At(i), Value::Array(a)) => &mut a[*i],
            _ => unreachable!("paths are taken from this document"),
        };
    }
    match (last, node, with) {
        (Step::Key(k), Value::Object(m), Some(v)) => {
            m.insert(k.clone(), v);
        }
        (Step::Key(k), Value::Object(m), None) => {
            m.remove(k);
        }
        (Step::At(i), Value::Array(a), Some(v)) => a[*i] = v,
        (Step::At(i), Value::Array(a), None) => {
            a.remove(*i);
        }
        _ => unreachable!("paths are taken from this document"),
    }
}

/// A host document of `hook` with one to three nodes replaced or removed.
/// Paths are picked afresh after each change, so none dangles.
fn odd_doc(hook: Hook) -> BoxedStrategy<Value> {
    (doc(hook), vec((any::<Index>(), odd_value()), 1..=3))
        .prop_map(|(mut doc, changes)| {
            for (pick, with) in changes {
                let mut all = Vec::new();
                paths(&doc, &mut Vec::new(), &mut all);
                let path = &all[pick.index(all.len())];
                set(&mut doc, path, with);
            }
            doc
        })
        .boxed()
}

// ---------------------------------------------------------------------------
// The tests.

proptest! {
    #![proptest_config(config(CASES))]

    #[test]
    fn authorize_agrees(input in doc(Hook::Authorize)) {
        agree(Hook::Authorize, &input)?;
    }

    #[test]
    fn subaccount_validate_agrees(input in doc(Hook::SubaccountValidate)) {
        agree(Hook::SubaccountValidate, &input)?;
    }

    #[test]
    fn visibility_agrees(input in doc(Hook::Visibility)) {
        agree(Hook::Visibility, &input)?;
    }

    #[test]
    fn cascade_agrees(input in doc(Hook::Cascade)) {
        agree(Hook::Cascade, &input)?;
    }
}

proptest! {
    #![proptest_config(config(ODD_CASES))]

    #[test]
    fn authorize_agrees_on_malformed_input(input in odd_doc(Hook::Authorize)) {
        agree(Hook::Authorize, &input)?;
    }

    #[test]
    fn subaccount_validate_agrees_on_malformed_input(input in odd_doc(Hook::SubaccountValidate)) {
        agree(Hook::SubaccountValidate, &input)?;
    }

    #[test]
    fn visibility_agrees_on_malformed_input(input in odd_doc(Hook::Visibility)) {
        agree(Hook::Visibility, &input)?;
    }

    #[test]
    fn cascade_agrees_on_malformed_input(input in odd_doc(Hook::Cascade)) {
        agree(Hook::Cascade, &input)?;
    }
}

/// Every shipped sample gives the same document in both runtimes, and no
/// sample fails.
#[test]
fn samples_agree() {
    for hook in Hook::ALL {
        let samples = samples::of(hook);
        assert!(!samples.is_empty(), "no sample of {}", hook.name());
        for (i, sample) in samples.iter().enumerate() {
            let (rhai, wasm) = run_both(hook, sample);
            let rhai =
                rhai.unwrap_or_else(|f| panic!("{} sample {i}: Rhai failed: {f}", hook.name()));
            let wasm =
                wasm.unwrap_or_else(|f| panic!("{} sample {i}: Wasm failed: {f}", hook.name()));
            assert_eq!(rhai, wasm, "{} sample {i}", hook.name());
        }
    }
}

/// The generators are not degenerate: across 1,500 host-shaped
/// documents each hook reaches every outcome of its script (otherwise the
/// properties above would compare the same branch thousands of times).
#[test]
fn generators_reach_every_branch() {
    // What tells one branch of a script's output from another.
    fn branch(hook: Hook, out: &Result<Value, Fault>) -> String {
        let Ok(out) = out else { return "error".into() };
        match hook {
            Hook::Authorize => out["decision"].to_string(),
            Hook::SubaccountValidate => {
                let reason = out["reason"].as_str().unwrap_or("");
                let kind = reason.split(';').next().unwrap_or("");
                let kind = kind.split(' ').take(4).collect::<Vec<_>>().join(" ");
                format!("{} {} {kind}", out["decision"], out["field"])
            }
            Hook::Visibility => format!("{} {}", out["hide"], out["rows"]),
            Hook::Cascade => format!(
                "{} {} {}",
                out["campaigns"],
                // The defaults' plans over a tree are rules, never lists.
                out["subaccounts"].is_object(),
                out["resources"]
            ),
        }
    }
    let expected: [(Hook, &[&str]); 4] = [
        (Hook::Authorize, &["\"allow\"", "\"deny\""]),
        (
            Hook::SubaccountValidate,
            &[
                "\"allow\" null ",
                "\"deny\" \"name\" must not be empty",
                "\"deny\" \"name\" must be at most",
                "\"deny\" \"email\" must be a business",
                "\"deny\" \"email\" must use the parent",
                "error",
            ],
        ),
        (
            Hook::Visibility,
            &[
                "[] \"all\"",
                "[] \"own\"",
                "[\"pricing\",\"plan\",\"balance\",\"usage\"] \"all\"",
                "[\"pricing\",\"plan\",\"balance\",\"usage\"] \"own\"",
            ],
        ),
        (
            Hook::Cascade,
            // The defaults keep SIMs as they are on every event.
            &[
                "\"queue\" true \"keep\"",
                "\"queue\" false \"keep\"",
                "\"submit\" true \"keep\"",
                "\"submit\" false \"keep\"",
                "\"keep\" false \"keep\"",
            ],
        ),
    ];
    let mut runner = TestRunner::deterministic();
    for (hook, branches) in expected {
        let strategy = doc(hook);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..1_500 {
            let input = strategy.new_tree(&mut runner).expect("generates").current();
            seen.insert(branch(
                hook,
                &pair(hook).rhai.evaluate(hook, &input, DEADLINE),
            ));
        }
        for b in branches {
            assert!(
                seen.contains(*b),
                "{}: never reached {b}; reached {seen:?}",
                hook.name()
            );
        }
    }
}

/// A float in the input does not trouble either runtime. Found by
/// `cascade_agrees_on_malformed_input` when the default copied ids into its
/// plan (it now writes rules and copies nothing): the host
/// parses a component's output with `serde_json` without `float_roundtrip`,
/// which reads `4.569683171695621e-274` one ULP off, while Rhai's output
/// never goes through text.
#[test]
fn an_echoed_float_comes_back_unchanged() {
    let input = json!({
        "event": "parent.suspended",
        "subaccounts": [{"id": 4.569683171695621e-274, "status": "active"}],
    });
    agree(Hook::Cascade, &input).unwrap_or_else(|e| panic!("{e}"));
}

/// Sub-domains of free-mail domains, and domains past the sandbox's string
/// limit (the script calls `ends_with` on them), agree in both runtimes.
#[test]
fn free_mail_subdomains_and_huge_domains_agree() {
    let huge = "x".repeat(1024 * 1024 + 1);
    for domain in [
        "mail.gmail.com".to_string(),
        "a.b.yahoo.co.uk".to_string(),
        "notgmail.com".to_string(),
        format!("{huge}.example"),
        format!("{huge}.gmail.com"),
    ] {
        let input = json!({
            "hook": "subaccount.validate",
            "fields": {"name": "Team", "email": format!("x@{domain}"), "email_domain": domain},
            "parent": {"module": "reseller", "email_domain": "acme.example"},
        });
        agree(Hook::SubaccountValidate, &input).unwrap_or_else(|e| panic!("{e}"));
    }
}

/// The principal of a user of `kind` (`parent` or `subaccount`) acting in
/// its own account with `role`.
fn user(role: &str, kind: &str, module: &str) -> Value {
    json!({
        "user_id": "usr_0190a1b2c3d4e5f60718293a4b5c6d80", "role": role,
        "account_id": "acct_0190a1b2c3d4e5f60718293a4b5c6d7f", "account_kind": kind,
        "module": module, "relation": "self",
    })
}

/// The resource actions by role (seed 002, issue 9), in both runtimes:
/// only the parent's admin moves resources between places, assigns offers,
/// reads bills and merges; a sub-account's admin acts on what it holds;
/// advanced users list resources and follow operations.
#[test]
fn resource_actions_by_role_in_both_runtimes() {
    let parent_only = [
        "resource.transfer",
        "offer.assign",
        "billing.read",
        "invoice.read",
        "merge.request",
        "merge.approve",
    ];
    let sub_admin = [
        "resource.list",
        "resource.activate",
        "resource.suspend",
        "resource.resume",
        "resource.terminate",
        "resource.disconnect",
        "operation.read",
    ];
    let decide = |principal: Value, action: &str| {
        let input = json!({"hook": "authorize", "principal": principal, "action": action,
                           "target": null, "fields": []});
        let (rhai, wasm) = run_both(Hook::Authorize, &input);
        let (rhai, wasm) = (rhai.expect("Rhai decides"), wasm.expect("Wasm decides"));
        assert_eq!(rhai, wasm, "{action}");
        rhai["decision"].as_str().expect("a decision").to_string()
    };
    for module in ["enterprise", "reseller"] {
        for action in parent_only.iter().chain(&sub_admin) {
            assert_eq!(
                decide(user("admin", "parent", module), action),
                "allow",
                "{action}"
            );
            let want = if sub_admin.contains(action) {
                "allow"
            } else {
                "deny"
            };
            assert_eq!(
                decide(user("admin", "subaccount", module), action),
                want,
                "{action}"
            );
            let want = if matches!(*action, "resource.list" | "operation.read") {
                "allow"
            } else {
                "deny"
            };
            for kind in ["parent", "subaccount"] {
                assert_eq!(
                    decide(user("advanced", kind, module), action),
                    want,
                    "{action}"
                );
                assert_eq!(
                    decide(user("basic", kind, module), action),
                    "deny",
                    "{action}"
                );
            }
        }
    }
    // The two the issue names: a sub-account's admin activates its SIMs but
    // never moves them (Twilio's error 21474).
    let sub = user("admin", "subaccount", "enterprise");
    assert_eq!(decide(sub.clone(), "resource.transfer"), "deny");
    assert_eq!(decide(sub, "resource.activate"), "allow");
    // A parent's admin acting in a sub-account does what it does at home;
    // no one else of the parent may.
    let mut from_parent = user("admin", "parent", "enterprise");
    from_parent["relation"] = json!("parent_of");
    assert_eq!(decide(from_parent.clone(), "resource.transfer"), "allow");
    from_parent["role"] = json!("advanced");
    assert_eq!(decide(from_parent, "resource.list"), "deny");
}

/// Every default cascade plan keeps SIMs as they are, in both runtimes, and
/// says so (`"resources": "keep"`).
#[test]
fn default_cascades_keep_sims() {
    for sample in samples::of(Hook::Cascade) {
        for event in [
            "parent.suspended",
            "parent.unsuspended",
            "subaccount.suspended",
            "subaccount.unsuspended",
        ] {
            let mut input = sample.clone();
            input["event"] = json!(event);
            let (rhai, wasm) = run_both(Hook::Cascade, &input);
            let (rhai, wasm) = (rhai.expect("Rhai plans"), wasm.expect("Wasm plans"));
            assert_eq!(rhai, wasm, "{event}");
            assert_eq!(rhai["resources"], "keep", "{event}");
            let plan = super::output::cascade_plan(&rhai).expect("a plan the host reads");
            assert_eq!(plan.resources, super::output::Resources::Keep);
        }
    }
}

/// Offers and fees are in group `plan` (issue 9): the defaults hide it,
/// with pricing, balance and usage, from a reseller sub-account's own users
/// of every role, and show it to an enterprise sub-account's and to
/// parents (seed 001), in both runtimes.
#[test]
fn plan_is_hidden_from_reseller_subaccounts_only() {
    let hidden = |principal: Value| {
        let input = json!({"hook": "visibility", "principal": principal,
                           "action": "resource.list", "resource": "resources", "target": null});
        let (rhai, wasm) = run_both(Hook::Visibility, &input);
        let (rhai, wasm) = (rhai.expect("Rhai decides"), wasm.expect("Wasm decides"));
        assert_eq!(rhai, wasm);
        let view = super::output::view(&rhai)
            .expect("a view")
            .expect("an allow");
        super::output::FIELD_GROUPS
            .into_iter()
            .filter(|g| view.hides(g))
            .collect::<Vec<_>>()
    };
    for role in ["admin", "advanced", "basic"] {
        assert_eq!(
            hidden(user(role, "subaccount", "reseller")),
            ["pricing", "balance", "usage", "plan"],
            "{role}"
        );
        assert!(
            hidden(user(role, "subaccount", "enterprise")).is_empty(),
            "{role}"
        );
        assert!(
            hidden(user(role, "parent", "reseller")).is_empty(),
            "{role}"
        );
    }
    // A parent's admin looking into a reseller sub-account sees its plan.
    let mut from_parent = user("admin", "parent", "reseller");
    from_parent["relation"] = json!("parent_of");
    assert!(hidden(from_parent).is_empty());
}

//! Policies: everything that varies between customers, evaluated on every
//! operation (MISSION.md "Policies").
//!
//! - [`Policy`] is the one interface every runtime implements; [`rhai_script`]
//!   is the Rhai runtime.
//! - [`input`] builds the JSON input documents (the same for every runtime),
//!   [`output`] parses what a policy returns; anything malformed fails closed.
//! - [`Policies`] holds the active policies per hook and combines their
//!   decisions: a deny from any policy wins, hidden field groups are unioned,
//!   the most specific cascade plan applies.
//!
//! This module knows nothing of SQL or HTTP: a policy never sees a database
//! handle, only the documents the host builds for it.

pub mod breaker;
pub mod canary;
pub mod decision;
#[cfg(test)]
mod differential;
pub mod fairness;
pub mod input;
pub mod output;
pub mod rhai_script;
pub mod samples;
pub mod testing;
pub mod time;
pub mod wasm;
pub mod wasm_cache;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::Semaphore;

use crate::error::{FieldError, PolicyRef};
use crate::{Error, Result};
pub use decision::DecisionLog;
pub use output::{CascadePlan, View};

/// Wall-clock deadline of one policy evaluation.
pub const EVALUATION_DEADLINE: Duration = Duration::from_millis(100);
/// A cascade decides for a whole tree: its deadline grows by this much per
/// sub-account concerned (300 ms for the most a parent may hold)...
pub const CASCADE_DEADLINE_PER_SUBACCOUNT: Duration = Duration::from_micros(20);
/// ...up to this.
pub const CASCADE_DEADLINE_MAX: Duration = Duration::from_secs(2);
/// Largest input document handed to a policy: a cascade over the most
/// sub-accounts a parent may hold (about 160 bytes each) fits.
pub const INPUT_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Largest output document a policy may return; a cascade plan may be
/// larger (see [`Hook::output_bytes_max`]).
pub const OUTPUT_BYTES_MAX: usize = 64 * 1024;
/// Largest cascade plan: one step and one return for each of the most
/// sub-accounts a parent may hold (10,000).
pub const CASCADE_OUTPUT_BYTES_MAX: usize = 2 * 1024 * 1024;
/// Evaluations running at once. They are CPU work off tokio's workers;
/// beyond this, requests wait for a slot instead of piling up threads.
const CONCURRENT_EVALUATIONS_MAX: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hook {
    Authorize,
    SubaccountValidate,
    Visibility,
    Cascade,
}

impl Hook {
    pub const ALL: [Hook; 4] = [
        Hook::Authorize,
        Hook::SubaccountValidate,
        Hook::Visibility,
        Hook::Cascade,
    ];

    /// The hook's name in documents and the API.
    pub fn name(self) -> &'static str {
        match self {
            Hook::Authorize => "authorize",
            Hook::SubaccountValidate => "subaccount.validate",
            Hook::Visibility => "visibility",
            Hook::Cascade => "cascade",
        }
    }

    /// The file a shipped default is kept in, under `policies/`.
    pub fn default_file(self) -> &'static str {
        match self {
            Hook::Authorize => "authorize.rhai",
            Hook::SubaccountValidate => "subaccount_validate.rhai",
            Hook::Visibility => "visibility.rhai",
            Hook::Cascade => "cascade.rhai",
        }
    }

    /// Largest output document a policy of this hook may return.
    pub fn output_bytes_max(self) -> usize {
        match self {
            Hook::Cascade => CASCADE_OUTPUT_BYTES_MAX,
            _ => OUTPUT_BYTES_MAX,
        }
    }

    pub fn parse(name: &str) -> Option<Hook> {
        Hook::ALL.into_iter().find(|h| h.name() == name)
    }
}

/// What one evaluation may spend: a wall-clock deadline, and each runtime's
/// instruction budget (Rhai operations, Wasm fuel) scaled in proportion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub deadline: Duration,
    /// Instruction budgets are this many thousandths of the runtime's base.
    pub instructions_permille: u64,
}

impl Budget {
    /// The budget of every evaluation but a cascade over a large tree.
    pub const DEFAULT: Budget = Budget {
        deadline: EVALUATION_DEADLINE,
        instructions_permille: 1000,
    };
    /// The most any evaluation gets: runtimes size their fixed limits by it.
    pub const MAX: Budget = Budget::scaled(CASCADE_DEADLINE_MAX);

    /// The default instruction budget under another deadline (tests, the
    /// command line).
    pub const fn with_deadline(deadline: Duration) -> Budget {
        Budget {
            deadline,
            instructions_permille: 1000,
        }
    }

    /// A deadline above the default, with the instruction budget scaled
    /// by the same factor.
    const fn scaled(deadline: Duration) -> Budget {
        Budget {
            deadline,
            instructions_permille: (deadline.as_micros() * 1000 / EVALUATION_DEADLINE.as_micros())
                as u64,
        }
    }

    /// The budget of a cascade over `subaccounts` sub-accounts: it grows
    /// with the tree it decides for, bounded by [`CASCADE_DEADLINE_MAX`].
    pub fn cascade(subaccounts: usize) -> Budget {
        let extra = CASCADE_DEADLINE_PER_SUBACCOUNT
            .saturating_mul(subaccounts.min(u32::MAX as usize) as u32);
        Budget::scaled(
            EVALUATION_DEADLINE
                .saturating_add(extra)
                .min(CASCADE_DEADLINE_MAX),
        )
    }

    /// A runtime's base instruction budget, scaled.
    pub fn instructions(&self, base: u64) -> u64 {
        base.saturating_mul(self.instructions_permille) / 1000
    }
}

/// Why an evaluation produced no usable output: the guest errored, broke a
/// limit, or returned something malformed. Always fails closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Fault(pub String);

/// One policy, in any runtime. `evaluate` is synchronous CPU work bounded by
/// the runtime's own limits and `budget`.
pub trait Policy: Send + Sync {
    fn id(&self) -> &str;
    fn version(&self) -> i64;
    /// The name it was uploaded under; a shipped default's is its id.
    fn name(&self) -> &str {
        self.id()
    }
    fn evaluate(&self, hook: Hook, input: &Value, budget: Budget) -> Result<Value, Fault>;
}

/// How an active uploaded policy runs: enforced, or evaluated and logged
/// only (shadow).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    Enforce,
    Shadow,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Shadow => "shadow",
        }
    }

    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "enforce" => Some(Mode::Enforce),
            "shadow" => Some(Mode::Shadow),
            _ => None,
        }
    }
}

/// Where an evaluation happens, which decides the layers that run: the
/// shipped defaults always; platform policies except when the operator
/// manages policies; a tree's own policies only inside that tree, never on
/// operator actions and never when policies are managed (MISSION.md).
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// The tree's parent account; `None` for operator actions.
    pub tree: Option<String>,
    /// The account acted in, for the decision log.
    pub account: Option<String>,
    pub managing_policies: bool,
}

impl Scope {
    pub fn operator(account: Option<&str>) -> Scope {
        Scope {
            tree: None,
            account: account.map(str::to_string),
            managing_policies: false,
        }
    }

    pub fn tree(tree: &str, account: &str) -> Scope {
        Scope {
            tree: Some(tree.to_string()),
            account: Some(account.to_string()),
            managing_policies: false,
        }
    }

    pub fn managing(mut self) -> Scope {
        self.managing_policies = true;
        self
    }
}

/// An uploaded policy version that is active on one hook.
#[derive(Clone)]
pub struct Active {
    pub hook: Hook,
    pub mode: Mode,
    pub policy: Arc<dyn Policy>,
}

/// The uploaded policies in force: the platform's and each tree's.
#[derive(Clone, Default)]
pub struct Layers {
    /// The `policy_generation` these were loaded at.
    pub generation: i64,
    pub platform: Vec<Active>,
    pub trees: HashMap<String, Vec<Active>>,
}

impl Layers {
    /// An already loaded policy of this id and version, to reuse (compiled
    /// code and warm instances) across reloads.
    pub fn find(&self, id: &str, version: i64) -> Option<Arc<dyn Policy>> {
        self.platform
            .iter()
            .chain(self.trees.values().flatten())
            .find(|a| a.policy.id() == id && a.policy.version() == version)
            .map(|a| a.policy.clone())
    }
}

/// Every policy that runs for one hook evaluation, in order.
struct Selection {
    policies: Vec<(Mode, Arc<dyn Policy>)>,
    /// Only compiled-in shipped defaults: cheap enough to run inline.
    defaults_only: bool,
    /// Where the uploaded (platform and tree) policies start.
    uploaded_from: usize,
}

/// The policies of each hook, in evaluation order: shipped defaults, then
/// platform policies, then the customer's own; and the decision log.
pub struct Policies {
    defaults: Vec<(Hook, Arc<dyn Policy>)>,
    layers: RwLock<Arc<Layers>>,
    slots: Semaphore,
    /// Only the shipped defaults compiled into the binary (microseconds
    /// each) run on the async worker itself; any policy from outside runs
    /// on the blocking pool, so one that spins to its deadline never holds
    /// a worker.
    inline: bool,
    log: OnceLock<DecisionLog>,
    /// Circuit breakers of the uploaded policies.
    breakers: Arc<breaker::Breakers>,
    /// Each tree's share of the evaluation slots.
    fairness: fairness::Fairness,
    /// The host's clock: `now` and `local_now` in every input document.
    clock: Arc<crate::clock::Clock>,
}

/// The shipped defaults, compiled into the binary so that `canopy serve`
/// works from any directory; `--policies DIR` replaces them.
const SHIPPED: [(Hook, &str); 4] = [
    (
        Hook::Authorize,
        include_str!("../../../policies/authorize.rhai"),
    ),
    (
        Hook::SubaccountValidate,
        include_str!("../../../policies/subaccount_validate.rhai"),
    ),
    (
        Hook::Visibility,
        include_str!("../../../policies/visibility.rhai"),
    ),
    (
        Hook::Cascade,
        include_str!("../../../policies/cascade.rhai"),
    ),
];

/// The shipped defaults as Wasm components, built from `plugins/defaults`.
pub const SHIPPED_WASM: [(Hook, &[u8]); 4] = [
    (
        Hook::Authorize,
        include_bytes!("../../../policies/authorize.wasm"),
    ),
    (
        Hook::SubaccountValidate,
        include_bytes!("../../../policies/subaccount_validate.wasm"),
    ),
    (
        Hook::Visibility,
        include_bytes!("../../../policies/visibility.wasm"),
    ),
    (
        Hook::Cascade,
        include_bytes!("../../../policies/cascade.wasm"),
    ),
];

/// Which runtime the defaults run in (MISSION.md: one set is active, Rhai
/// unless configured otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DefaultsRuntime {
    #[default]
    Rhai,
    Wasm,
}

impl Policies {
    /// The shipped default policies.
    pub fn shipped(runtime: DefaultsRuntime) -> Result<Policies, String> {
        let mut defaults = Vec::new();
        for hook in Hook::ALL {
            defaults.push((hook, shipped_default(hook, runtime)?));
        }
        Ok(Policies {
            inline: runtime == DefaultsRuntime::Rhai,
            ..Policies::new(defaults)
        })
    }

    /// Default policies read from a directory holding one file per hook
    /// (`authorize.rhai`, or `authorize.wasm` with the Wasm runtime).
    pub fn from_dir(dir: &Path, runtime: DefaultsRuntime) -> Result<Policies, String> {
        let mut defaults = Vec::new();
        for hook in Hook::ALL {
            let mut path = dir.join(hook.default_file());
            if runtime == DefaultsRuntime::Wasm {
                path.set_extension("wasm");
            }
            let bytes = std::fs::read(&path)
                .map_err(|e| format!("cannot read policy {}: {e}", path.display()))?;
            let id = format!("default.{}", hook.name());
            let policy: Arc<dyn Policy> = match runtime {
                DefaultsRuntime::Rhai => Arc::new(
                    rhai_script::RhaiPolicy::compile(&id, 1, &String::from_utf8_lossy(&bytes))
                        .map_err(|e| {
                            format!(
                                "default policy for `{}` does not compile ({}): {e}",
                                hook.name(),
                                path.display()
                            )
                        })?,
                ),
                DefaultsRuntime::Wasm => {
                    Arc::new(wasm::WasmPolicy::load(&id, 1, &bytes).map_err(|e| {
                        format!(
                            "default policy for `{}` does not load ({}): {e}",
                            hook.name(),
                            path.display()
                        )
                    })?)
                }
            };
            defaults.push((hook, policy));
        }
        Ok(Policies::new(defaults))
    }

    pub fn new(defaults: Vec<(Hook, Arc<dyn Policy>)>) -> Policies {
        Policies {
            defaults,
            layers: RwLock::new(Arc::new(Layers::default())),
            slots: Semaphore::new(CONCURRENT_EVALUATIONS_MAX),
            inline: false,
            log: OnceLock::new(),
            breakers: Arc::default(),
            fairness: fairness::Fairness::default(),
            clock: Arc::default(),
        }
    }

    /// Input documents take their `now` from `clock` (the host's).
    pub fn use_clock(&mut self, clock: Arc<crate::clock::Clock>) {
        self.clock = clock;
    }

    /// Opens an uploaded policy's circuit after `failures` consecutive
    /// failures (0: never) for `cool_down`.
    pub fn set_breaker(&mut self, failures: u32, cool_down: Duration) {
        self.breakers = Arc::new(breaker::Breakers::new(failures, cool_down));
    }

    /// The uploaded policies' circuit breakers.
    pub fn breakers(&self) -> &breaker::Breakers {
        &self.breakers
    }

    /// Each tree's share of policy evaluation.
    pub fn fairness(&self) -> &fairness::Fairness {
        &self.fairness
    }

    /// Sends every decision from now on to `log`.
    pub fn log_decisions(&self, log: DecisionLog) {
        let _ = self.log.set(log);
    }

    /// Decisions the log dropped because its queue was full.
    pub fn decisions_dropped(&self) -> u64 {
        self.log.get().map_or(0, DecisionLog::dropped)
    }

    /// The uploaded policies in force.
    pub fn layers(&self) -> Arc<Layers> {
        self.layers
            .read()
            .map(|l| l.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Puts `layers` in force for every evaluation that starts after this.
    pub fn install(&self, layers: Layers) {
        let layers = Arc::new(layers);
        match self.layers.write() {
            Ok(mut l) => *l = layers,
            Err(p) => *p.into_inner() = layers,
        }
    }

    fn select(&self, hook: Hook, scope: &Scope) -> Selection {
        let mut policies: Vec<(Mode, Arc<dyn Policy>)> = self
            .defaults
            .iter()
            .filter(|(h, _)| *h == hook)
            .map(|(_, p)| (Mode::Enforce, p.clone()))
            .collect();
        let layers = self.layers();
        let platform = (!scope.managing_policies).then_some(&layers.platform);
        let tree = match (&scope.tree, scope.managing_policies) {
            (Some(tree), false) => layers.trees.get(tree),
            _ => None,
        };
        let before = policies.len();
        for active in platform.into_iter().chain(tree).flatten() {
            if active.hook == hook {
                policies.push((active.mode, active.policy.clone()));
            }
        }
        Selection {
            defaults_only: self.inline && policies.len() == before,
            policies,
            uploaded_from: before,
        }
    }

    /// Runs every selected policy of `hook` on `input`, off the async
    /// workers unless only the compiled-in defaults run.
    async fn run(
        &self,
        hook: Hook,
        scope: &Scope,
        input: Value,
        budget: Budget,
    ) -> Result<Vec<Evaluated>> {
        let selection = self.select(hook, scope);
        let size = json_size(&input);
        if size > INPUT_BYTES_MAX {
            return Err(Error::internal(format!(
                "{} input document is {size} bytes",
                hook.name()
            )));
        }
        // A cascade may convert a tree of 10,000 sub-accounts: never inline.
        if selection.defaults_only && hook != Hook::Cascade {
            return Ok(evaluate_all(
                hook,
                &selection.policies,
                &input,
                None,
                budget,
            ));
        }
        let guard = Guard {
            breakers: self.breakers.clone(),
            tree: scope.tree.clone(),
            from: selection.uploaded_from,
        };
        // An enforced policy whose circuit is open fails the operation
        // whatever the others say: fail closed at once, running nothing.
        if let Some(refused) = guard.refused_enforced(&selection.policies) {
            return Ok(vec![refused]);
        }
        // Uploaded policies run within their tree's share of the slots, so
        // one tree's slow policies never hold every slot, nor, meanwhile,
        // a database connection.
        crate::store::held::let_go();
        let _share = match selection.policies.len() > selection.uploaded_from {
            true => Some(self.fairness.enter(scope.tree.as_deref()).await?),
            false => None,
        };
        let _slot = self.slots.acquire().await.map_err(Error::internal)?;
        tokio::task::spawn_blocking(move || {
            evaluate_all(hook, &selection.policies, &input, Some(&guard), budget)
        })
        .await
        .map_err(Error::internal)
    }

    /// Evaluates `hook`, combines the enforced outcomes with `combine`,
    /// judges the shadow policies against the result, and logs the decision.
    async fn decide<T: Clone>(
        &self,
        hook: Hook,
        scope: &Scope,
        input: Value,
        budget: Budget,
        combine: &Combiner<T>,
    ) -> Result<T> {
        let mut input = input;
        time::stamp(&mut input, self.clock.now());
        let action = decision::action_of(&input);
        let account = scope
            .account
            .clone()
            .or_else(|| decision::target_of(&input));
        let evaluated = self.run(hook, scope, input, budget).await?;
        let judged: Vec<Judged<T>> = evaluated
            .into_iter()
            .map(|e| Judged::of(e, combine.read))
            .collect();
        let result = (combine.fold)(
            judged
                .iter()
                .filter(|j| j.mode == Mode::Enforce)
                .collect::<Vec<_>>(),
        );
        let disagrees = |j: &Judged<T>| match (&j.outcome, &result) {
            (Ok(shadow), Ok(enforced)) => (combine.differs)(shadow, enforced),
            (shadow, enforced) => {
                let shadow = decision::outcome_of(shadow).0;
                shadow == "error" || shadow != decision::outcome_of(enforced).0
            }
        };
        // Each shadow entry says whether it disagreed with the result.
        let entries: Vec<decision::Entry> = judged
            .iter()
            .map(|j| decision::Entry {
                disagrees: (j.mode == Mode::Shadow).then(|| disagrees(j)),
                ..j.entry()
            })
            .collect();
        let shadow_disagrees = entries.iter().any(|e| e.disagrees == Some(true));
        if let Some(log) = self.log.get() {
            log.record(decision::Record::new(
                hook,
                scope.tree.clone(),
                account,
                action,
                &result,
                shadow_disagrees,
                entries,
            ));
        }
        result
    }

    /// `authorize`: allowed only if every policy allows.
    pub async fn authorize(&self, scope: &Scope, input: Value) -> Result<()> {
        self.decide(
            Hook::Authorize,
            scope,
            input,
            Budget::DEFAULT,
            &Combiner::decisions(false),
        )
        .await
        .map(|_| ())
    }

    /// `subaccount.validate`: the first refusal becomes a 422 on its field.
    pub async fn validate(&self, scope: &Scope, input: Value) -> Result<()> {
        self.decide(
            Hook::SubaccountValidate,
            scope,
            input,
            Budget::DEFAULT,
            &Combiner::decisions(true),
        )
        .await
        .map(|_| ())
    }

    /// `visibility`: hidden groups are unioned, `own` rows win over `all`,
    /// any deny denies.
    pub async fn visibility(&self, scope: &Scope, input: Value) -> Result<View> {
        self.decide(
            Hook::Visibility,
            scope,
            input,
            Budget::DEFAULT,
            &Combiner::views(),
        )
        .await
    }

    /// `cascade`: the most specific policy's plan (the last evaluated). Its
    /// budget grows with the sub-accounts it decides for.
    pub async fn cascade(&self, scope: &Scope, input: Value) -> Result<(PolicyRef, CascadePlan)> {
        let subaccounts = input["subaccounts"].as_array().map_or(0, Vec::len);
        self.decide(
            Hook::Cascade,
            scope,
            input,
            Budget::cascade(subaccounts),
            &Combiner::plans(),
        )
        .await
    }
}

/// The length of `v` as JSON text, counted without writing it anywhere.
pub(crate) fn json_size(v: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0 += b.len();
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    match serde_json::to_writer(&mut count, v) {
        Ok(()) => count.0,
        Err(_) => usize::MAX,
    }
}

/// One policy's evaluation.
struct Evaluated {
    reference: PolicyRef,
    mode: Mode,
    duration_us: u64,
    result: Result<Value, Fault>,
}

/// One policy's evaluation read as its hook's outcome.
struct Judged<T> {
    reference: PolicyRef,
    mode: Mode,
    duration_us: u64,
    outcome: Result<T>,
}

impl<T> Judged<T> {
    fn of(e: Evaluated, read: fn(&PolicyRef, Value) -> Result<T>) -> Judged<T> {
        let outcome = match e.result {
            Ok(out) => read(&e.reference, out),
            Err(fault) => Err(Error::PolicyFailed(PolicyRef {
                reason: format!(
                    "policy `{}` failed and the operation was refused: {fault}",
                    e.reference.id
                ),
                ..e.reference.clone()
            })),
        };
        Judged {
            reference: e.reference,
            mode: e.mode,
            duration_us: e.duration_us,
            outcome,
        }
    }

    fn entry(&self) -> decision::Entry {
        let (outcome, reason) = decision::outcome_of(&self.outcome);
        decision::Entry {
            id: self.reference.id.clone(),
            name: self.reference.name.clone(),
            version: self.reference.version,
            mode: self.mode.as_str(),
            outcome,
            reason,
            duration_us: self.duration_us,
            disagrees: None,
        }
    }
}

/// How one hook reads a policy's output, combines the enforced outcomes,
/// and tells whether a shadow outcome would have changed the result.
struct Combiner<T> {
    read: fn(&PolicyRef, Value) -> Result<T>,
    fold: fn(Vec<&Judged<T>>) -> Result<T>,
    differs: fn(&T, &T) -> bool,
}

/// The first failure among enforced outcomes, if any.
fn first_failure<T>(judged: &[&Judged<T>]) -> Option<Error> {
    judged.iter().find_map(|j| match &j.outcome {
        Err(e) if !matches!(e, Error::PolicyDenied(_) | Error::Validation { .. }) => {
            Some(e.clone())
        }
        _ => None,
    })
}

impl Combiner<()> {
    /// `authorize` and `subaccount.validate`: a deny is an `Err` outcome
    /// (403, or 422 for validation); the first one wins.
    fn decisions(validation: bool) -> Combiner<()> {
        Combiner {
            read: if validation {
                read_validation
            } else {
                read_authorization
            },
            fold: |judged| {
                if let Some(e) = first_failure(&judged) {
                    return Err(e);
                }
                judged
                    .iter()
                    .find_map(|j| j.outcome.as_ref().err().cloned())
                    .map_or(Ok(()), Err)
            },
            differs: |_, _| false,
        }
    }
}

fn read_authorization(policy: &PolicyRef, out: Value) -> Result<()> {
    match output::decision(&out).map_err(|f| malformed(policy, f))? {
        output::Decision::Allow => Ok(()),
        output::Decision::Deny { reason, .. } => Err(Error::PolicyDenied(PolicyRef {
            reason,
            ..policy.clone()
        })),
    }
}

fn read_validation(policy: &PolicyRef, out: Value) -> Result<()> {
    match output::decision(&out).map_err(|f| malformed(policy, f))? {
        output::Decision::Allow => Ok(()),
        output::Decision::Deny { reason, field } => {
            let field = field.unwrap_or_else(|| "body".into());
            Err(Error::Validation {
                detail: format!("policy `{}` refused `{field}`: {reason}", policy.id),
                errors: vec![FieldError::new(field, reason.clone())],
                policy: Some(Box::new(PolicyRef {
                    reason,
                    ..policy.clone()
                })),
            })
        }
    }
}

impl Combiner<View> {
    fn views() -> Combiner<View> {
        Combiner {
            read: |policy, out| match output::view(&out).map_err(|f| malformed(policy, f))? {
                Ok(mut v) => {
                    if !v.hidden.is_empty() {
                        v.hidden_by = Some(PolicyRef {
                            reason: format!("hides {:?}", v.hidden),
                            ..policy.clone()
                        });
                    }
                    Ok(v)
                }
                Err(reason) => Err(Error::PolicyDenied(PolicyRef {
                    reason,
                    ..policy.clone()
                })),
            },
            fold: |judged| {
                if let Some(e) = first_failure(&judged) {
                    return Err(e);
                }
                let mut view = View::default();
                for j in judged {
                    view = view.union(j.outcome.clone()?);
                }
                Ok(view)
            },
            // A shadow view disagrees if adding it would hide more.
            differs: |shadow, enforced| {
                let with = enforced.clone().union(shadow.clone());
                with.hidden != enforced.hidden || with.own_rows_only != enforced.own_rows_only
            },
        }
    }
}

impl Combiner<(PolicyRef, CascadePlan)> {
    fn plans() -> Combiner<(PolicyRef, CascadePlan)> {
        Combiner {
            read: |policy, out| {
                output::cascade_plan(&out)
                    .map(|plan| (policy.clone(), plan))
                    .map_err(|f| malformed(policy, f))
            },
            fold: |judged| {
                if let Some(e) = first_failure(&judged) {
                    return Err(e);
                }
                judged
                    .last()
                    .map(|j| j.outcome.clone())
                    .unwrap_or_else(|| Err(Error::internal("no cascade policy is active")))
            },
            differs: |shadow, enforced| shadow.1 != enforced.1,
        }
    }
}

/// The circuit breakers around the uploaded policies of one evaluation.
struct Guard {
    breakers: Arc<breaker::Breakers>,
    tree: Option<String>,
    /// Policies from this index on are uploaded ones.
    from: usize,
}

impl Guard {
    fn key(&self, policy: &dyn Policy) -> breaker::Key {
        (policy.id().to_string(), policy.version(), self.tree.clone())
    }

    /// The first enforced uploaded policy whose circuit is open, as its
    /// failed evaluation.
    fn refused_enforced(&self, policies: &[(Mode, Arc<dyn Policy>)]) -> Option<Evaluated> {
        policies
            .iter()
            .skip(self.from)
            .filter(|(mode, _)| *mode == Mode::Enforce)
            .find_map(|(mode, policy)| {
                let refused = self.breakers.refuses(&self.key(policy.as_ref()))?;
                Some(evaluated(
                    policy.as_ref(),
                    *mode,
                    0,
                    Err(open_fault(refused)),
                ))
            })
    }

    /// Runs `policy` unless its circuit is open, and records the outcome
    /// (an output that is not a well-formed document counts as a failure).
    fn evaluate(
        &self,
        hook: Hook,
        policy: &dyn Policy,
        input: &Value,
        budget: Budget,
    ) -> Result<Value, Fault> {
        let key = self.key(policy);
        let refused = self.breakers.admit(&key);
        if refused != breaker::Admit::Yes {
            return Err(open_fault(refused));
        }
        let result = policy.evaluate(hook, input, budget);
        let ok = matches!(&result, Ok(out) if output::check(hook, out).is_ok());
        self.breakers.record(&key, ok);
        result
    }
}

fn open_fault(refused: breaker::Admit) -> Fault {
    let breaker::Admit::No { until, failures } = refused else {
        return Fault("its circuit breaker refused it".into());
    };
    let until = chrono::DateTime::<chrono::Utc>::from(until)
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    Fault(format!(
        "its circuit breaker is open after {failures} consecutive failures, so it was not evaluated; it gets one trial evaluation after {until}"
    ))
}

fn evaluated(
    policy: &dyn Policy,
    mode: Mode,
    duration_us: u64,
    result: Result<Value, Fault>,
) -> Evaluated {
    Evaluated {
        reference: PolicyRef {
            id: policy.id().to_string(),
            name: policy.name().to_string(),
            version: policy.version(),
            reason: String::new(),
        },
        mode,
        duration_us,
        result,
    }
}

/// Evaluates every selected policy in order; the uploaded ones behind their
/// circuit breakers when `guard` is given.
fn evaluate_all(
    hook: Hook,
    policies: &[(Mode, Arc<dyn Policy>)],
    input: &Value,
    guard: Option<&Guard>,
    budget: Budget,
) -> Vec<Evaluated> {
    policies
        .iter()
        .enumerate()
        .map(|(i, (mode, policy))| {
            let started = Instant::now();
            let result = match guard {
                Some(g) if i >= g.from => g.evaluate(hook, policy.as_ref(), input, budget),
                _ => policy.evaluate(hook, input, budget),
            };
            let duration_us = started.elapsed().as_micros() as u64;
            if let Err(fault) = &result {
                tracing::warn!(policy = policy.id(), version = policy.version(), mode = mode.as_str(), hook = hook.name(), duration_us, %fault, "policy failed closed");
            }
            evaluated(policy.as_ref(), *mode, duration_us, result)
        })
        .collect()
}

/// A shipped default in the chosen runtime.
pub fn shipped_default(hook: Hook, runtime: DefaultsRuntime) -> Result<Arc<dyn Policy>, String> {
    let id = format!("default.{}", hook.name());
    match runtime {
        DefaultsRuntime::Rhai => {
            let (_, source) = SHIPPED
                .iter()
                .find(|(h, _)| *h == hook)
                .expect("every hook");
            rhai_script::RhaiPolicy::compile(&id, 1, source)
                .map(|p| Arc::new(p) as Arc<dyn Policy>)
                .map_err(|e| format!("default policy for `{}` does not compile: {e}", hook.name()))
        }
        DefaultsRuntime::Wasm => {
            let (_, bytes) = SHIPPED_WASM
                .iter()
                .find(|(h, _)| *h == hook)
                .expect("every hook");
            wasm::WasmPolicy::load(&id, 1, bytes)
                .map(|p| Arc::new(p) as Arc<dyn Policy>)
                .map_err(|e| {
                    format!(
                        "default Wasm policy for `{}` does not load: {e}",
                        hook.name()
                    )
                })
        }
    }
}

fn malformed(policy: &PolicyRef, fault: Fault) -> Error {
    Error::PolicyFailed(PolicyRef {
        reason: format!(
            "policy `{}` returned a malformed document and the operation was refused: {fault}",
            policy.id
        ),
        ..policy.clone()
    })
}

#[cfg(test)]
mod budget_tests {
    use super::*;

    #[test]
    fn a_cascade_budget_grows_with_the_tree_bounded() {
        assert_eq!(Budget::cascade(0), Budget::DEFAULT);
        let largest = Budget::cascade(crate::ops::subaccounts::SUBACCOUNTS_MAX as usize);
        assert_eq!(largest.deadline, Duration::from_millis(300));
        assert_eq!(largest.instructions(2_000_000), 6_000_000);
        let huge = Budget::cascade(usize::MAX);
        assert_eq!(huge, Budget::MAX);
        assert_eq!(huge.deadline, CASCADE_DEADLINE_MAX);
        assert_eq!(huge.instructions(200_000_000), 4_000_000_000);
    }
}

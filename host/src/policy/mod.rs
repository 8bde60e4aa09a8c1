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

pub mod input;
pub mod output;
pub mod rhai_script;
pub mod samples;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::Semaphore;

use crate::error::{FieldError, PolicyRef};
use crate::{Error, Result};
pub use output::{CascadePlan, View};

/// Wall-clock deadline of one policy evaluation.
pub const EVALUATION_DEADLINE: Duration = Duration::from_millis(100);
/// Largest input document handed to a policy: a cascade over the most
/// sub-accounts a parent may hold (about 160 bytes each) fits.
pub const INPUT_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Largest output document a policy may return.
pub const OUTPUT_BYTES_MAX: usize = 64 * 1024;
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

    pub fn parse(name: &str) -> Option<Hook> {
        Hook::ALL.into_iter().find(|h| h.name() == name)
    }
}

/// Why an evaluation produced no usable output: the guest errored, broke a
/// limit, or returned something malformed. Always fails closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Fault(pub String);

/// One policy, in any runtime. `evaluate` is synchronous CPU work bounded by
/// the runtime's own limits and `deadline`.
pub trait Policy: Send + Sync {
    fn id(&self) -> &str;
    fn version(&self) -> i64;
    fn evaluate(&self, hook: Hook, input: &Value, deadline: Duration) -> Result<Value, Fault>;
}

/// The active policies of each hook, in evaluation order: shipped defaults,
/// then platform policies, then the customer's own.
pub struct Policies {
    by_hook: Vec<(Hook, Vec<Arc<dyn Policy>>)>,
    slots: Semaphore,
    /// Only the shipped defaults compiled into the binary (microseconds
    /// each) run on the async worker itself; any policy from outside runs
    /// on the blocking pool, so one that spins to its deadline never holds
    /// a worker.
    inline: bool,
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

impl Policies {
    /// The shipped default policies.
    pub fn shipped() -> Result<Policies, String> {
        let mut by_hook = Vec::new();
        for (hook, source) in SHIPPED {
            by_hook.push((hook, vec![default_policy(hook, source)?]));
        }
        Ok(Policies {
            inline: true,
            ..Policies::new(by_hook)
        })
    }

    /// Default policies read from a directory holding one file per hook.
    pub fn from_dir(dir: &Path) -> Result<Policies, String> {
        let mut by_hook = Vec::new();
        for hook in Hook::ALL {
            let path = dir.join(hook.default_file());
            let source = std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read policy {}: {e}", path.display()))?;
            by_hook.push((hook, vec![default_policy(hook, &source)?]));
        }
        Ok(Policies::new(by_hook))
    }

    pub fn new(by_hook: Vec<(Hook, Vec<Arc<dyn Policy>>)>) -> Policies {
        Policies {
            by_hook,
            slots: Semaphore::new(CONCURRENT_EVALUATIONS_MAX),
            inline: false,
        }
    }

    fn active(&self, hook: Hook) -> Vec<Arc<dyn Policy>> {
        self.by_hook
            .iter()
            .filter(|(h, _)| *h == hook)
            .flat_map(|(_, p)| p.iter().cloned())
            .collect()
    }

    /// Runs every active policy of `hook` on `input`, off the async
    /// workers, and returns each policy's output with its reference.
    async fn run(&self, hook: Hook, input: Value) -> Result<Vec<(PolicyRef, Value)>> {
        let policies = self.active(hook);
        let size = serde_json::to_vec(&input)
            .map(|v| v.len())
            .unwrap_or(usize::MAX);
        if size > INPUT_BYTES_MAX {
            return Err(Error::internal(format!(
                "{} input document is {size} bytes",
                hook.name()
            )));
        }
        if self.inline {
            return evaluate_all(hook, &policies, &input);
        }
        let _slot = self.slots.acquire().await.map_err(Error::internal)?;
        tokio::task::spawn_blocking(move || evaluate_all(hook, &policies, &input))
            .await
            .map_err(Error::internal)?
    }

    /// `authorize`: allowed only if every policy allows.
    pub async fn authorize(&self, input: Value) -> Result<()> {
        for (mut policy, out) in self.run(Hook::Authorize, input).await? {
            if let output::Decision::Deny { reason, .. } =
                output::decision(&out).map_err(|f| malformed(&policy, f))?
            {
                policy.reason = reason;
                return Err(Error::PolicyDenied(policy));
            }
        }
        Ok(())
    }

    /// `subaccount.validate`: the first refusal becomes a 422 on its field.
    pub async fn validate(&self, input: Value) -> Result<()> {
        for (mut policy, out) in self.run(Hook::SubaccountValidate, input).await? {
            if let output::Decision::Deny { reason, field } =
                output::decision(&out).map_err(|f| malformed(&policy, f))?
            {
                let field = field.unwrap_or_else(|| "body".into());
                policy.reason = reason.clone();
                return Err(Error::Validation {
                    detail: format!("policy `{}` refused `{field}`: {reason}", policy.id),
                    errors: vec![FieldError::new(field, reason)],
                    policy: Some(policy),
                });
            }
        }
        Ok(())
    }

    /// `visibility`: hidden groups are unioned, `own` rows win over `all`,
    /// any deny denies.
    pub async fn visibility(&self, input: Value) -> Result<View> {
        let mut view = View::default();
        for (mut policy, out) in self.run(Hook::Visibility, input).await? {
            match output::view(&out).map_err(|f| malformed(&policy, f))? {
                Ok(mut v) => {
                    if !v.hidden.is_empty() {
                        policy.reason = format!("hides {:?}", v.hidden);
                        v.hidden_by = Some(policy);
                    }
                    view = view.union(v);
                }
                Err(reason) => {
                    policy.reason = reason;
                    return Err(Error::PolicyDenied(policy));
                }
            }
        }
        Ok(view)
    }

    /// `cascade`: the most specific policy's plan (the last evaluated).
    pub async fn cascade(&self, input: Value) -> Result<(PolicyRef, CascadePlan)> {
        let mut chosen = None;
        for (policy, out) in self.run(Hook::Cascade, input).await? {
            let plan = output::cascade_plan(&out).map_err(|f| malformed(&policy, f))?;
            chosen = Some((policy, plan));
        }
        chosen.ok_or_else(|| Error::internal("no cascade policy is active"))
    }
}

/// Evaluates `policies` in order; the first that fails fails the hook.
fn evaluate_all(
    hook: Hook,
    policies: &[Arc<dyn Policy>],
    input: &Value,
) -> Result<Vec<(PolicyRef, Value)>> {
    let mut outputs = Vec::with_capacity(policies.len());
    for policy in policies {
        let started = Instant::now();
        let result = policy.evaluate(hook, input, EVALUATION_DEADLINE);
        let reference = |reason: String| PolicyRef {
            id: policy.id().to_string(),
            version: policy.version(),
            reason,
        };
        match result {
            Ok(out) => outputs.push((reference(String::new()), out)),
            Err(fault) => {
                tracing::warn!(policy = policy.id(), hook = hook.name(), elapsed_us = started.elapsed().as_micros() as u64, %fault, "policy failed closed");
                return Err(Error::PolicyFailed(reference(format!(
                    "policy `{}` failed on hook `{}` and the operation was refused: {fault}",
                    policy.id(),
                    hook.name()
                ))));
            }
        }
    }
    Ok(outputs)
}

fn default_policy(hook: Hook, source: &str) -> Result<Arc<dyn Policy>, String> {
    let id = format!("default.{}", hook.name());
    rhai_script::RhaiPolicy::compile(&id, 1, source)
        .map(|p| Arc::new(p) as Arc<dyn Policy>)
        .map_err(|e| format!("default policy for `{}` does not compile: {e}", hook.name()))
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

//! The policy lifecycle (API.md "Policies"): upload, versions, activation in
//! enforce or shadow mode, deactivation, rollback; the operator's setting of
//! which hooks customers may use; the decision log; and loading what is
//! active into the registry on every host.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use serde::Deserialize;

use super::{Canopy, Page, Paged, Principal};
use crate::domain::{AccountKind, NameKey};
use crate::policy::{
    Active, Hook, Layers, Mode, Policy, canary::Slots, output, rhai_script::RhaiPolicy, samples,
    wasm::WasmPolicy,
};
use crate::secrets::{new_id, sha256_hex};
use crate::store::{self, decisions, policies::PLATFORM};
use crate::{Error, Result};

/// Largest policy a customer may upload (decoded component or script).
pub const UPLOAD_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Policies one owner (a tree or the platform) may keep.
const POLICIES_PER_OWNER_MAX: i64 = 100;
const NAME_LEN_MAX: usize = 100;
/// Settings key of the hooks customers may attach policies to.
const CUSTOMER_HOOKS_SETTING: &str = "customer_policy_hooks";
/// Customers may attach to these unless the operator says otherwise; a
/// customer cascade plan replacing the default is opt-in.
const CUSTOMER_HOOKS_DEFAULT: [Hook; 3] =
    [Hook::Authorize, Hook::SubaccountValidate, Hook::Visibility];

/// Whose policies: the platform's (operator) or one tree's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    Platform,
    /// A parent account's id.
    Tree(String),
}

impl Owner {
    pub(crate) fn key(&self) -> &str {
        match self {
            Owner::Platform => PLATFORM,
            Owner::Tree(id) => id,
        }
    }
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Upload {
    /// Uploading again under the same name adds the next version.
    pub name: String,
    #[schema(example = "subaccount.validate")]
    pub hook: String,
    #[schema(example = "rhai")]
    pub runtime: String,
    /// The Rhai script (runtime `rhai`).
    pub source: Option<String>,
    /// The Wasm component, base64 (runtime `wasm`).
    pub module: Option<String>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Activation {
    #[schema(example = "enforce")]
    pub mode: String,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicySettings {
    /// Hooks customers may attach policies to (`cascade` lets a customer's
    /// plan replace the default).
    pub customer_hooks: Vec<String>,
}

/// A policy with its versions.
#[derive(Debug, Clone)]
pub struct PolicyInfo {
    pub policy: store::policies::PolicyRow,
    pub versions: Vec<store::policies::VersionRow>,
    /// The active version's circuit breaker on this host, unless closed.
    pub breaker: Option<crate::policy::breaker::Status>,
    /// A customer policy whose hook the operator closed to customers: it
    /// keeps its versions and modes but runs nowhere.
    pub suspended_by_operator: bool,
}

impl PolicyInfo {
    /// Which versions run (enforced, shadow).
    pub fn slots(&self) -> Slots {
        Slots::from_columns(
            self.policy.active_version,
            self.policy.mode.as_deref(),
            self.policy.shadow_version,
        )
    }
}

/// What an upload made.
#[derive(Debug, Clone)]
pub struct Uploaded {
    pub id: String,
    pub name: String,
    pub hook: Hook,
    pub version: i64,
    pub runtime: String,
    pub sha256: String,
}

/// A loaded policy under the name it was uploaded with, so denials and
/// decision records carry it beside the id.
struct Named {
    name: String,
    inner: Arc<dyn Policy>,
}

impl Policy for Named {
    fn id(&self) -> &str {
        self.inner.id()
    }
    fn version(&self) -> i64 {
        self.inner.version()
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn evaluate(
        &self,
        hook: Hook,
        input: &serde_json::Value,
        budget: crate::policy::Budget,
    ) -> Result<serde_json::Value, crate::policy::Fault> {
        self.inner.evaluate(hook, input, budget)
    }
}

/// A policy compiled from an upload or from storage.
fn compile(id: &str, version: i64, runtime: &str, source: &str) -> Result<Arc<dyn Policy>, String> {
    match runtime {
        "rhai" => RhaiPolicy::compile(id, version, source).map(|p| Arc::new(p) as Arc<dyn Policy>),
        "wasm" => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(source.trim())
                .map_err(|e| format!("`module` is not base64: {e}"))?;
            WasmPolicy::load(id, version, &bytes).map(|p| Arc::new(p) as Arc<dyn Policy>)
        }
        other => Err(format!("unknown runtime `{other}`")),
    }
}

/// Runs `policy` on every sample input of `hook`; each output must be a
/// well-formed document of the hook.
fn try_samples(policy: &dyn Policy, hook: Hook) -> Result<(), String> {
    for (i, sample) in samples::of(hook).iter().enumerate() {
        policy
            .evaluate(hook, sample, crate::policy::Budget::DEFAULT)
            .and_then(|out| output::check(hook, &out))
            .map_err(|f| {
                format!(
                    "fails on sample input {} of `{}` (policies/samples): {f}",
                    i + 1,
                    hook.name()
                )
            })?;
    }
    Ok(())
}

/// A policy that could not be loaded from storage: fails closed.
struct Unloadable {
    id: String,
    name: String,
    version: i64,
    why: String,
}

impl Policy for Unloadable {
    fn id(&self) -> &str {
        &self.id
    }
    fn version(&self) -> i64 {
        self.version
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn evaluate(
        &self,
        _: Hook,
        _: &serde_json::Value,
        _: crate::policy::Budget,
    ) -> Result<serde_json::Value, crate::policy::Fault> {
        Err(crate::policy::Fault(format!(
            "could not be loaded: {}",
            self.why
        )))
    }
}

impl Canopy {
    /// Checks that `principal` may manage the policies of `owner`: the
    /// operator for the platform, a parent admin for its tree.
    pub(super) async fn policy_owner(
        &self,
        principal: &Principal,
        parent_id: Option<&str>,
    ) -> Result<Owner> {
        match parent_id {
            None => match principal {
                Principal::Operator => Ok(Owner::Platform),
                _ => Err(Error::Forbidden(
                    "platform policies are managed with the operator token".into(),
                )),
            },
            Some(id) => {
                let actor = self.enter(principal, id).await?;
                if actor.target.kind != AccountKind::Parent {
                    return Err(Error::Forbidden(
                        "policies belong to a tree: manage them on its parent account".into(),
                    ));
                }
                self.authorize(&actor, "policy.manage", &[]).await?;
                Ok(Owner::Tree(actor.target.id.clone()))
            }
        }
    }

    /// The hooks customers may attach policies to.
    pub async fn customer_hooks(&self) -> Result<Vec<Hook>> {
        let mut c = self.store.reader().await?;
        let stored = store::settings::get(&mut c, CUSTOMER_HOOKS_SETTING).await?;
        Ok(match stored {
            Some(text) => serde_json::from_str::<Vec<String>>(&text)
                .unwrap_or_default()
                .iter()
                .filter_map(|h| Hook::parse(h))
                .collect(),
            None => CUSTOMER_HOOKS_DEFAULT.to_vec(),
        })
    }

    /// Sets the hooks customers may use; takes effect on every host.
    pub async fn set_customer_hooks(&self, settings: PolicySettings) -> Result<Vec<Hook>> {
        let mut hooks = Vec::new();
        for (i, name) in settings.customer_hooks.iter().enumerate() {
            let hook = Hook::parse(name).ok_or_else(|| {
                Error::invalid(
                    &format!("customer_hooks[{i}]"),
                    format!("`{name}` is not a hook; use authorize, subaccount.validate, visibility or cascade"),
                )
            })?;
            if !hooks.contains(&hook) {
                hooks.push(hook);
            }
        }
        let text = serde_json::to_string(&hooks.iter().map(|h| h.name()).collect::<Vec<_>>())
            .map_err(Error::internal)?;
        let mut tx = self.store.begin().await?;
        store::settings::put(&mut tx, CUSTOMER_HOOKS_SETTING, &text).await?;
        store::policies::bump_generation(&mut tx).await?;
        tx.commit().await.map_err(store::db_error)?;
        self.reload_policies().await?;
        Ok(hooks)
    }

    /// Validates and stores an upload as a new version (inactive).
    pub async fn upload_policy(
        &self,
        principal: &Principal,
        parent_id: Option<&str>,
        req: Upload,
    ) -> Result<Uploaded> {
        let owner = self.policy_owner(principal, parent_id).await?;
        let name = super::parents::short_text("name", &req.name)?;
        if name.chars().count() > NAME_LEN_MAX || name.chars().any(char::is_control) {
            return Err(Error::invalid(
                "name",
                format!("must be at most {NAME_LEN_MAX} printable characters"),
            ));
        }
        let hook = Hook::parse(&req.hook).ok_or_else(|| {
            Error::invalid(
                "hook",
                "must be one of authorize, subaccount.validate, visibility, cascade",
            )
        })?;
        if let Owner::Tree(_) = owner
            && !self.customer_hooks().await?.contains(&hook)
        {
            return Err(Error::Forbidden(format!(
                "customer policies may not attach to `{}` on this platform; ask the platform operator to allow it",
                hook.name()
            )));
        }
        let (field, source) = match (req.runtime.as_str(), req.source, req.module) {
            ("rhai", Some(source), None) => ("source", source),
            ("wasm", None, Some(module)) => ("module", module),
            ("rhai", _, _) => {
                return Err(Error::invalid(
                    "source",
                    "a Rhai policy sends its script in `source` (and no `module`)",
                ));
            }
            ("wasm", _, _) => {
                return Err(Error::invalid(
                    "module",
                    "a Wasm policy sends its component, base64, in `module` (and no `source`)",
                ));
            }
            _ => return Err(Error::invalid("runtime", "must be `rhai` or `wasm`")),
        };
        let size = if field == "module" {
            source.trim().len() / 4 * 3
        } else {
            source.len()
        };
        if size > UPLOAD_BYTES_MAX {
            return Err(Error::PayloadTooLarge(format!(
                "the policy is about {size} bytes; the limit is {UPLOAD_BYTES_MAX}"
            )));
        }
        let runtime = req.runtime.clone();
        let source = if field == "module" {
            source.split_whitespace().collect::<String>()
        } else {
            source
        };
        // Compiling and running the samples is CPU work: off the workers,
        // with no connection held meanwhile.
        crate::store::held::let_go();
        let checked = {
            let (runtime, source) = (runtime.clone(), source.clone());
            tokio::task::spawn_blocking(move || {
                let policy = compile("upload", 1, &runtime, &source)?;
                try_samples(policy.as_ref(), hook)
            })
            .await
            .map_err(Error::internal)?
        };
        if let Err(reason) = checked {
            return Err(Error::Validation {
                detail: format!("the policy was not stored: {reason}"),
                errors: vec![crate::error::FieldError::new(field, reason)],
                policy: None,
            });
        }
        let sha256 = if field == "module" {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(&source)
                .map_err(Error::internal)?;
            sha256_hex(&bytes)
        } else {
            sha256_hex(source.as_bytes())
        };
        let name_key = NameKey::of(&name).as_str().to_string();
        let now = self.clock.now_us();
        let mut tx = self.store.begin().await?;
        // The count below holds until commit: parallel uploads wait here.
        store::policies::lock_owner(&mut tx, owner.key()).await?;
        let existing = store::policies::by_name(&mut tx, owner.key(), &name_key).await?;
        let id = match existing {
            Some(p) if p.hook != hook.name() => {
                return Err(Error::Conflict(format!(
                    "policy `{}` ({}) is attached to `{}`; a new version cannot change its hook: upload under another name",
                    p.name, p.id, p.hook
                )));
            }
            Some(p) => p.id,
            None => {
                if store::policies::count(&mut tx, owner.key()).await? >= POLICIES_PER_OWNER_MAX {
                    return Err(Error::Conflict(format!(
                        "at most {POLICIES_PER_OWNER_MAX} policies per owner; add versions to an existing one instead"
                    )));
                }
                let id = new_id("pol");
                store::policies::insert(
                    &mut tx,
                    &store::policies::NewPolicy {
                        id: &id,
                        owner: owner.key(),
                        name: &name,
                        name_key: &name_key,
                        hook: hook.name(),
                    },
                    now,
                )
                .await?;
                id
            }
        };
        let version = store::policies::add_version(
            &mut tx,
            &store::policies::NewVersion {
                policy_id: &id,
                runtime: &runtime,
                source: &source,
                sha256: &sha256,
                size_bytes: size as i64,
            },
            now,
        )
        .await?;
        tx.commit().await.map_err(store::db_error)?;
        tracing::info!(policy = %id, version, hook = hook.name(), owner = owner.key(), %runtime, "policy version uploaded");
        Ok(Uploaded {
            id,
            name,
            hook,
            version,
            runtime,
            sha256,
        })
    }

    pub async fn list_policies(
        &self,
        principal: &Principal,
        parent_id: Option<&str>,
    ) -> Result<Vec<PolicyInfo>> {
        let owner = self.policy_owner(principal, parent_id).await?;
        let mut c = self.store.reader().await?;
        let mut out = Vec::new();
        for policy in store::policies::list(&mut c, owner.key()).await? {
            let versions = store::policies::versions(&mut c, &policy.id).await?;
            out.push(self.policy_info(&owner, policy, versions).await?);
        }
        Ok(out)
    }

    pub async fn get_policy(
        &self,
        principal: &Principal,
        parent_id: Option<&str>,
        policy_id: &str,
    ) -> Result<PolicyInfo> {
        let owner = self.policy_owner(principal, parent_id).await?;
        let mut c = self.store.reader().await?;
        let policy = store::policies::get(&mut c, owner.key(), policy_id)
            .await?
            .ok_or_else(|| Error::not_found("policy", policy_id))?;
        let versions = store::policies::versions(&mut c, &policy.id).await?;
        drop(c);
        self.policy_info(&owner, policy, versions).await
    }

    async fn policy_info(
        &self,
        owner: &Owner,
        policy: store::policies::PolicyRow,
        versions: Vec<store::policies::VersionRow>,
    ) -> Result<PolicyInfo> {
        let breaker = policy
            .active_version
            .and_then(|v| self.policies.breakers().status(&policy.id, v));
        let suspended_by_operator = match owner {
            Owner::Tree(_) if policy.active_version.is_some() => {
                let open = self.customer_hooks().await?;
                !Hook::parse(&policy.hook).is_some_and(|h| open.contains(&h))
            }
            _ => false,
        };
        Ok(PolicyInfo {
            policy,
            versions,
            breaker,
            suspended_by_operator,
        })
    }

    /// Activates `version` (an older one is a rollback) in `mode`, or with
    /// `None` deactivates the policy (both its versions). A version
    /// activated in one mode leaves the version running in the other mode
    /// in place (a canary: `policy::canary`). In force on this host when
    /// this returns, and on every other host within its poll interval.
    pub async fn set_policy_active(
        &self,
        principal: &Principal,
        parent_id: Option<&str>,
        policy_id: &str,
        activation: Option<(i64, Activation)>,
    ) -> Result<PolicyInfo> {
        let version = activation.as_ref().map(|(v, _)| *v);
        // The mode is checked once the caller is known to manage the policy.
        self.change_slots(principal, parent_id, policy_id, version, |slots| {
            let Some((version, a)) = &activation else {
                return Ok(Slots::default());
            };
            let mode = Mode::parse(&a.mode)
                .ok_or_else(|| Error::invalid("mode", "must be `enforce` or `shadow`"))?;
            Ok(slots.activate(*version, mode))
        })
        .await
    }

    /// Changes which versions of a policy run with `change`, in one write
    /// transaction; `needs_version` must exist. Returns the policy as it
    /// is now.
    pub(super) async fn change_slots(
        &self,
        principal: &Principal,
        parent_id: Option<&str>,
        policy_id: &str,
        needs_version: Option<i64>,
        change: impl FnOnce(Slots) -> Result<Slots>,
    ) -> Result<PolicyInfo> {
        let owner = self.policy_owner(principal, parent_id).await?;
        let mut tx = self.store.begin().await?;
        // A promote and an activation at once: the second reads what the
        // first wrote instead of overwriting it.
        store::policies::lock(&mut tx, policy_id).await?;
        let policy = store::policies::get(&mut tx, owner.key(), policy_id)
            .await?
            .ok_or_else(|| Error::not_found("policy", policy_id))?;
        if let Some(version) = needs_version
            && !store::policies::has_version(&mut tx, &policy.id, version).await?
        {
            return Err(Error::NotFound(format!(
                "policy `{policy_id}` has no version {version}; list its versions with GET on the policy"
            )));
        }
        let before = Slots::from_columns(
            policy.active_version,
            policy.mode.as_deref(),
            policy.shadow_version,
        );
        let after = change(before)?;
        if let Owner::Tree(_) = owner
            && !after.is_inactive()
        {
            let hook = Hook::parse(&policy.hook).ok_or_else(|| Error::internal("stored hook"))?;
            if !self.customer_hooks().await?.contains(&hook) {
                return Err(Error::Forbidden(format!(
                    "customer policies may not attach to `{}` on this platform; ask the platform operator to allow it",
                    hook.name()
                )));
            }
        }
        store::policies::set_slots(&mut tx, &policy.id, after, self.clock.now_us()).await?;
        tx.commit().await.map_err(store::db_error)?;
        tracing::info!(policy = %policy.id, enforced = ?after.enforced, shadow = ?after.shadow, owner = owner.key(), "policy activation changed");
        self.reload_policies().await?;
        self.get_policy(principal, parent_id, policy_id).await
    }

    /// Loads what is active into the registry if the stored generation
    /// moved since the last load (or always, when `force`). Policies already
    /// loaded at the same version are kept with their compiled code.
    pub async fn sync_policies(&self, force: bool) -> Result<bool> {
        let mut c = self.store.reader().await?;
        let generation = store::policies::generation(&mut c).await?;
        let current = self.policies.layers();
        if !force && generation == current.generation {
            return Ok(false);
        }
        let rows = store::policies::active(&mut c).await?;
        drop(c);
        let customer_hooks = self.customer_hooks().await?;
        let layers = tokio::task::spawn_blocking(move || {
            let mut layers = Layers {
                generation,
                platform: Vec::new(),
                trees: HashMap::new(),
            };
            for row in rows {
                let (Some(hook), Some(mode)) = (Hook::parse(&row.hook), Mode::parse(&row.mode))
                else {
                    continue;
                };
                let is_platform = row.owner == PLATFORM;
                if !is_platform && !customer_hooks.contains(&hook) {
                    continue;
                }
                let policy = current
                    .find(&row.policy_id, row.version)
                    .unwrap_or_else(|| {
                        compile(&row.policy_id, row.version, &row.runtime, &row.source)
                            .map(|inner| Arc::new(Named { name: row.name.clone(), inner }) as Arc<dyn Policy>)
                            .unwrap_or_else(|why| {
                                tracing::error!(policy = %row.policy_id, version = row.version, %why, "stored policy does not load; it fails closed");
                                Arc::new(Unloadable {
                                    id: row.policy_id.clone(),
                                    name: row.name.clone(),
                                    version: row.version,
                                    why,
                                })
                            })
                    });
                let active = Active { hook, mode, policy };
                if is_platform {
                    layers.platform.push(active);
                } else {
                    layers.trees.entry(row.owner).or_default().push(active);
                }
            }
            layers
        })
        .await
        .map_err(Error::internal)?;
        self.policies.install(layers);
        tracing::info!(generation, "policies loaded");
        Ok(true)
    }

    pub async fn reload_policies(&self) -> Result<()> {
        self.sync_policies(true).await.map(|_| ())
    }

    /// The decision log of an account: for a parent, its whole tree; for
    /// the operator (`account_id: None`), every decision.
    pub async fn list_decisions(
        &self,
        principal: &Principal,
        account_id: Option<&str>,
        mut filter: decisions::Filter,
        page: &Page,
    ) -> Result<Paged<decisions::DecisionRow>> {
        match account_id {
            None => {
                if !matches!(principal, Principal::Operator) {
                    return Err(Error::Forbidden(
                        "the platform's decision log is read with the operator token".into(),
                    ));
                }
            }
            Some(id) => {
                let actor = self.enter(principal, id).await?;
                self.authorize(&actor, "decision.list", &[]).await?;
                if actor.target.kind == AccountKind::Parent {
                    filter.tree_id = Some(actor.target.id.clone());
                    filter.account_id = filter.account_id.filter(|a| !a.is_empty());
                } else {
                    filter.tree_id = Some(actor.tree_parent().id.clone());
                    filter.account_id = Some(actor.target.id.clone());
                }
            }
        }
        let mut c = self.store.log_reader().await?;
        let rows = decisions::list(&mut c, &filter, page).await?;
        Ok(Paged::from_fetch(rows, page, |r| {
            super::keyset_cursor(crate::clock::from_us(r.created_at_us), &r.id)
        }))
    }
}

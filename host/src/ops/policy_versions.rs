//! Canary versions and inspection of a policy (issue 11): promoting the
//! shadow version to enforcement in one step, clearing the shadow, reading
//! an uploaded version's source, and deleting a policy that no longer runs.

use base64::Engine as _;

use super::policies::PolicyInfo;
use super::{Canopy, Principal};
use crate::policy::canary::Slots;
use crate::store;
use crate::{Error, Result};

/// An uploaded version as it was uploaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicySource {
    /// The Rhai script's text.
    Rhai(String),
    /// The Wasm component's bytes.
    Wasm(Vec<u8>),
}

/// What still runs of a policy, in words, for a refusal.
fn running(slots: Slots) -> String {
    match (slots.enforced, slots.shadow) {
        (Some(e), Some(s)) => format!("version {e} is enforced and version {s} runs in shadow"),
        (Some(e), None) => format!("version {e} is enforced"),
        (None, Some(s)) => format!("version {s} runs in shadow"),
        (None, None) => "nothing".into(),
    }
}

impl Canopy {
    /// The shadow version becomes the enforced one and the version enforced
    /// until now is retired, in one write.
    pub async fn promote_policy(
        &self,
        principal: &Principal,
        parent_id: Option<&str>,
        policy_id: &str,
    ) -> Result<PolicyInfo> {
        self.change_slots(principal, parent_id, policy_id, None, |slots| {
            slots.promote().ok_or_else(|| {
                Error::Conflict(format!(
                    "policy `{policy_id}` has no version in shadow to promote; activate one with `{{\"mode\": \"shadow\"}}` first"
                ))
            })
        })
        .await
    }

    /// Stops the shadow version; the enforced one keeps running.
    pub async fn clear_policy_shadow(
        &self,
        principal: &Principal,
        parent_id: Option<&str>,
        policy_id: &str,
    ) -> Result<PolicyInfo> {
        self.change_slots(principal, parent_id, policy_id, None, |slots| {
            Ok(slots.clear_shadow())
        })
        .await
    }

    /// The source of one version: Rhai text or Wasm bytes.
    pub async fn policy_source(
        &self,
        principal: &Principal,
        parent_id: Option<&str>,
        policy_id: &str,
        version: i64,
    ) -> Result<PolicySource> {
        let owner = self.policy_owner(principal, parent_id).await?;
        let mut c = self.store.reader().await?;
        let policy = store::policies::get(&mut c, owner.key(), policy_id)
            .await?
            .ok_or_else(|| Error::not_found("policy", policy_id))?;
        let (runtime, source) = store::policies::source(&mut c, &policy.id, version)
            .await?
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "policy `{policy_id}` has no version {version}; list its versions with GET on the policy"
                ))
            })?;
        match runtime.as_str() {
            "wasm" => base64::engine::general_purpose::STANDARD
                .decode(source.trim())
                .map(PolicySource::Wasm)
                .map_err(Error::internal),
            _ => Ok(PolicySource::Rhai(source)),
        }
    }

    /// Deletes a policy and all its versions, only while none of its
    /// versions runs (enforced or in shadow).
    pub async fn delete_policy(
        &self,
        principal: &Principal,
        parent_id: Option<&str>,
        policy_id: &str,
    ) -> Result<()> {
        let owner = self.policy_owner(principal, parent_id).await?;
        let mut tx = self.store.begin().await?;
        if store::policies::delete_inactive(&mut tx, owner.key(), policy_id, self.clock.now_us())
            .await?
        {
            tx.commit().await.map_err(store::db_error)?;
            tracing::info!(policy = %policy_id, owner = owner.key(), "policy deleted");
            return Ok(());
        }
        let policy = store::policies::get(&mut tx, owner.key(), policy_id)
            .await?
            .ok_or_else(|| Error::not_found("policy", policy_id))?;
        let slots = Slots::from_columns(
            policy.active_version,
            policy.mode.as_deref(),
            policy.shadow_version,
        );
        Err(Error::Conflict(format!(
            "policy `{}` ({}) still runs: {}; deactivate it first (POST .../policies/{}/deactivate), then delete it",
            policy.name,
            policy.id,
            running(slots),
            policy.id
        )))
    }
}

//! Who is acting, and where they may act (invariant 2).

use std::sync::OnceLock;

use serde_json::Value;

use super::Canopy;
use crate::domain::{Account, AccountKind, Relation, Role, Status};
use crate::policy::input::{self, PrincipalDoc};
use crate::policy::{Scope, View};
use crate::secrets::{hashes_equal, sha256_hex};
use crate::store::{self, credentials::TokenOwner};
use crate::{Error, Result};

/// An authenticated caller.
#[derive(Debug, Clone)]
pub enum Principal {
    Operator,
    /// A user through an API key (bound to one account) or a session.
    User {
        user_id: String,
        key: Option<KeyGrant>,
    },
}

impl Principal {
    /// A stable identity for scoping idempotency keys.
    pub fn identity(&self) -> String {
        match self {
            Principal::Operator => "operator".into(),
            Principal::User { user_id, key } => format!(
                "{user_id}:{}",
                key.as_ref()
                    .map(|k| k.account_id.as_str())
                    .unwrap_or("session")
            ),
        }
    }
}

/// What an API key grants: its user's role in the account it was made for.
#[derive(Debug, Clone)]
pub struct KeyGrant {
    pub key_id: String,
    pub account_id: String,
    pub role: Role,
}

/// A user acting in one account, after reach was checked.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user_id: String,
    pub role: Role,
    /// The account the user belongs to and acts from.
    pub home: Account,
    pub relation: Relation,
    /// The account acted in: `home` itself or one of its sub-accounts.
    pub target: Account,
    /// The target's parent, when the target is a sub-account.
    pub parent: Option<Account>,
    /// The target as policies see it, built once for every hook the
    /// request asks.
    target_doc: OnceLock<Value>,
}

impl Actor {
    pub fn principal_doc(&self) -> PrincipalDoc {
        PrincipalDoc {
            user_id: Some(self.user_id.clone()),
            role: Some(self.role),
            account_id: Some(self.home.id.clone()),
            account_kind: Some(self.home.kind),
            module: self.home.tree.module,
            relation: self.relation,
        }
    }

    pub fn target_doc(&self) -> Value {
        self.target_doc
            .get_or_init(|| input::account(&self.target, self.parent.as_ref()))
            .clone()
    }

    /// The tree's parent: the target itself or its parent.
    pub fn tree_parent(&self) -> &Account {
        self.parent.as_ref().unwrap_or(&self.target)
    }
}

const UNKNOWN_TOKEN: &str = "the bearer token is unknown, expired or revoked; send `Authorization: Bearer <API key or session token>`";

impl Canopy {
    /// Resolves a bearer token to its principal.
    pub async fn authenticate(&self, token: &str) -> Result<Principal> {
        let hash = sha256_hex(token.as_bytes());
        let operator = self
            .operator_token_hash
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if hashes_equal(&hash, &operator) {
            return Ok(Principal::Operator);
        }
        let mut c = self.store.reader().await?;
        match store::credentials::token_owner(&mut c, &hash, self.clock.now_us()).await? {
            Some(TokenOwner::ApiKey {
                key_id,
                user_id,
                account_id,
                role: Some(role),
                last_used_us,
            }) => {
                self.note_key_use(&key_id, last_used_us);
                Ok(Principal::User {
                    user_id,
                    key: Some(KeyGrant {
                        key_id,
                        account_id,
                        role,
                    }),
                })
            }
            Some(TokenOwner::Session { user_id }) => Ok(Principal::User { user_id, key: None }),
            // A key whose membership was removed (its keys are revoked
            // then too), or no key at all.
            Some(TokenOwner::ApiKey { role: None, .. }) | None => {
                Err(Error::Unauthenticated(UNKNOWN_TOKEN.into()))
            }
        }
    }

    /// Checks that `principal` may act in `account_id`: its own account is
    /// usable (403), and the account is its own or, for a parent admin, one
    /// of its sub-accounts (404 otherwise: no existence leak).
    pub async fn enter(&self, principal: &Principal, account_id: &str) -> Result<Actor> {
        let Principal::User { user_id, key } = principal else {
            return Err(Error::Forbidden(
                "the operator token acts on /v1/operator routes; use an API key of the account here".into(),
            ));
        };
        let mut c = self.store.reader().await?;
        let not_found = || Error::not_found("account", account_id);
        // Accounts already read, so none is read twice.
        let mut known: Vec<Account> = Vec::new();
        let (home, role) = match key {
            Some(grant) => {
                // An API key's account, the target and the key account's
                // parent: one query.
                known = store::accounts::family(&mut c, &grant.account_id, account_id).await?;
                let home = find(&known, &grant.account_id).ok_or_else(not_found)?;
                (home, grant.role)
            }
            None => {
                // A session: the user's membership in the account, or as a
                // parent admin in its parent.
                let target = store::accounts::get(&mut c, account_id)
                    .await?
                    .ok_or_else(not_found)?;
                known.push(target.clone());
                if let Some(role) =
                    store::credentials::accepted_role(&mut c, user_id, &target.id).await?
                {
                    (target, role)
                } else {
                    let parent_id = target.parent_id.clone().ok_or_else(not_found)?;
                    match store::credentials::accepted_role(&mut c, user_id, &parent_id).await? {
                        Some(Role::Admin) => {
                            let parent = store::accounts::get(&mut c, &parent_id)
                                .await?
                                .ok_or_else(not_found)?;
                            (parent, Role::Admin)
                        }
                        _ => return Err(not_found()),
                    }
                }
            }
        };
        if !home.is_usable() {
            return Err(Error::AccountSuspended(format!(
                "your account `{}` is {}; its users cannot act until it is reactivated",
                home.id, home.status
            )));
        }
        let (relation, target, parent) = if home.id == account_id {
            let parent = match &home.parent_id {
                Some(p) => match find(&known, p) {
                    Some(parent) => Some(parent),
                    None => store::accounts::get(&mut c, p).await?,
                },
                None => None,
            };
            (Relation::Own, home.clone(), parent)
        } else {
            let target = match find(&known, account_id) {
                Some(target) => target,
                None => store::accounts::get(&mut c, account_id)
                    .await?
                    .ok_or_else(not_found)?,
            };
            if target.parent_id.as_deref() != Some(home.id.as_str()) || role != Role::Admin {
                return Err(not_found());
            }
            (Relation::ParentOf, target, Some(home.clone()))
        };
        Ok(Actor {
            user_id: user_id.clone(),
            role,
            home,
            relation,
            target,
            parent,
            target_doc: OnceLock::new(),
        })
    }

    /// `authorize` for an actor's action; `fields` names what a change sets.
    pub async fn authorize(&self, actor: &Actor, action: &str, fields: &[&str]) -> Result<()> {
        let doc = input::authorize(&actor.principal_doc(), action, actor.target_doc(), fields);
        self.policies
            .authorize(&actor_scope(actor, action), doc)
            .await
    }

    /// `authorize` for an operator action (shipped and platform policies).
    pub async fn authorize_operator(&self, action: &str, target: Option<&Account>) -> Result<()> {
        let scope = operator_scope(target, action);
        let target = target
            .map(|t| input::account(t, None))
            .unwrap_or(Value::Null);
        self.policies
            .authorize(
                &scope,
                input::authorize(&PrincipalDoc::operator(), action, target, &[]),
            )
            .await
    }

    /// `visibility` of `resource` in the actor's target.
    pub async fn view(&self, actor: &Actor, action: &str, resource: &str) -> Result<View> {
        let doc = input::visibility(&actor.principal_doc(), action, resource, actor.target_doc());
        self.policies
            .visibility(&actor_scope(actor, action), doc)
            .await
    }

    pub async fn view_operator(
        &self,
        action: &str,
        resource: &str,
        target: Option<&Account>,
    ) -> Result<View> {
        let scope = operator_scope(target, action);
        let target = target
            .map(|t| input::account(t, None))
            .unwrap_or(Value::Null);
        self.policies
            .visibility(
                &scope,
                input::visibility(&PrincipalDoc::operator(), action, resource, target),
            )
            .await
    }

    /// The feature switch every sub-account route needs.
    pub fn require_subaccounts_enabled(&self, account: &Account) -> Result<()> {
        if account.tree.subaccounts_enabled {
            Ok(())
        } else {
            Err(Error::FeatureNotEnabled(
                "sub-accounts are not enabled for this account; ask the platform operator to enable them".into(),
            ))
        }
    }
}

fn find(known: &[Account], id: &str) -> Option<Account> {
    known.iter().find(|a| a.id == id).cloned()
}

/// Actions on policies and the decision log: customer policies never run
/// on them, nor platform policies on the operator's own (MISSION.md).
fn manages_policies(action: &str) -> bool {
    action.starts_with("policy.") || action == "decision.list"
}

/// The policy scope of an actor's action: its tree.
pub fn actor_scope(actor: &Actor, action: &str) -> Scope {
    let scope = Scope::tree(&actor.tree_parent().id, &actor.target.id);
    if manages_policies(action) {
        scope.managing()
    } else {
        scope
    }
}

fn operator_scope(target: Option<&Account>, action: &str) -> Scope {
    let scope = Scope::operator(target.map(|t| t.id.as_str()));
    if manages_policies(action) {
        scope.managing()
    } else {
        scope
    }
}

/// A sub-account actions need: core rule, not policy (invariant 1).
pub fn require_subaccount(account: &Account, what: &str) -> Result<()> {
    if account.kind == AccountKind::Subaccount {
        Ok(())
    } else {
        Err(Error::Forbidden(format!(
            "{what} applies to sub-accounts; parent accounts are managed by the platform operator"
        )))
    }
}

/// Refuses changes to an account that is already deleted.
pub fn require_not_deleted(account: &Account) -> Result<()> {
    if account.status == Status::Deleted {
        Err(Error::Conflict(format!(
            "account `{}` is deleted and cannot change",
            account.id
        )))
    } else {
        Ok(())
    }
}

//! Reading and changing accounts, and creating and listing sub-accounts.

use rust_decimal::Decimal;
use serde::Deserialize;

use super::access::{require_not_deleted, require_subaccount};
use super::parents::{IssuedInvitation, amount, channels, short_text, timezone};
use super::{Actor, Canopy, Page, Paged, Principal, keyset_cursor};
use crate::domain::account::NAME_LEN_MAX;
use crate::domain::names::visible_text;
use crate::domain::{
    Account, AccountKind, BillingType, CreditMode, EmailAddress, LowBalanceAlert, MoneyText,
    NameKey, Relation, Role, Status,
};
use crate::policy::input::{self, SubmittedFields};
use crate::policy::{Scope, View};
use crate::secrets::new_id;
use crate::store;
use crate::store::accounts::{NewAccount, SubaccountFilter, Value, json_text, micros};
use crate::{Error, Result};

/// Sub-accounts one parent may hold (not counting deleted ones).
pub const SUBACCOUNTS_MAX: i64 = 10_000;
/// Addresses one low-balance alert may go to.
const ALERT_EMAILS_MAX: usize = 10;

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSubaccount {
    pub name: String,
    pub email: String,
    pub external_id: Option<String>,
    /// Send an invitation (default true): the account stays `invited` until
    /// it is accepted.
    pub invite: Option<bool>,
    /// Default `["sms"]`; each must be enabled on the parent.
    pub channels: Option<Vec<String>>,
    pub timezone: Option<String>,
    pub credit: Option<Credit>,
}

/// How a sub-account is funded, chosen at creation.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credit {
    #[schema(example = "assigned_budget")]
    pub mode: String,
    #[schema(value_type = Option<String>, example = "0")]
    pub initial_credit: Option<MoneyText>,
    pub low_balance_alert: Option<AlertSettings>,
    #[schema(value_type = Option<String>)]
    pub monthly_usage_limit: Option<MoneyText>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertSettings {
    #[schema(value_type = String, example = "10.00")]
    pub threshold: MoneyText,
    pub emails: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountChanges {
    pub name: Option<String>,
    pub timezone: Option<String>,
    pub external_id: Option<String>,
    pub low_balance_alert: Option<AlertSettings>,
    /// Parent admin only.
    pub email: Option<String>,
    /// Parent admin only; within the parent's channels.
    pub channels: Option<Vec<String>>,
    /// Parent admin only; shared-usage sub-accounts where the operator
    /// enabled monthly usage limits.
    #[schema(value_type = Option<String>)]
    pub monthly_usage_limit: Option<MoneyText>,
}

impl AccountChanges {
    fn field_names(&self) -> Vec<&'static str> {
        let mut f = Vec::new();
        let mut add = |set: bool, name| {
            if set {
                f.push(name)
            }
        };
        add(self.name.is_some(), "name");
        add(self.timezone.is_some(), "timezone");
        add(self.external_id.is_some(), "external_id");
        add(self.low_balance_alert.is_some(), "low_balance_alert");
        add(self.email.is_some(), "email");
        add(self.channels.is_some(), "channels");
        add(self.monthly_usage_limit.is_some(), "monthly_usage_limit");
        f
    }
}

/// A created sub-account, with its invitation when one was sent.
#[derive(Debug, Clone)]
pub struct CreatedSubaccount {
    pub account: Account,
    /// What the creator may see of it.
    pub view: View,
    pub invitation: Option<IssuedInvitation>,
}

fn name(value: &str) -> Result<String> {
    let value = value.trim();
    visible_text(value).map_err(|r| Error::invalid("name", r))?;
    if value.chars().count() > NAME_LEN_MAX {
        return Err(Error::invalid(
            "name",
            format!("must be at most {NAME_LEN_MAX} characters"),
        ));
    }
    Ok(value.to_string())
}

fn alert(settings: &AlertSettings, currency: &str) -> Result<LowBalanceAlert> {
    if settings.emails.is_empty() || settings.emails.len() > ALERT_EMAILS_MAX {
        return Err(Error::invalid(
            "low_balance_alert.emails",
            format!("must list 1 to {ALERT_EMAILS_MAX} addresses"),
        ));
    }
    let emails = settings
        .emails
        .iter()
        .map(|e| EmailAddress::parse(e).map(|e| e.as_str().to_string()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|r| Error::invalid("low_balance_alert.emails", r))?;
    Ok(LowBalanceAlert {
        threshold: amount("low_balance_alert.threshold", &settings.threshold, currency)?,
        emails,
    })
}

fn channels_within(parent: &Account, list: &[String]) -> Result<Vec<String>> {
    let list = channels("channels", list)?;
    if let Some(missing) = list.iter().find(|c| !parent.channels.contains(c)) {
        return Err(Error::invalid(
            "channels",
            format!(
                "channel `{missing}` is not enabled on the parent account (it has {:?})",
                parent.channels
            ),
        ));
    }
    Ok(list)
}

impl Canopy {
    /// One account, as the actor may see it.
    pub async fn get_account(&self, principal: &Principal, id: &str) -> Result<(Account, View)> {
        let actor = self.enter(principal, id).await?;
        self.authorize(&actor, "account.read", &[]).await?;
        let view = self.view(&actor, "account.read", "account").await?;
        Ok((actor.target, view))
    }

    pub async fn create_subaccount(
        &self,
        principal: &Principal,
        parent_id: &str,
        req: NewSubaccount,
    ) -> Result<CreatedSubaccount> {
        let actor = self.enter(principal, parent_id).await?;
        self.require_subaccounts_enabled(&actor.target)?;
        if actor.target.kind != AccountKind::Parent {
            return Err(Error::Forbidden(
                "a sub-account cannot create sub-accounts".into(),
            ));
        }
        let parent = &actor.target;
        let credit = req.credit.clone().unwrap_or(Credit {
            mode: CreditMode::AssignedBudget.as_str().into(),
            initial_credit: None,
            low_balance_alert: None,
            monthly_usage_limit: None,
        });
        if credit.monthly_usage_limit.is_some() && !parent.tree.monthly_usage_limit_enabled {
            return Err(Error::FeatureNotEnabled(
                "monthly usage limits are not enabled for this account; ask the platform operator to enable them".into(),
            ));
        }
        let fields = [
            "name",
            "email",
            "external_id",
            "channels",
            "timezone",
            "credit",
        ];
        self.authorize(&actor, "subaccount.create", &fields).await?;

        let name = name(&req.name)?;
        let email = EmailAddress::parse(&req.email).map_err(|r| Error::invalid("email", r))?;
        let external_id = req
            .external_id
            .as_deref()
            .map(|e| short_text("external_id", e))
            .transpose()?;
        let channels = channels_within(
            parent,
            req.channels.as_deref().unwrap_or(&["sms".to_string()]),
        )?;
        let timezone = timezone(req.timezone.as_deref().unwrap_or(&parent.timezone))?;
        let mode = CreditMode::parse(&credit.mode).ok_or_else(|| {
            Error::invalid("credit.mode", "must be `assigned_budget` or `shared_usage`")
        })?;
        let (monthly_usage_limit, low_balance_alert, initial_credit) = match mode {
            CreditMode::SharedUsage => {
                if parent.billing_type != Some(BillingType::Postpaid) {
                    return Err(Error::invalid(
                        "credit.mode",
                        "shared usage needs a postpaid parent; use `assigned_budget`",
                    ));
                }
                if credit.initial_credit.is_some() || credit.low_balance_alert.is_some() {
                    return Err(Error::invalid(
                        "credit",
                        "`initial_credit` and `low_balance_alert` apply to assigned budgets only",
                    ));
                }
                (
                    credit
                        .monthly_usage_limit
                        .as_ref()
                        .map(|l| amount("credit.monthly_usage_limit", l, &parent.currency))
                        .transpose()?,
                    None,
                    None,
                )
            }
            CreditMode::AssignedBudget => {
                if credit.monthly_usage_limit.is_some() {
                    return Err(Error::invalid(
                        "credit.monthly_usage_limit",
                        "applies to shared usage only",
                    ));
                }
                let initial = match &credit.initial_credit {
                    Some(c) => amount("credit.initial_credit", c, &parent.currency)?,
                    None => crate::domain::Amount::ZERO,
                };
                (
                    None,
                    credit
                        .low_balance_alert
                        .as_ref()
                        .map(|a| alert(a, &parent.currency))
                        .transpose()?,
                    (initial.decimal() > Decimal::ZERO).then_some(initial),
                )
            }
        };
        let submitted = SubmittedFields {
            name: Some(name.clone()),
            email: Some(email.as_str().to_string()),
            external_id: external_id.clone(),
            channels: Some(channels.clone()),
            timezone: Some(timezone.clone()),
        };
        let parent_doc = input::account(parent, None);
        self.policies
            .validate(
                &Scope::tree(&parent.id, &parent.id),
                input::validate(
                    &actor.principal_doc(),
                    "subaccount.create",
                    parent_doc.clone(),
                    parent_doc,
                    &submitted,
                ),
            )
            .await?;

        let invite = req.invite.unwrap_or(true);
        let now_us = self.clock.now_us();
        let new = NewAccount {
            id: new_id("acct"),
            kind: AccountKind::Subaccount,
            parent_id: Some(parent.id.clone()),
            name_key: NameKey::of(&name).as_str().to_string(),
            name,
            email_key: email.key().as_str().to_string(),
            email: email.as_str().to_string(),
            external_id,
            company_name: parent.company_name.clone(),
            status: if invite {
                Status::Invited
            } else {
                Status::Active
            },
            timezone,
            channels,
            billing_type: None,
            currency: None,
            region: None,
            prices: None,
            monthly_credit_limit: None,
            credit_mode: Some(mode),
            monthly_usage_limit,
            low_balance_alert,
            now_us,
        };
        // Decided before the write, so a denied view changes nothing.
        let view = self.view(&actor, "account.read", "account").await?;
        let mut tx = self.store.begin().await?;
        // The count below, and the currency of any initial credit, hold
        // until commit: parallel creations in the tree wait here.
        self.lock_tree(&mut tx, parent).await?;
        let max = self.settings.subaccounts_max;
        if store::accounts::count_subaccounts(&mut tx, &parent.id).await? >= max {
            return Err(Error::Conflict(format!(
                "this parent already has {max} sub-accounts, the most one parent may hold; delete unused ones first"
            )));
        }
        store::accounts::insert(&mut tx, &new).await?;
        super::webhooks::account_created(&mut tx, &new, now_us).await?;
        let invitation = if invite {
            Some(
                self.issue_invitation(&mut tx, &new.id, &email, Role::Admin, None, now_us)
                    .await?,
            )
        } else {
            None
        };
        let account = store::accounts::get(&mut tx, &new.id)
            .await?
            .ok_or_else(|| Error::internal("sub-account vanished"))?;
        // Money last (API.md's order): a 402 here rolls the creation back.
        if let Some(initial) = initial_credit {
            self.initial_credit(&mut tx, parent, &account, initial, now_us)
                .await?;
        }
        tx.commit().await.map_err(store::db_error)?;
        tracing::info!(account = %account.id, parent = %parent.id, "sub-account created");
        Ok(CreatedSubaccount {
            account,
            view,
            invitation,
        })
    }

    pub async fn list_subaccounts(
        &self,
        principal: &Principal,
        parent_id: &str,
        filter: &SubaccountFilter,
        page: &Page,
    ) -> Result<(Paged<Account>, View)> {
        let actor = self.enter(principal, parent_id).await?;
        self.require_subaccounts_enabled(&actor.target)?;
        if actor.target.kind != AccountKind::Parent {
            return Err(Error::Forbidden("a sub-account has no sub-accounts".into()));
        }
        self.authorize(&actor, "subaccount.list", &[]).await?;
        let view = self.view(&actor, "subaccount.list", "subaccounts").await?;
        let mut c = self.store.reader().await?;
        let rows = store::accounts::list_subaccounts(&mut c, parent_id, filter, page).await?;
        Ok((
            Paged::from_fetch(rows, page, |a| keyset_cursor(a.created_at, &a.id)),
            view,
        ))
    }

    /// Changes an account's own settings; on a sub-account, its parent's
    /// admin may also change the e-mail, channels and usage limit.
    pub async fn update_account(
        &self,
        principal: &Principal,
        id: &str,
        req: AccountChanges,
    ) -> Result<(Account, View)> {
        let actor = self.enter(principal, id).await?;
        require_not_deleted(&actor.target)?;
        let by_parent = actor.relation == Relation::ParentOf;
        let parent_only = [
            ("email", req.email.is_some()),
            ("channels", req.channels.is_some()),
            ("monthly_usage_limit", req.monthly_usage_limit.is_some()),
        ];
        if let Some((field, _)) = parent_only.iter().find(|(_, set)| *set)
            && !by_parent
        {
            return Err(Error::Forbidden(format!(
                "`{field}` of a sub-account is set by its parent account's admin; sub-accounts and parents set their own name, timezone, external id and alerts"
            )));
        }
        let target = &actor.target;
        if req.monthly_usage_limit.is_some() && !target.tree.monthly_usage_limit_enabled {
            return Err(Error::FeatureNotEnabled(
                "monthly usage limits are not enabled for this account; ask the platform operator to enable them".into(),
            ));
        }
        self.authorize(&actor, "account.update", &req.field_names())
            .await?;

        let mut changes: Vec<(&'static str, Value)> = Vec::new();
        let mut submitted = SubmittedFields::default();
        if let Some(n) = &req.name {
            let n = name(n)?;
            if target.kind == AccountKind::Parent {
                short_text("name", &n)?;
            }
            changes.push((
                "name_key",
                Value::Text(Some(NameKey::of(&n).as_str().into())),
            ));
            changes.push(("name", Value::Text(Some(n.clone()))));
            submitted.name = Some(n);
        }
        if let Some(tz) = &req.timezone {
            let tz = timezone(tz)?;
            changes.push(("timezone", Value::Text(Some(tz.clone()))));
            submitted.timezone = Some(tz);
        }
        if let Some(e) = &req.external_id {
            let e = short_text("external_id", e)?;
            changes.push(("external_id", Value::Text(Some(e.clone()))));
            submitted.external_id = Some(e);
        }
        if let Some(settings) = &req.low_balance_alert {
            if target.credit_mode != Some(CreditMode::AssignedBudget) {
                return Err(Error::invalid(
                    "low_balance_alert",
                    "applies to sub-accounts with an assigned budget only",
                ));
            }
            let a = alert(settings, &target.currency)?;
            changes.push((
                "low_balance_threshold_micros",
                Value::Int(micros(Some(a.threshold))),
            ));
            changes.push((
                "low_balance_emails",
                Value::Text(Some(json_text(&a.emails))),
            ));
        }
        if let Some(e) = &req.email {
            let e = EmailAddress::parse(e).map_err(|r| Error::invalid("email", r))?;
            changes.push(("email_key", Value::Text(Some(e.key().as_str().into()))));
            changes.push(("email", Value::Text(Some(e.as_str().into()))));
            submitted.email = Some(e.as_str().into());
        }
        if let Some(list) = &req.channels {
            let list = channels_within(actor.tree_parent(), list)?;
            changes.push(("channels", Value::Text(Some(json_text(&list)))));
            submitted.channels = Some(list);
        }
        if let Some(limit) = &req.monthly_usage_limit {
            if target.credit_mode != Some(CreditMode::SharedUsage) {
                return Err(Error::invalid(
                    "monthly_usage_limit",
                    "applies to shared-usage sub-accounts only",
                ));
            }
            changes.push((
                "monthly_usage_limit_micros",
                Value::Int(micros(Some(amount(
                    "monthly_usage_limit",
                    limit,
                    &target.currency,
                )?))),
            ));
        }
        if target.kind == AccountKind::Subaccount {
            let target_doc = actor.target_doc();
            let parent_doc = input::account(actor.tree_parent(), None);
            self.policies
                .validate(
                    &crate::ops::access::actor_scope(&actor, "subaccount.update"),
                    input::validate(
                        &actor.principal_doc(),
                        "subaccount.update",
                        target_doc,
                        parent_doc,
                        &submitted,
                    ),
                )
                .await?;
        }
        // Decided before the write, so a denied view changes nothing.
        let view = self.view(&actor, "account.read", "account").await?;
        let mut tx = self.store.begin().await?;
        store::accounts::update(&mut tx, &target.id, &changes, self.clock.now_us()).await?;
        let account = store::accounts::get(&mut tx, &target.id)
            .await?
            .ok_or_else(|| Error::internal("account vanished"))?;
        tx.commit().await.map_err(store::db_error)?;
        Ok((account, view))
    }

    /// Enters a sub-account for a status change by its parent's admin.
    pub(crate) async fn enter_subaccount(
        &self,
        principal: &Principal,
        id: &str,
        action: &str,
    ) -> Result<Actor> {
        let actor = self.enter(principal, id).await?;
        self.require_subaccounts_enabled(&actor.target)?;
        require_subaccount(&actor.target, action)?;
        self.authorize(&actor, action, &[]).await?;
        Ok(actor)
    }
}

//! Operator operations on parent accounts: create, list, change the tree's
//! switches, and the invitations, keys and cascade that come with them.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{Canopy, Page, Paged, access::require_not_deleted, keyset_cursor};
use crate::domain::account::{CHANNELS_MAX, SHORT_TEXT_LEN_MAX};
use crate::domain::names::visible_text;
use crate::domain::{
    Account, AccountKind, Amount, BillingType, Currency, EmailAddress, Module, MoneyText, NameKey,
    Role, Status,
};
use crate::policy::View;
use crate::secrets::{new_id, new_secret, sha256_hex};
use crate::store::accounts::{
    NewAccount, ParentFilter, SubaccountFilter, Value, json_text, micros, prices_text,
};
use crate::store::credentials::{ApiKey, Invitation, User};
use crate::store::{self, Conn};
use crate::{Error, Result};

/// Most channels a price list may name.
const PRICES_MAX: usize = CHANNELS_MAX;
/// Longest channel name.
const CHANNEL_LEN_MAX: usize = 32;

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewParent {
    pub name: String,
    pub company_name: String,
    pub email: String,
    #[schema(example = "prepaid")]
    pub billing_type: String,
    #[schema(example = "USD")]
    pub currency: String,
    pub timezone: Option<String>,
    pub region: Option<String>,
    /// Postpaid only.
    #[schema(value_type = Option<String>, example = "1000.00")]
    pub monthly_credit_limit: Option<MoneyText>,
    /// Price per message by channel, e.g. `{"sms": "0.0075"}`.
    #[schema(value_type = BTreeMap<String, String>)]
    #[serde(default)]
    pub prices: BTreeMap<String, MoneyText>,
    /// Default `["sms"]`.
    pub channels: Option<Vec<String>>,
    pub admin: NewAdmin,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAdmin {
    pub email: String,
    pub name: String,
}

/// What creating a parent hands back, once.
#[derive(Debug, Clone)]
pub struct CreatedParent {
    pub account: Account,
    pub admin: User,
    pub api_key: IssuedKey,
    pub invitation: IssuedInvitation,
}

#[derive(Debug, Clone)]
pub struct IssuedKey {
    pub id: String,
    pub secret: String,
}

#[derive(Debug, Clone)]
pub struct IssuedInvitation {
    /// The invitation's id (`inv_...`): resend or revoke it by this.
    pub id: String,
    pub token: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ParentChanges {
    pub subaccounts_enabled: Option<bool>,
    #[schema(example = "enterprise")]
    pub subaccount_module: Option<String>,
    pub monthly_usage_limit_enabled: Option<bool>,
    /// Lets the parent's admin top up the parent (prepaid only; default
    /// false: Canopy takes no payment).
    pub self_topups_enabled: Option<bool>,
    #[schema(value_type = Option<String>)]
    pub monthly_credit_limit: Option<MoneyText>,
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    pub prices: Option<BTreeMap<String, MoneyText>>,
    pub channels: Option<Vec<String>>,
    pub currency: Option<String>,
    pub region: Option<String>,
    pub name: Option<String>,
    pub timezone: Option<String>,
    /// The parent's default offer per kind (Available pool and
    /// sub-accounts without their own); `ops::billing`.
    pub default_offers: Option<super::billing::DefaultOffers>,
}

/// Checks a short required text field: visible characters only.
pub fn short_text(field: &str, value: &str) -> Result<String> {
    let value = value.trim();
    visible_text(value).map_err(|r| Error::invalid(field, r))?;
    if value.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if value.chars().count() > SHORT_TEXT_LEN_MAX {
        return Err(Error::invalid(
            field,
            format!("must be at most {SHORT_TEXT_LEN_MAX} characters"),
        ));
    }
    Ok(value.to_string())
}

/// An IANA-style zone name (`Europe/Rome`, `UTC`).
pub fn timezone(value: &str) -> Result<String> {
    let known = (value.len() <= 64)
        .then(|| crate::policy::time::known_zone(value))
        .flatten();
    known.ok_or_else(|| {
        Error::invalid(
            "timezone",
            format!("must be an IANA time zone such as `Europe/Rome`, `America/New_York` or `UTC`; {value:?} is not one"),
        )
    })
}

/// An ISO 4217 code from the table of currencies (`domain::currency`).
pub fn currency(value: &str) -> Result<String> {
    match Currency::find(value) {
        Some(c) => Ok(c.code.to_string()),
        None => Err(Error::invalid(
            "currency",
            format!(
                "must be an ISO 4217 currency code in upper case, such as `USD`, `EUR` or `JPY`; {value:?} is not one"
            ),
        )),
    }
}

/// A list of channel names, without duplicates.
pub fn channels(field: &str, list: &[String]) -> Result<Vec<String>> {
    if list.len() > CHANNELS_MAX {
        return Err(Error::invalid(
            field,
            format!("may list at most {CHANNELS_MAX} channels"),
        ));
    }
    let mut out: Vec<String> = Vec::new();
    for c in list {
        let ok = !c.is_empty()
            && c.len() <= CHANNEL_LEN_MAX
            && c.chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_');
        if !ok {
            return Err(Error::invalid(
                field,
                format!("channel {c:?} must be a lower-case name such as `sms`"),
            ));
        }
        if !out.contains(c) {
            out.push(c.clone());
        }
    }
    Ok(out)
}

/// A non-negative amount of money in `currency`, checked as text.
pub fn amount(field: &str, value: &MoneyText, currency: &str) -> Result<Amount> {
    value
        .non_negative(currency)
        .map_err(|e| Error::invalid(field, e.to_string()))
}

fn prices(list: &BTreeMap<String, MoneyText>) -> Result<BTreeMap<String, Amount>> {
    if list.len() > PRICES_MAX {
        return Err(Error::invalid(
            "prices",
            format!("may name at most {PRICES_MAX} channels"),
        ));
    }
    let mut out = BTreeMap::new();
    for (channel, price) in list {
        channels("prices", std::slice::from_ref(channel))?;
        let price = price
            .price()
            .map_err(|e| Error::invalid(&format!("prices.{channel}"), e.to_string()))?;
        out.insert(channel.clone(), price);
    }
    Ok(out)
}

fn billing_type(value: &str) -> Result<BillingType> {
    BillingType::parse(value)
        .ok_or_else(|| Error::invalid("billing_type", "must be `prepaid` or `postpaid`"))
}

fn module(value: &str) -> Result<Module> {
    Module::parse(value)
        .ok_or_else(|| Error::invalid("subaccount_module", "must be `enterprise` or `reseller`"))
}

impl Canopy {
    pub async fn create_parent(&self, req: NewParent) -> Result<CreatedParent> {
        self.authorize_operator("parent.create", None).await?;
        let name = short_text("name", &req.name)?;
        let company_name = short_text("company_name", &req.company_name)?;
        let email = EmailAddress::parse(&req.email).map_err(|r| Error::invalid("email", r))?;
        let admin_email =
            EmailAddress::parse(&req.admin.email).map_err(|r| Error::invalid("admin.email", r))?;
        let admin_name = short_text("admin.name", &req.admin.name)?;
        let billing = billing_type(&req.billing_type)?;
        let currency = currency(&req.currency)?;
        let monthly_credit_limit = match (billing, &req.monthly_credit_limit) {
            (BillingType::Postpaid, Some(limit)) => {
                Some(amount("monthly_credit_limit", limit, &currency)?)
            }
            (BillingType::Postpaid, None) => {
                return Err(Error::invalid(
                    "monthly_credit_limit",
                    "is required for a postpaid parent",
                ));
            }
            (BillingType::Prepaid, Some(_)) => {
                return Err(Error::invalid(
                    "monthly_credit_limit",
                    "applies to postpaid parents only",
                ));
            }
            (BillingType::Prepaid, None) => None,
        };
        let now_us = self.clock.now_us();
        let new = NewAccount {
            id: new_id("acct"),
            kind: AccountKind::Parent,
            parent_id: None,
            name_key: NameKey::of(&name).as_str().to_string(),
            name,
            email_key: email.key().as_str().to_string(),
            email: email.as_str().to_string(),
            external_id: None,
            company_name,
            status: Status::Active,
            timezone: timezone(req.timezone.as_deref().unwrap_or("UTC"))?,
            channels: channels(
                "channels",
                req.channels.as_deref().unwrap_or(&["sms".to_string()]),
            )?,
            billing_type: Some(billing),
            currency: Some(currency),
            region: req
                .region
                .as_deref()
                .map(|r| short_text("region", r))
                .transpose()?,
            prices: Some(prices(&req.prices)?),
            monthly_credit_limit,
            credit_mode: None,
            monthly_usage_limit: None,
            low_balance_alert: None,
            now_us,
        };
        let mut tx = self.store.begin().await?;
        store::accounts::insert(&mut tx, &new).await?;
        let (admin, created) = self
            .user_for(&mut tx, &admin_email, Some(&admin_name), now_us)
            .await?;
        // The admin's own credentials reach the parent once the admin
        // accepted the invitation (invariant 6); the key works at once.
        store::credentials::insert_membership(
            &mut tx,
            &admin.id,
            &new.id,
            Role::Admin,
            false,
            now_us,
        )
        .await?;
        let api_key = self
            .issue_key(&mut tx, &admin.id, &new.id, "initial admin key", now_us)
            .await?;
        let invitation = self
            .issue_invitation(
                &mut tx,
                &new.id,
                &admin_email,
                Role::Admin,
                created.then_some(admin.id.as_str()),
                now_us,
            )
            .await?;
        let account = store::accounts::get(&mut tx, &new.id)
            .await?
            .ok_or_else(|| Error::internal("parent vanished"))?;
        tx.commit().await.map_err(store::db_error)?;
        tracing::info!(account = %account.id, "parent account created");
        Ok(CreatedParent {
            account,
            admin,
            api_key,
            invitation,
        })
    }

    /// The user with this e-mail, created (with `password_hash`, or none)
    /// if new; `true` when it was created here.
    pub(crate) async fn user_for(
        &self,
        c: &mut Conn,
        email: &EmailAddress,
        name: Option<&str>,
        now_us: i64,
    ) -> Result<(User, bool)> {
        if let Some(user) = store::credentials::user_by_email_key(c, email.key().as_str()).await? {
            return Ok((user, false));
        }
        let user = User {
            id: new_id("usr"),
            email: email.as_str().to_string(),
            name: name.map(str::to_string),
            password_hash: None,
            verified: false,
            created_at: crate::clock::from_us(now_us),
        };
        store::credentials::insert_user(c, &user, email.key().as_str()).await?;
        Ok((user, true))
    }

    pub(crate) async fn issue_key(
        &self,
        c: &mut Conn,
        user_id: &str,
        account_id: &str,
        name: &str,
        now_us: i64,
    ) -> Result<IssuedKey> {
        let secret = new_secret("ck");
        let key = ApiKey {
            id: new_id("key"),
            user_id: user_id.to_string(),
            account_id: account_id.to_string(),
            name: name.to_string(),
            created_at: crate::clock::from_us(now_us),
            revoked_at: None,
            expires_at: None,
            last_used_at: None,
        };
        store::credentials::insert_api_key(c, &key, &sha256_hex(secret.as_bytes())).await?;
        Ok(IssuedKey { id: key.id, secret })
    }

    pub(crate) async fn issue_invitation(
        &self,
        c: &mut Conn,
        account_id: &str,
        email: &EmailAddress,
        role: Role,
        created_user_id: Option<&str>,
        now_us: i64,
    ) -> Result<IssuedInvitation> {
        let token = new_secret("ci");
        let ttl_us =
            i64::try_from(self.settings.invitation_ttl.as_micros()).unwrap_or(i64::MAX / 2);
        let invitation = Invitation {
            id: new_id("inv"),
            account_id: account_id.to_string(),
            email: email.as_str().to_string(),
            email_key: email.key().as_str().to_string(),
            role,
            expires_at_us: now_us.saturating_add(ttl_us),
            used_at_us: None,
            created_user_id: created_user_id.map(str::to_string),
        };
        store::credentials::insert_invitation(
            c,
            &invitation,
            &sha256_hex(token.as_bytes()),
            now_us,
        )
        .await?;
        Ok(IssuedInvitation {
            id: invitation.id.clone(),
            token,
            expires_at: crate::clock::from_us(invitation.expires_at_us),
        })
    }

    /// The parents `filter` lets through (by status, by a part of the
    /// name), newest first.
    pub async fn list_parents(
        &self,
        filter: &ParentFilter,
        page: &Page,
    ) -> Result<(Paged<Account>, View)> {
        self.authorize_operator("parent.list", None).await?;
        let view = self.view_operator("parent.list", "accounts", None).await?;
        let mut c = self.store.reader().await?;
        let rows = store::accounts::list_parents(&mut c, filter, page).await?;
        Ok((
            Paged::from_fetch(rows, page, |a| keyset_cursor(a.created_at, &a.id)),
            view,
        ))
    }

    /// What the operator may see of a parent (the `visibility` hook).
    pub async fn parent_view(&self, account: &Account) -> Result<View> {
        self.view_operator("parent.read", "account", Some(account))
            .await
    }

    /// A parent, as the operator sees it.
    pub async fn get_parent(&self, id: &str) -> Result<Account> {
        let mut c = self.store.reader().await?;
        let account = store::accounts::get(&mut c, id)
            .await?
            .filter(Account::is_parent)
            .ok_or_else(|| Error::not_found("parent account", id))?;
        drop(c);
        self.authorize_operator("parent.read", Some(&account))
            .await?;
        Ok(account)
    }

    /// A parent's sub-accounts of every status, as the operator sees them.
    pub async fn list_parent_subaccounts(
        &self,
        id: &str,
        filter: &SubaccountFilter,
        page: &Page,
    ) -> Result<(Paged<Account>, View)> {
        let parent = self.get_parent(id).await?;
        let view = self
            .view_operator("parent.subaccounts", "subaccounts", Some(&parent))
            .await?;
        let mut c = self.store.reader().await?;
        let rows = store::accounts::list_subaccounts(&mut c, &parent.id, filter, page).await?;
        Ok((
            Paged::from_fetch(rows, page, |a| keyset_cursor(a.created_at, &a.id)),
            view,
        ))
    }

    /// The operator's changes to a parent; prices, currency and region apply
    /// to its sub-accounts at once (they read them from the parent), and a
    /// channel removed from the parent is removed from them.
    pub async fn update_parent(&self, id: &str, req: ParentChanges) -> Result<Account> {
        let parent = self.get_parent(id).await?;
        require_not_deleted(&parent)?;
        self.authorize_operator("parent.update", Some(&parent))
            .await?;
        let mut changes: Vec<(&'static str, Value)> = Vec::new();
        if let Some(enabled) = req.subaccounts_enabled {
            changes.push(("subaccounts_enabled", Value::Int(Some(enabled as i64))));
            // The module defaults to enterprise when the feature is first enabled.
            if enabled && parent.tree.module.is_none() && req.subaccount_module.is_none() {
                changes.push((
                    "subaccount_module",
                    Value::Text(Some(Module::Enterprise.as_str().into())),
                ));
            }
        }
        if let Some(m) = &req.subaccount_module {
            changes.push((
                "subaccount_module",
                Value::Text(Some(module(m)?.as_str().into())),
            ));
        }
        if let Some(enabled) = req.monthly_usage_limit_enabled {
            changes.push((
                "monthly_usage_limit_enabled",
                Value::Int(Some(enabled as i64)),
            ));
        }
        if let Some(enabled) = req.self_topups_enabled {
            changes.push(("self_topups_enabled", Value::Int(Some(enabled as i64))));
        }
        if let Some(limit) = &req.monthly_credit_limit {
            if parent.billing_type != Some(BillingType::Postpaid) {
                return Err(Error::invalid(
                    "monthly_credit_limit",
                    "applies to postpaid parents only",
                ));
            }
            // In the currency the parent will have after this change.
            let currency = match &req.currency {
                Some(c) => currency(c)?,
                None => parent.currency.clone(),
            };
            let limit = amount("monthly_credit_limit", limit, &currency)?;
            changes.push((
                "monthly_credit_limit_micros",
                Value::Int(micros(Some(limit))),
            ));
        }
        if let Some(p) = &req.prices {
            changes.push(("prices", Value::Text(Some(prices_text(&prices(p)?)))));
        }
        let new_channels = req
            .channels
            .as_deref()
            .map(|c| channels("channels", c))
            .transpose()?;
        if let Some(list) = &new_channels {
            changes.push(("channels", Value::Text(Some(json_text(list)))));
        }
        let mut currency_changes = false;
        if let Some(c) = &req.currency {
            let c = currency(c)?;
            currency_changes = c != parent.currency;
            changes.push(("currency", Value::Text(Some(c))));
        }
        if let Some(r) = &req.region {
            changes.push(("region", Value::Text(Some(short_text("region", r)?))));
        }
        if let Some(n) = &req.name {
            let n = short_text("name", n)?;
            changes.push((
                "name_key",
                Value::Text(Some(NameKey::of(&n).as_str().into())),
            ));
            changes.push(("name", Value::Text(Some(n))));
        }
        if let Some(tz) = &req.timezone {
            changes.push(("timezone", Value::Text(Some(timezone(tz)?))));
        }
        let default_offers = match &req.default_offers {
            Some(d) => {
                let currency = match &req.currency {
                    Some(c) => currency(c)?,
                    None => parent.currency.clone(),
                };
                self.check_default_offers(d, &currency).await?
            }
            None => vec![],
        };
        let now_us = self.clock.now_us();
        let mut tx = self.store.begin().await?;
        if currency_changes {
            // Under the tree's lock, which every top-up and allocation
            // takes too, and with the tree's ledger rows locked against
            // postings in flight: money cannot arrive between the check and
            // the change.
            self.lock_tree(&mut tx, &parent).await?;
            if store::ledger::lock_tree_money(&mut tx, self.store.backend, &parent.id).await? {
                return Err(Error::Conflict(
                    "the currency cannot change while any account of this tree holds money; settle the balances first".into(),
                ));
            }
        }
        store::accounts::update(&mut tx, &parent.id, &changes, now_us).await?;
        self.set_default_offers(&mut tx, &parent.id, &default_offers, now_us)
            .await?;
        if let Some(list) = &new_channels {
            for sub in store::accounts::all_subaccounts(&mut tx, &parent.id).await? {
                let kept: Vec<String> = sub
                    .channels
                    .iter()
                    .filter(|c| list.contains(c))
                    .cloned()
                    .collect();
                if kept != sub.channels {
                    store::accounts::update(
                        &mut tx,
                        &sub.id,
                        &[("channels", Value::Text(Some(json_text(&kept))))],
                        now_us,
                    )
                    .await?;
                }
            }
        }
        let account = store::accounts::get(&mut tx, &parent.id)
            .await?
            .ok_or_else(|| Error::internal("parent vanished"))?;
        tx.commit().await.map_err(store::db_error)?;
        Ok(account)
    }
}

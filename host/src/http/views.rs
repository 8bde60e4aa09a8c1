//! Response bodies. Fields a `visibility` decision hides are left out of
//! the JSON (not null).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::{Account, AccountKind};
use crate::ops::members::{Accepted, Session};
use crate::ops::parents::{IssuedInvitation, IssuedKey};
use crate::policy::View;
use crate::store::credentials::{ApiKey, Member, User};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AccountView {
    pub id: String,
    #[schema(example = "subaccount")]
    pub kind: &'static str,
    pub parent_id: Option<String>,
    pub name: String,
    pub email: String,
    pub external_id: Option<String>,
    pub company_name: String,
    /// `invited`, `active`, `suspended`, `deleted`, or `merged` (terminal).
    #[schema(example = "active")]
    pub status: &'static str,
    /// A merged sub-account: the sub-account it was merged into.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<String>,
    /// While suspended: the status a reactivation restores.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_status: Option<&'static str>,
    pub timezone: String,
    pub region: Option<String>,
    pub currency: String,
    pub channels: Vec<String>,
    pub created_at: DateTime<Utc>,
    /// Group `pricing`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prices: Option<BTreeMap<String, String>>,
    /// Parents; group `plan`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub billing_type: Option<&'static str>,
    /// Postpaid parents; group `plan`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monthly_credit_limit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subaccounts_enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subaccount_module: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monthly_usage_limit_enabled: Option<bool>,
    /// Parents: whether their admin may top them up (`POST .../topups`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub self_topups_enabled: Option<bool>,
    /// Sub-accounts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credit_mode: Option<&'static str>,
    /// Shared-usage sub-accounts; group `usage`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monthly_usage_limit: Option<String>,
    /// Assigned-budget sub-accounts; group `balance`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub low_balance_alert: Option<AlertView>,
    /// Sub-accounts: the lines and SIMs they hold (not disconnected or
    /// terminated).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_counts: Option<super::resources::CountsView>,
    /// The offer per kind: a sub-account's own, a parent's defaults; group
    /// `plan` (set by the reads that show it, `http::billing::offers`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offers: Option<super::billing::OffersView>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AlertView {
    pub threshold: String,
    pub emails: Vec<String>,
}

impl AccountView {
    pub fn new(a: &Account, view: &View) -> AccountView {
        let parent = a.kind == AccountKind::Parent;
        let shown = |group: &str| !view.hides(group);
        AccountView {
            id: a.id.clone(),
            kind: a.kind.as_str(),
            parent_id: a.parent_id.clone(),
            name: a.name.clone(),
            email: a.email.clone(),
            external_id: a.external_id.clone(),
            company_name: a.company_name.clone(),
            status: a.shown_status(),
            merged_into: a.merged_into.clone(),
            previous_status: a.previous_status.map(|s| s.as_str()),
            timezone: a.timezone.clone(),
            region: a.region.clone(),
            currency: a.currency.clone(),
            channels: a.channels.clone(),
            created_at: a.created_at,
            prices: shown("pricing").then(|| {
                a.prices
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_api_string()))
                    .collect()
            }),
            billing_type: a.billing_type.filter(|_| shown("plan")).map(|b| b.as_str()),
            monthly_credit_limit: a
                .monthly_credit_limit
                .filter(|_| shown("plan"))
                .map(|m| m.to_api_string()),
            subaccounts_enabled: parent.then_some(a.tree.subaccounts_enabled),
            subaccount_module: if parent {
                a.tree.module.map(|m| m.as_str())
            } else {
                None
            },
            monthly_usage_limit_enabled: parent.then_some(a.tree.monthly_usage_limit_enabled),
            self_topups_enabled: parent.then_some(a.tree.self_topups_enabled),
            credit_mode: a.credit_mode.map(|c| c.as_str()),
            monthly_usage_limit: a
                .monthly_usage_limit
                .filter(|_| shown("usage"))
                .map(|m| m.to_api_string()),
            low_balance_alert: a
                .low_balance_alert
                .as_ref()
                .filter(|_| shown("balance"))
                .map(|l| AlertView {
                    threshold: l.threshold.to_api_string(),
                    emails: l.emails.clone(),
                }),
            resource_counts: None,
            offers: None,
        }
    }

    /// Adds the resources a sub-account holds (from
    /// `Canopy::resource_counts`); parents show theirs in the summary.
    pub fn with_counts(
        mut self,
        counts: &BTreeMap<String, crate::store::resources::Counts>,
    ) -> AccountView {
        if self.kind == AccountKind::Subaccount.as_str() {
            let c = counts.get(&self.id).copied().unwrap_or_default();
            self.resource_counts = Some(c.into());
        }
        self
    }
}

/// A page of a list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct List<T: utoipa::ToSchema> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub name: Option<String>,
    /// The user proved the e-mail is theirs (a password reset mailed to it).
    pub verified: bool,
    pub created_at: DateTime<Utc>,
}

impl From<&User> for UserView {
    fn from(u: &User) -> UserView {
        UserView {
            id: u.id.clone(),
            email: u.email.clone(),
            name: u.name.clone(),
            verified: u.verified,
            created_at: u.created_at,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MemberView {
    pub user_id: String,
    pub email: String,
    pub name: Option<String>,
    #[schema(example = "basic")]
    pub role: &'static str,
    pub joined_at: DateTime<Utc>,
}

impl From<&Member> for MemberView {
    fn from(m: &Member) -> MemberView {
        MemberView {
            user_id: m.user.id.clone(),
            email: m.user.email.clone(),
            name: m.user.name.clone(),
            role: m.role.as_str(),
            joined_at: m.joined_at,
        }
    }
}

/// A secret shown once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SecretKeyView {
    pub id: String,
    /// Shown only now; the server keeps a hash.
    pub secret: String,
}

impl From<IssuedKey> for SecretKeyView {
    fn from(k: IssuedKey) -> SecretKeyView {
        SecretKeyView {
            id: k.id,
            secret: k.secret,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InvitationView {
    /// Resend (`POST .../invitations/{id}/resend`) or revoke (`DELETE
    /// .../invitations/{id}`) it by this id.
    pub id: String,
    /// Deliver it to the invitee; it works once.
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

impl From<IssuedInvitation> for InvitationView {
    fn from(i: IssuedInvitation) -> InvitationView {
        InvitationView {
            id: i.id,
            token: i.token,
            expires_at: i.expires_at,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApiKeyView {
    pub id: String,
    pub name: String,
    pub user_id: String,
    pub created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
    /// When the key stops working; absent: never.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// The last use, to the minute (noted at most once a minute per key);
    /// absent: never used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<&ApiKey> for ApiKeyView {
    fn from(k: &ApiKey) -> ApiKeyView {
        ApiKeyView {
            id: k.id.clone(),
            name: k.name.clone(),
            user_id: k.user_id.clone(),
            created_at: k.created_at,
            revoked_at: k.revoked_at,
            expires_at: k.expires_at,
            last_used_at: k.last_used_at,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AcceptedView {
    pub user: UserView,
    pub account_id: String,
    #[schema(example = "admin")]
    pub role: &'static str,
    pub api_key: SecretKeyView,
}

impl From<Accepted> for AcceptedView {
    fn from(a: Accepted) -> AcceptedView {
        AcceptedView {
            user: (&a.user).into(),
            account_id: a.account_id,
            role: a.role.as_str(),
            api_key: a.api_key.into(),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionView {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

impl From<Session> for SessionView {
    fn from(s: Session) -> SessionView {
        SessionView {
            token: s.token,
            expires_at: s.expires_at,
        }
    }
}

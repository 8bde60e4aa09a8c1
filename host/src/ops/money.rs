//! Money operations: top-ups, budgets, balances, statements, the
//! reconciliation check. The rules are `domain::ledger`'s; the store applies
//! them with conditional updates in the operation's transaction.

use rust_decimal::Decimal;
use serde::Deserialize;

use super::access::{require_not_deleted, require_subaccount};
use super::{Canopy, Page, Paged, Principal};
use crate::domain::ledger::{self, LedgerRef, TransferKind};
use crate::domain::{Account, Amount, BillingType, CreditMode, MoneyText, Relation};
use crate::secrets::new_id;
use crate::store::ledger::{Posted, Reconciliation, Statement};
use crate::store::{self, Conn};
use crate::{Error, Result};

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AmountRequest {
    /// Decimal string; for a budget, negative removes.
    #[schema(value_type = String, example = "25.00")]
    pub amount: MoneyText,
}

/// An account's money as its viewer may see it.
#[derive(Debug, Clone, Default)]
pub struct Balance {
    pub currency: String,
    pub balance: Option<Amount>,
    pub budget: Option<Amount>,
    pub monthly_credit_limit: Option<Amount>,
    pub spent_this_month: Option<Amount>,
    pub allocated_this_month: Option<Amount>,
    pub returned_this_month: Option<Amount>,
    pub available_credit: Option<Amount>,
    pub used_this_month: Option<Amount>,
    pub monthly_usage_limit: Option<Amount>,
}

/// A transfer and the balance it left in the account it concerns.
#[derive(Debug, Clone)]
pub struct Moved {
    pub transfer_id: String,
    pub kind: TransferKind,
    pub amount: Amount,
    pub currency: String,
    pub balance_after: Amount,
}

/// A signed amount of money in `currency`, checked as text.
pub(crate) fn signed(field: &str, value: &MoneyText, currency: &str) -> Result<Amount> {
    value
        .amount(currency)
        .map_err(|e| Error::invalid(field, e.to_string()))
}

fn nonzero(field: &str, amount: Amount) -> Result<Amount> {
    if amount.decimal().is_zero() {
        return Err(Error::invalid(field, "must be more than zero"));
    }
    Ok(amount)
}

fn transfer_key(kind: TransferKind) -> String {
    format!("{}:{}", kind.as_str(), new_id("op"))
}

impl Canopy {
    fn month(&self) -> String {
        ledger::month_of(self.clock.now())
    }

    /// Posts a transfer with no further statements, under a fresh key.
    async fn post(&self, c: &mut Conn, posting: &ledger::Posting, now_us: i64) -> Result<Posted> {
        store::ledger::post(
            c,
            self.store.backend,
            posting,
            &transfer_key(posting.kind),
            now_us,
            vec![],
        )
        .await
    }

    /// A prepaid parent's top-up, by the operator.
    pub async fn topup_by_operator(&self, parent_id: &str, req: AmountRequest) -> Result<Moved> {
        let parent = self.get_parent(parent_id).await?;
        self.authorize_operator("topup.create", Some(&parent))
            .await?;
        self.topup(&parent, req.amount).await
    }

    /// A prepaid parent's top-up, by its own admin.
    pub async fn topup_by_admin(
        &self,
        principal: &Principal,
        account_id: &str,
        req: AmountRequest,
    ) -> Result<Moved> {
        let actor = self.enter(principal, account_id).await?;
        if !actor.target.is_parent() {
            return Err(Error::Forbidden(
                "sub-accounts are never recharged; their parent allocates budget to them".into(),
            ));
        }
        if !actor.target.tree.self_topups_enabled {
            return Err(Error::FeatureNotEnabled(
                "self top-up is off for this parent: Canopy takes no payment, so the operator enables it (`self_topups_enabled`) only behind the platform's own payment flow; ask the operator for a top-up".into(),
            ));
        }
        self.authorize(&actor, "topup.create", &["amount"]).await?;
        self.topup(&actor.target, req.amount).await
    }

    /// The answer of a money move that an earlier request with this
    /// Idempotency-Key committed but could not answer.
    async fn recovered_move(&self) -> Result<Option<Moved>> {
        let Some(key) = store::idempotency::committed_resource() else {
            return Ok(None);
        };
        let mut c = self.store.reader().await?;
        let (posted, kind, amount, currency) = store::ledger::by_key(&mut c, &key)
            .await?
            .ok_or_else(|| Error::internal("the committed transfer vanished"))?;
        let kind = TransferKind::parse(&kind).ok_or_else(|| Error::internal("stored kind"))?;
        // A return leaves the budget it came from; the rest, what they credit.
        let balance_after = if kind == TransferKind::Return {
            posted.debit_after
        } else {
            posted.credit_after
        };
        Ok(Some(Moved {
            transfer_id: posted.id,
            kind,
            amount,
            currency,
            balance_after,
        }))
    }

    async fn topup(&self, parent: &Account, amount: MoneyText) -> Result<Moved> {
        if let Some(moved) = self.recovered_move().await? {
            return Ok(moved);
        }
        require_not_deleted(parent)?;
        let amount = super::parents::amount("amount", &amount, &parent.currency)?;
        let amount = nonzero("amount", amount)?;
        if parent.billing_type != Some(BillingType::Prepaid) {
            return Err(Error::Conflict("top-ups apply to prepaid parents; a postpaid parent spends on its monthly credit limit".into()));
        }
        let posting = ledger::topup_posting(parent, amount, &self.month());
        let now_us = self.clock.now_us();
        let mut tx = self.store.begin().await?;
        self.lock_tree(&mut tx, parent).await?;
        let key = transfer_key(posting.kind);
        let posted =
            store::ledger::post(&mut tx, self.store.backend, &posting, &key, now_us, vec![])
                .await?;
        store::idempotency::note_resource_in(&mut tx, &key).await?;
        tx.commit().await.map_err(store::db_error)?;
        Ok(moved(&posted, &posting, posted.credit_after))
    }

    /// Allocates budget to a sub-account (positive) or removes it (negative).
    pub async fn change_budget(
        &self,
        principal: &Principal,
        sub_id: &str,
        req: AmountRequest,
    ) -> Result<Moved> {
        let actor = self.enter(principal, sub_id).await?;
        self.require_subaccounts_enabled(&actor.target)?;
        require_subaccount(&actor.target, "budget")?;
        self.authorize(&actor, "budget.allocate", &["amount"])
            .await?;
        if actor.relation != Relation::ParentOf {
            return Err(Error::Forbidden(
                "a sub-account's budget is set by its parent account's admin".into(),
            ));
        }
        if let Some(moved) = self.recovered_move().await? {
            return Ok(moved);
        }
        let sub = &actor.target;
        require_not_deleted(sub)?;
        if sub.credit_mode != Some(CreditMode::AssignedBudget) {
            return Err(Error::invalid(
                "amount",
                "this sub-account spends on shared usage and holds no budget",
            ));
        }
        let amount = signed("amount", &req.amount, &sub.currency)?;
        let allocate = !req.amount.is_negative();
        let amount = nonzero("amount", amount.abs())?;
        let parent = actor.tree_parent().clone();
        let posting = ledger::budget_posting(&parent, sub, amount, allocate, &self.month());
        let now_us = self.clock.now_us();
        let mut tx = self.store.begin().await?;
        self.lock_tree(&mut tx, &parent).await?;
        if !store::accounts::lock_live(&mut tx, &sub.id).await? {
            return Err(Error::Conflict(format!(
                "`{}` was deleted; its budget went back to the parent",
                sub.id
            )));
        }
        let key = transfer_key(posting.kind);
        let extra = if allocate {
            vec![]
        } else {
            alert_step(sub, &key, now_us).into_iter().collect()
        };
        let posted =
            store::ledger::post(&mut tx, self.store.backend, &posting, &key, now_us, extra).await?;
        store::idempotency::note_resource_in(&mut tx, &key).await?;
        tx.commit().await.map_err(store::db_error)?;
        let budget_after = if allocate {
            posted.credit_after
        } else {
            posted.debit_after
        };
        Ok(moved(&posted, &posting, budget_after))
    }

    /// Gives a new sub-account its initial credit, in its creation transaction.
    pub(crate) async fn initial_credit(
        &self,
        c: &mut Conn,
        parent: &Account,
        sub: &Account,
        amount: Amount,
        now_us: i64,
    ) -> Result<()> {
        let posting = ledger::budget_posting(parent, sub, amount, true, &self.month());
        self.post(c, &posting, now_us).await.map(|_| ())
    }

    /// Returns everything a sub-account's budget holds to its parent, in
    /// the caller's transaction (deletion).
    pub(crate) async fn return_all(
        &self,
        c: &mut Conn,
        parent: &Account,
        sub: &Account,
        now_us: i64,
    ) -> Result<()> {
        if sub.credit_mode != Some(CreditMode::AssignedBudget) {
            return Ok(());
        }
        let held = store::ledger::lock_balance(c, &LedgerRef::budget(sub), now_us).await?;
        if held.decimal() > Decimal::ZERO {
            let posting = ledger::budget_posting(parent, sub, held, false, &self.month());
            self.post(c, &posting, now_us).await?;
        }
        Ok(())
    }

    /// Moves a deleted parent's balance to the platform's closed accounts.
    pub(crate) async fn close_wallet(
        &self,
        c: &mut Conn,
        parent: &Account,
        now_us: i64,
    ) -> Result<()> {
        let wallet = LedgerRef::parent_wallet(parent);
        let held = store::ledger::lock_balance(c, &wallet, now_us).await?;
        if held.decimal().is_zero() {
            return Ok(());
        }
        let closed = LedgerRef::closed(&parent.currency);
        let (debit, credit) = if held.decimal() > Decimal::ZERO {
            (wallet, closed)
        } else {
            (closed, wallet)
        };
        let posting = ledger::Posting {
            kind: TransferKind::Closure,
            debit,
            credit,
            amount: held.abs(),
            subject_id: parent.id.clone(),
            tree_id: parent.id.clone(),
            month: self.month(),
            spend: vec![],
            reference: None,
        };
        self.post(c, &posting, now_us).await.map(|_| ())
    }

    /// The account's money: balance or credit for a parent, budget or usage
    /// for a sub-account, without the groups `visibility` hides.
    pub async fn balance(&self, principal: &Principal, account_id: &str) -> Result<Balance> {
        let actor = self.enter(principal, account_id).await?;
        self.authorize(&actor, "balance.read", &[]).await?;
        let view = self.view(&actor, "balance.read", "balance").await?;
        let a = &actor.target;
        let month = self.month();
        let mut c = self.store.reader().await?;
        let mut b = Balance {
            currency: a.currency.clone(),
            ..Balance::default()
        };
        let shown = |group: &str, v: Amount| (!view.hides(group)).then_some(v);
        match (a.kind, a.billing_type, a.credit_mode) {
            (crate::domain::AccountKind::Parent, Some(BillingType::Postpaid), _) => {
                let limit = a.monthly_credit_limit.unwrap_or(Amount::ZERO);
                let counters = store::ledger::monthly(&mut c, &a.id, &month).await?;
                b.monthly_credit_limit = shown("balance", limit);
                b.spent_this_month = shown("usage", counters.spent());
                b.allocated_this_month = shown("usage", counters.allocated);
                b.returned_this_month = shown("usage", counters.returned);
                b.available_credit = shown("balance", ledger::available_credit(limit, &counters));
            }
            (crate::domain::AccountKind::Parent, _, _) => {
                b.balance = shown(
                    "balance",
                    store::ledger::balance(&mut c, &LedgerRef::parent_wallet(a)).await?,
                );
            }
            (_, _, Some(CreditMode::AssignedBudget)) => {
                b.budget = shown(
                    "balance",
                    store::ledger::balance(&mut c, &LedgerRef::budget(a)).await?,
                );
            }
            _ => {
                let usage = store::ledger::monthly(&mut c, &a.id, &month).await?.usage;
                b.used_this_month = shown("usage", usage);
                b.monthly_usage_limit = a.monthly_usage_limit.and_then(|l| shown("usage", l));
            }
        }
        // A view whose every field is hidden is denied (API.md).
        let shown_any = [
            b.balance,
            b.budget,
            b.monthly_credit_limit,
            b.spent_this_month,
            b.available_credit,
            b.used_this_month,
        ]
        .iter()
        .any(Option::is_some);
        if !shown_any {
            return Err(denied_money("balance", &view));
        }
        Ok(b)
    }

    /// Transfers touching the account, newest first.
    pub async fn transactions(
        &self,
        principal: &Principal,
        account_id: &str,
        page: &Page,
    ) -> Result<(Paged<Statement>, String)> {
        let actor = self.enter(principal, account_id).await?;
        self.authorize(&actor, "transactions.read", &[]).await?;
        let view = self
            .view(&actor, "transactions.read", "transactions")
            .await?;
        if view.hides("balance") {
            return Err(denied_money("transactions", &view));
        }
        let mut c = self.store.reader().await?;
        let rows = store::ledger::statement(&mut c, account_id, page).await?;
        Ok((
            Paged::from_fetch(rows, page, |t| super::keyset_cursor(t.created_at, &t.id)),
            actor.target.id,
        ))
    }

    /// Recomputes every balance from the transfers and checks every invariant.
    pub async fn ledger_check(&self) -> Result<Reconciliation> {
        self.authorize_operator("ledger.check", None).await?;
        let mut c = self.store.reader().await?;
        store::ledger::reconcile(&mut c).await
    }
}

fn moved(posted: &Posted, posting: &ledger::Posting, balance_after: Amount) -> Moved {
    Moved {
        transfer_id: posted.id.clone(),
        kind: posting.kind,
        amount: posting.amount,
        currency: posting.debit.currency.clone(),
        balance_after,
    }
}

/// The low-balance alert check of a budget debit, if the sub-account has
/// alert settings, and its `budget.low` event (same condition).
pub(crate) fn alert_step(
    sub: &Account,
    transfer_key: &str,
    now_us: i64,
) -> Vec<crate::store::Step> {
    sub.low_balance_alert
        .as_ref()
        .map(|_| {
            vec![
                store::ledger::alert_step(&sub.id, transfer_key, now_us),
                store::events::budget_low_step(&sub.id, transfer_key, now_us),
            ]
        })
        .unwrap_or_default()
}

/// A view whose every field is hidden is denied (API.md), naming the
/// policy that hid them.
fn denied_money(what: &str, view: &crate::policy::View) -> Error {
    let mut policy = view
        .hidden_by
        .clone()
        .unwrap_or_else(|| crate::error::PolicyRef {
            id: "visibility".into(),
            name: "visibility".into(),
            version: 0,
            reason: String::new(),
        });
    policy.reason = format!(
        "every field of the {what} is hidden from you by policy `{}`",
        policy.id
    );
    Error::PolicyDenied(policy)
}

/// Which way a statement row moved money from `account_id`'s side: `out`
/// when its own ledger account was debited, or when the transfer was only
/// made for it (usage of a shared-usage sub-account, charged to its
/// parent); `in` when its own ledger account was credited. Checked in the
/// same order as [`statement_balance`], so the two always agree.
pub fn statement_direction(s: &Statement, account_id: &str) -> Direction {
    if s.debit_owner.as_deref() == Some(account_id) {
        Direction::Out
    } else if s.credit_owner.as_deref() == Some(account_id) {
        Direction::In
    } else {
        Direction::Out
    }
}

/// Money into or out of the viewer's account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    In,
    Out,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }

    /// A transfer's (positive) `amount` as API text with the sign this
    /// direction gives it (`out` negative).
    pub fn signed(self, amount: Amount) -> String {
        match self {
            Direction::In => amount.to_api_string(),
            Direction::Out => format!("-{}", amount.to_api_string()),
        }
    }
}

/// The view a statement row is shown with: whose balance it reports.
pub fn statement_balance(s: &Statement, account_id: &str) -> Option<Amount> {
    if s.debit_owner.as_deref() == Some(account_id) {
        Some(s.debit_after)
    } else if s.credit_owner.as_deref() == Some(account_id) {
        Some(s.credit_after)
    } else {
        None
    }
}

//! Offers, the billing summary, adjustments and the period close into
//! invoices (API.md "Offers", "Recurring charges", "Billing"). The charges
//! are `domain::billing`'s; this layer reads their inputs, and at close
//! posts them to the ledger in the invoice's transaction.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde::Deserialize;

use super::access::require_subaccount;
use super::parents::{amount, currency as currency_code, short_text};
use super::{Canopy, Page, Paged, Principal};
use crate::domain::billing::{self, Bill, Group, Item, Period};
use crate::domain::ledger::{self, LedgerRef, MonthlyLimit, Posting, SpendColumn, TransferKind};
use crate::domain::resources::ResourceKind;
use crate::domain::{Account, Amount, BillingType, MoneyText};
use crate::secrets::new_id;
use crate::store::billing::{Adjustment, Invoice, Offer};
use crate::store::{self, Conn};
use crate::{Error, Result};

/// How often each host looks for periods to close (they are also closed
/// when a tree's invoices or a past summary are read).
pub const CLOSE_EVERY: Duration = Duration::from_secs(60);

/// Included units an offer may name.
const INCLUDED_KEYS: &[&str] = &["sms"];
const INCLUDED_MAX: i64 = 1_000_000_000;

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOffer {
    pub name: String,
    #[schema(example = "line")]
    pub kind: String,
    #[schema(value_type = String, example = "12.00")]
    pub monthly_fee: MoneyText,
    #[schema(example = "USD")]
    pub currency: String,
    /// Units included each month, such as `{"sms": 100}`.
    pub included: Option<BTreeMap<String, i64>>,
}

/// A parent's default offer per kind (`PATCH /v1/operator/accounts/{id}`).
/// Read from a JSON object only: serde's own derive would also take an
/// array of the fields in order.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "serde_json::Map<String, serde_json::Value>")]
pub struct DefaultOffers {
    pub line: Option<String>,
    pub sim: Option<String>,
}

impl TryFrom<serde_json::Map<String, serde_json::Value>> for DefaultOffers {
    type Error = String;

    fn try_from(map: serde_json::Map<String, serde_json::Value>) -> Result<Self, String> {
        let mut offers = DefaultOffers::default();
        for (field, value) in map {
            let slot = match field.as_str() {
                "line" => &mut offers.line,
                "sim" => &mut offers.sim,
                _ => return Err(format!("unknown field `{field}`, expected `line` or `sim`")),
            };
            *slot = match value {
                serde_json::Value::Null => None,
                serde_json::Value::String(id) => Some(id),
                other => return Err(format!("invalid type: {other}, expected a string")),
            };
        }
        Ok(offers)
    }
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OfferAssignment {
    #[schema(example = "line")]
    pub kind: String,
    pub offer_id: String,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAdjustment {
    /// The sub-account whose group it applies to; absent: the Available
    /// group (the parent's own).
    pub account_id: Option<String>,
    #[schema(example = "credit")]
    pub kind: String,
    #[schema(value_type = String, example = "5.00")]
    pub amount: MoneyText,
    pub reason: String,
    #[schema(example = "2026-11")]
    pub period: String,
}

/// A place's offers, as a sub-account read shows them.
#[derive(Debug, Clone, Default)]
pub struct PlaceOffers {
    pub line: Option<String>,
    pub sim: Option<String>,
}

fn kind_of(field: &str, kind: &str) -> Result<ResourceKind> {
    ResourceKind::parse(kind).ok_or_else(|| Error::invalid(field, "must be `line` or `sim`"))
}

fn period_of(field: &str, text: &str) -> Result<Period> {
    Period::parse(text).map_err(|e| Error::invalid(field, e))
}

/// The key of a recurring-charge transfer: one per tree, period and group,
/// so a charge is posted at most once whatever happens.
fn recurring_key(tree_id: &str, period: Period, group: &str) -> String {
    format!("recurring:{tree_id}:{period}:{group}")
}

impl Canopy {
    /// Creates an offer (operator).
    pub async fn create_offer(&self, req: NewOffer) -> Result<Offer> {
        self.authorize_operator("offer.create", None).await?;
        if let Some(id) = store::idempotency::committed_resource() {
            let mut c = self.store.reader().await?;
            return store::billing::get_offer(&mut c, &id)
                .await?
                .ok_or_else(|| Error::internal("the committed offer vanished"));
        }
        let name = short_text("name", &req.name)?;
        let kind = kind_of("kind", &req.kind)?;
        let currency = currency_code(&req.currency)?;
        let fee = amount("monthly_fee", &req.monthly_fee, &currency)?
            .to_micros()
            .map_err(|e| Error::invalid("monthly_fee", e.to_string()))?;
        let included = req.included.unwrap_or_default();
        for (k, n) in &included {
            if !INCLUDED_KEYS.contains(&k.as_str()) {
                return Err(Error::invalid(
                    &format!("included.{k}"),
                    format!("is not a unit an offer includes; send one of {INCLUDED_KEYS:?}"),
                ));
            }
            if !(0..=INCLUDED_MAX).contains(n) {
                return Err(Error::invalid(
                    &format!("included.{k}"),
                    format!("must be a whole number from 0 to {INCLUDED_MAX}"),
                ));
            }
        }
        let offer = Offer {
            id: new_id("ofr"),
            name,
            kind,
            monthly_fee_micros: fee,
            currency,
            included: serde_json::to_string(&included).map_err(Error::internal)?,
            created_at: self.clock.now_us(),
        };
        let mut tx = self.store.begin().await?;
        store::idempotency::note_resource_in(&mut tx, &offer.id).await?;
        store::billing::insert_offer(&mut tx, &offer).await?;
        tx.commit().await.map_err(store::db_error)?;
        Ok(offer)
    }

    pub async fn list_offers(&self, page: &Page) -> Result<Paged<Offer>> {
        self.authorize_operator("offer.list", None).await?;
        let mut c = self.store.reader().await?;
        let items = store::billing::list_offers(&mut c, page).await?;
        Ok(Paged::from_fetch(items, page, |o| {
            super::keyset_cursor(crate::clock::from_us(o.created_at), &o.id)
        }))
    }

    /// Checks a parent's new default offers (before its update opens a
    /// transaction): each exists, is of its kind and in `currency`, the
    /// parent's currency after the change. 422 naming the field.
    pub async fn check_default_offers(
        &self,
        req: &DefaultOffers,
        currency: &str,
    ) -> Result<Vec<(ResourceKind, String)>> {
        let mut out = Vec::new();
        let mut c = self.store.reader().await?;
        for (kind, id) in [
            (ResourceKind::Line, &req.line),
            (ResourceKind::Sim, &req.sim),
        ] {
            let Some(id) = id else { continue };
            let field = format!("default_offers.{}", kind.as_str());
            check_offer(&mut c, &field, id, kind, currency).await?;
            out.push((kind, id.clone()));
        }
        Ok(out)
    }

    /// Writes a parent's default offers, in its update's transaction.
    pub async fn set_default_offers(
        &self,
        tx: &mut Conn,
        parent_id: &str,
        offers: &[(ResourceKind, String)],
        now_us: i64,
    ) -> Result<()> {
        for (kind, id) in offers {
            store::billing::set_account_offer(tx, parent_id, *kind, id, now_us).await?;
        }
        Ok(())
    }

    /// "Assign offer": a sub-account's offer for one kind, by the parent
    /// admin. Answers the sub-account's offers.
    pub async fn assign_offer(
        &self,
        principal: &Principal,
        sub_id: &str,
        req: OfferAssignment,
    ) -> Result<PlaceOffers> {
        let actor = self.enter(principal, sub_id).await?;
        self.require_subaccounts_enabled(actor.tree_parent())?;
        require_subaccount(&actor.target, "assigning an offer")?;
        self.authorize(&actor, "offer.assign", &["kind", "offer_id"])
            .await?;
        let kind = kind_of("kind", &req.kind)?;
        let mut c = self.store.reader().await?;
        check_offer(
            &mut c,
            "offer_id",
            &req.offer_id,
            kind,
            &actor.target.currency,
        )
        .await?;
        drop(c);
        let mut tx = self.store.begin().await?;
        if !store::accounts::lock_live(&mut tx, &actor.target.id).await? {
            return Err(Error::Conflict(format!(
                "account `{}` is deleted; offers apply to live sub-accounts",
                actor.target.id
            )));
        }
        store::billing::set_account_offer(
            &mut tx,
            &actor.target.id,
            kind,
            &req.offer_id,
            self.clock.now_us(),
        )
        .await?;
        let offers = place_offers(&mut tx, &actor.target.id).await?;
        tx.commit().await.map_err(store::db_error)?;
        Ok(offers)
    }

    /// A place's offers (for reads that show them, group `plan`).
    pub async fn offers_of(&self, account_id: &str) -> Result<PlaceOffers> {
        let mut c = self.store.reader().await?;
        place_offers(&mut c, account_id).await
    }

    /// The billing summary of a period (default: the current one, live;
    /// a closed one answers its invoice's groups). `plan_hidden` when the
    /// viewer's `visibility` hides fees.
    pub async fn billing_summary(
        &self,
        principal: &Principal,
        parent_id: &str,
        period: Option<&str>,
    ) -> Result<(Bill, bool)> {
        let actor = self.enter(principal, parent_id).await?;
        require_parent(&actor.target, "a billing summary")?;
        self.authorize(&actor, "billing.read", &[]).await?;
        let view = self.view(&actor, "billing.read", "billing").await?;
        let current = Period::of(self.clock.now());
        let period = match period {
            Some(p) => period_of("period", p)?,
            None => current,
        };
        if period > current {
            return Err(Error::invalid(
                "period",
                format!("{period} has not begun; ask for {current} or an earlier month"),
            ));
        }
        let parent = &actor.target;
        let bill = if period == current {
            let mut c = self.store.reader().await?;
            compute_bill(&mut c, parent, period, self.clock.now_us() + 1).await?
        } else {
            self.close_tree(parent).await?;
            let mut c = self.store.reader().await?;
            match store::billing::invoice_of_period(&mut c, &parent.id, &period.to_string()).await?
            {
                Some(invoice) => invoice.bill,
                // Before the tree existed: nothing to bill.
                None => compute_bill(&mut c, parent, period, period.end_us()).await?,
            }
        };
        Ok((bill, view.hides("plan")))
    }

    /// A credit or discount on a period's bill (operator). A closed
    /// period's invoice is fixed: 409.
    pub async fn create_adjustment(
        &self,
        parent_id: &str,
        req: NewAdjustment,
    ) -> Result<Adjustment> {
        let parent = self.get_parent(parent_id).await?;
        self.authorize_operator("adjustment.create", Some(&parent))
            .await?;
        if let Some(id) = store::idempotency::committed_resource() {
            let mut c = self.store.reader().await?;
            return store::billing::get_adjustment(&mut c, &id)
                .await?
                .ok_or_else(|| Error::internal("the committed adjustment vanished"));
        }
        if req.kind != "credit" && req.kind != "discount" {
            return Err(Error::invalid("kind", "must be `credit` or `discount`"));
        }
        let amount_micros = amount("amount", &req.amount, &parent.currency)?
            .to_micros()
            .map_err(|e| Error::invalid("amount", e.to_string()))?;
        if amount_micros == 0 {
            return Err(Error::invalid("amount", "must be more than zero"));
        }
        let reason = short_text("reason", &req.reason)?;
        let period = period_of("period", &req.period)?;
        let account_id = match req.account_id.as_deref() {
            None => None,
            Some(id) if id == parent.id => None,
            Some(id) => {
                let mut c = self.store.reader().await?;
                let sub = store::accounts::get(&mut c, id).await?;
                if sub.as_ref().and_then(|s| s.parent_id.as_deref()) != Some(parent.id.as_str()) {
                    return Err(Error::invalid(
                        "account_id",
                        format!(
                            "`{id}` is not a sub-account of `{}`; send one of its sub-accounts, or leave it out for the Available group",
                            parent.id
                        ),
                    ));
                }
                Some(id.to_string())
            }
        };
        let adjustment = Adjustment {
            id: new_id("adj"),
            tree_id: parent.id.clone(),
            account_id,
            kind: req.kind.clone(),
            amount_micros,
            currency: parent.currency.clone(),
            reason,
            period: period.to_string(),
            created_at: self.clock.now_us(),
        };
        let mut tx = self.store.begin().await?;
        // The close takes the same lock before it reads the adjustments.
        store::accounts::lock(&mut tx, &parent.id).await?;
        if store::billing::invoice_of_period(&mut tx, &parent.id, &adjustment.period)
            .await?
            .is_some()
        {
            return Err(Error::Conflict(format!(
                "period {} is closed and its invoice is fixed; adjust the current or a later period",
                adjustment.period
            )));
        }
        store::idempotency::note_resource_in(&mut tx, &adjustment.id).await?;
        store::billing::insert_adjustment(&mut tx, &adjustment).await?;
        tx.commit().await.map_err(store::db_error)?;
        Ok(adjustment)
    }

    /// A tree's invoices, newest first; periods due are closed first.
    pub async fn list_invoices(
        &self,
        principal: &Principal,
        parent_id: &str,
        page: &Page,
    ) -> Result<Paged<Invoice>> {
        let parent = self.invoice_reader(principal, parent_id).await?;
        self.close_tree(&parent).await?;
        let mut c = self.store.reader().await?;
        let items = store::billing::list_invoices(&mut c, &parent.id, page).await?;
        Ok(Paged::from_fetch(items, page, |i| i.period.clone()))
    }

    pub async fn get_invoice(
        &self,
        principal: &Principal,
        parent_id: &str,
        invoice_id: &str,
    ) -> Result<Invoice> {
        let parent = self.invoice_reader(principal, parent_id).await?;
        let mut c = self.store.reader().await?;
        store::billing::get_invoice(&mut c, &parent.id, invoice_id)
            .await?
            .ok_or_else(|| Error::not_found("invoice", invoice_id))
    }

    async fn invoice_reader(&self, principal: &Principal, parent_id: &str) -> Result<Account> {
        let actor = self.enter(principal, parent_id).await?;
        require_parent(&actor.target, "invoices")?;
        self.authorize(&actor, "invoice.read", &[]).await?;
        Ok(actor.target)
    }

    /// One pass of the close: every tree's periods that ended. Each period
    /// closes in its own transaction; a failure is logged and retried on
    /// the next pass.
    pub async fn close_periods(&self) -> Result<()> {
        let parents = {
            let mut c = self.store.reader().await?;
            store::billing::parents_to_bill(&mut c).await?
        };
        for id in parents {
            let parent = {
                let mut c = self.store.reader().await?;
                store::accounts::get(&mut c, &id).await?
            };
            if let Some(parent) = parent
                && let Err(e) = self.close_tree(&parent).await
            {
                tracing::warn!(parent = %id, error = %e, "closing billing periods failed; retrying on the next pass");
            }
        }
        Ok(())
    }

    /// Closes every period of one tree that ended and has no invoice yet,
    /// oldest first.
    pub async fn close_tree(&self, parent: &Account) -> Result<()> {
        let current = Period::of(self.clock.now());
        let (first, last) = {
            let mut c = self.store.reader().await?;
            (
                store::billing::first_activity(&mut c, &parent.id).await?,
                store::billing::last_closed(&mut c, &parent.id).await?,
            )
        };
        let Some(first) = first else { return Ok(()) };
        let mut period = Period::of_us(first);
        if let Some(last) = last.as_deref().and_then(|l| Period::parse(l).ok()) {
            period = period.max(last.next());
        }
        while period < current {
            self.close_period(parent, period).await?;
            period = period.next();
        }
        Ok(())
    }

    /// Closes one period into its invoice and posts its recurring charges,
    /// in one transaction: exactly once across hosts (the invoice's
    /// `UNIQUE (tree_id, period)` and the transfers' keys).
    async fn close_period(&self, parent: &Account, period: Period) -> Result<()> {
        let now_us = self.clock.now_us();
        let invoice_id = new_id("inv");
        let mut tx = self.store.begin().await?;
        if !store::billing::claim_invoice(
            &mut tx,
            &invoice_id,
            &parent.id,
            &period.to_string(),
            &parent.currency,
            now_us,
        )
        .await?
        {
            return Ok(());
        }
        // Adjustments take this lock before they check the period is open.
        store::accounts::lock(&mut tx, &parent.id).await?;
        let parent = store::accounts::get(&mut tx, &parent.id)
            .await?
            .ok_or_else(|| Error::not_found("account", &parent.id))?;
        let mut bill = compute_bill(&mut tx, &parent, period, period.end_us()).await?;
        // What the ledger can take: a prepaid balance down to zero, a
        // postpaid parent up to its limit for the period (invariant 4).
        let wallet = LedgerRef::parent_wallet(&parent);
        let postpaid = parent.billing_type == Some(BillingType::Postpaid);
        let mut room: Option<i64> = if postpaid {
            match parent.monthly_credit_limit {
                Some(limit) => {
                    let month =
                        store::ledger::monthly(&mut tx, &parent.id, &period.to_string()).await?;
                    Some(
                        ledger::available_credit(limit, &month)
                            .to_micros()
                            .unwrap_or(0),
                    )
                }
                None => None,
            }
        } else {
            Some(
                store::ledger::lock_balance(&mut tx, &wallet, now_us)
                    .await?
                    .to_micros()
                    .unwrap_or(0),
            )
        };
        for group in &mut bill.groups {
            let take = match room {
                Some(r) => group.charge.min(r.max(0)),
                None => group.charge,
            };
            group.due = group.charge - take;
            if take <= 0 {
                continue;
            }
            if let Some(r) = room.as_mut() {
                *r -= take;
            }
            let posting = Posting {
                kind: TransferKind::Usage,
                debit: wallet.clone(),
                credit: LedgerRef::revenue(&parent, &group.account_id),
                amount: Amount::from_micros(take),
                subject_id: parent.id.clone(),
                tree_id: parent.id.clone(),
                month: period.to_string(),
                spend: if postpaid {
                    vec![MonthlyLimit {
                        account_id: parent.id.clone(),
                        limit: parent.monthly_credit_limit,
                        column: SpendColumn::Usage,
                    }]
                } else {
                    vec![]
                },
                reference: Some(format!("recurring {period} {}", group.account_id)),
            };
            store::ledger::post(
                &mut tx,
                self.store.backend,
                &posting,
                &recurring_key(&parent.id, period, &group.account_id),
                now_us,
                vec![],
            )
            .await?;
        }
        bill.due = bill.groups.iter().map(|g| g.due).sum();
        bill.charged = bill.groups.iter().map(|g| g.charge - g.due).sum();
        store::billing::finish_invoice(&mut tx, &invoice_id, &bill).await?;
        tx.commit().await.map_err(store::db_error)?;
        tracing::info!(parent = %parent.id, %period, total = bill.total, due = bill.due, "billing period closed");
        Ok(())
    }
}

/// The close on every host: each `CLOSE_EVERY`, every tree's periods that
/// ended (the invoice's unique period makes it once across hosts).
pub async fn close_forever(canopy: std::sync::Arc<Canopy>) {
    let mut every = tokio::time::interval(CLOSE_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if let Err(e) = canopy.close_periods().await {
            tracing::warn!(error = %e, "the billing close pass failed; retrying on the next pass");
        }
    }
}

fn require_parent(account: &Account, what: &str) -> Result<()> {
    if account.is_parent() {
        Ok(())
    } else {
        Err(Error::Forbidden(format!(
            "{what} belong to the parent account; use the parent's id"
        )))
    }
}

/// Checks that `id` is an offer of `kind` in `currency`; 422 on `field`.
async fn check_offer(
    c: &mut Conn,
    field: &str,
    id: &str,
    kind: ResourceKind,
    currency: &str,
) -> Result<Offer> {
    let offer = store::billing::get_offer(c, id).await?.ok_or_else(|| {
        Error::invalid(
            field,
            format!("`{id}` is not an offer; send an id from GET /v1/operator/offers"),
        )
    })?;
    if offer.kind != kind {
        return Err(Error::invalid(
            field,
            format!("`{id}` is a {} offer; send a {} offer", offer.kind, kind),
        ));
    }
    if offer.currency != currency {
        return Err(Error::invalid(
            field,
            format!(
                "`{id}` is priced in {}, the account bills in {currency}; send an offer in {currency}",
                offer.currency
            ),
        ));
    }
    Ok(offer)
}

async fn place_offers(c: &mut Conn, account_id: &str) -> Result<PlaceOffers> {
    let offers = store::billing::offers_of(c, account_id).await?;
    Ok(PlaceOffers {
        line: offers.get(&ResourceKind::Line).map(|o| o.id.clone()),
        sim: offers.get(&ResourceKind::Sim).map(|o| o.id.clone()),
    })
}

/// A tree's bill for `period`, counting the days begun before `until_us`.
async fn compute_bill(
    c: &mut Conn,
    parent: &Account,
    period: Period,
    until_us: i64,
) -> Result<Bill> {
    let places = store::billing::places(c, &parent.id).await?;
    let offers = store::billing::offers_of_tree(c, &parent.id).await?;
    let billables = store::billing::billables(c, &parent.id, until_us.min(period.end_us())).await?;
    let usage = store::billing::usage_by_account(c, &parent.id, &period.to_string()).await?;
    let adjustments = store::billing::adjustments_of(c, &parent.id, &period.to_string()).await?;

    // A merged sub-account's charges go to the one it was merged into
    // (following a chain of merges, bounded by the tree's size).
    let merged: HashMap<&str, &str> = places
        .iter()
        .filter_map(|p| p.merged_into.as_deref().map(|t| (p.id.as_str(), t)))
        .collect();
    let group_of = |place: &str| -> String {
        let mut at = place;
        for _ in 0..=places.len() {
            match merged.get(at) {
                Some(next) => at = next,
                None => break,
            }
        }
        at.to_string()
    };
    let mut groups: Vec<Group> = vec![Group::new(&parent.id, "Available")];
    groups.extend(
        places
            .iter()
            .filter(|p| p.merged_into.is_none())
            .map(|p| Group::new(&p.id, &p.name)),
    );
    let index: HashMap<String, usize> = groups
        .iter()
        .enumerate()
        .map(|(i, g)| (g.account_id.clone(), i))
        .collect();
    // Anything of an account outside the tree's list goes to Available.
    let slot = |place: &str| index.get(&group_of(place)).copied().unwrap_or(0);

    let fee_of = |place: &str, kind: ResourceKind| -> Option<i64> {
        offers
            .get(&(place.to_string(), kind))
            .or_else(|| offers.get(&(parent.id.clone(), kind)))
            .filter(|o| o.currency == parent.currency)
            .map(|o| o.monthly_fee_micros)
    };
    let mut items = Vec::new();
    for b in &billables {
        let charges = billing::charges(&b.history, period, until_us, |place| fee_of(place, b.kind));
        // One line per resource and group.
        let mut per_group: Vec<(usize, billing::PlaceCharge)> = Vec::new();
        for ch in charges {
            let g = slot(&ch.place);
            match per_group.iter_mut().find(|(i, _)| *i == g) {
                Some((_, sum)) => {
                    sum.days += ch.days;
                    sum.amount_micros += ch.amount_micros;
                }
                None => per_group.push((g, ch)),
            }
        }
        for (g, ch) in per_group {
            groups[g].add(b.kind, &ch);
            items.push(Item {
                resource_id: b.id.clone(),
                kind: b.kind.as_str().into(),
                identifier: b.identifier.clone(),
                account_id: groups[g].account_id.clone(),
                days: ch.days,
                amount: ch.amount_micros,
            });
        }
    }
    for (subject, micros) in &usage {
        groups[slot(subject)].usage += micros;
    }
    for ((place, kind), micros) in &adjustments {
        let g = &mut groups[slot(place)];
        if kind == "credit" {
            g.credits += micros;
        } else {
            g.discounts += micros;
        }
    }
    // A deleted sub-account shows only when its group has something.
    let deleted: Vec<&str> = places
        .iter()
        .filter(|p| p.status == "deleted")
        .map(|p| p.id.as_str())
        .collect();
    groups.retain(|g| {
        !deleted.contains(&g.account_id.as_str())
            || g.resource_days > 0
            || g.usage > 0
            || g.credits > 0
            || g.discounts > 0
    });
    let mut bill = Bill {
        period: period.to_string(),
        currency: parent.currency.clone(),
        groups,
        items,
        total: 0,
        charged: 0,
        due: 0,
    };
    bill.settle();
    Ok(bill)
}

//! Idempotency-Keys (invariant 7): reading what a key holds, and storing
//! the answer after the effect's own transaction recorded the key (see
//! `store::idempotency`).

use super::Canopy;
use crate::Result;
use crate::store::{self, idempotency::Answer, idempotency::Guard, idempotency::Stored};

impl Canopy {
    /// What `(scope, key)` holds within retention.
    pub async fn stored_key(&self, scope: &str, key: &str, now_us: i64) -> Result<Option<Stored>> {
        let mut c = self.store.reader().await?;
        store::idempotency::find(&mut c, scope, key, now_us).await
    }

    /// Stores the answer of a guarded request (already without secrets).
    pub async fn remember_answer(&self, guard: &Guard, answer: &Answer<'_>) -> Result<()> {
        let mut tx = self.store.begin().await?;
        store::idempotency::remember(&mut tx, guard, answer).await?;
        tx.commit().await.map_err(store::db_error)
    }
}

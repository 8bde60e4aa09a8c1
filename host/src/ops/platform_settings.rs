//! The operator's platform settings (`GET`/`PATCH /v1/operator/settings`),
//! kept in the `settings` key/value table so every host reads the same.

use serde::Deserialize;

use super::Canopy;
use crate::domain::retention::{PlatformSettings, check_retention_days};
use crate::store::{self, Conn};
use crate::{Error, Result};

const RETENTION_KEY: &str = "data_retention_days";
const WEBHOOKS_PRIVATE_KEY: &str = "webhooks_allow_private";

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsChanges {
    /// Days a deleted account's personal data is kept before the purge
    /// (1 to 3650; default 30).
    pub data_retention_days: Option<i64>,
    /// Whether webhooks may target private and loopback addresses
    /// (default false).
    pub webhooks_allow_private: Option<bool>,
}

/// The settings in force, defaults for those never set.
pub async fn read(c: &mut Conn) -> Result<PlatformSettings> {
    let mut out = PlatformSettings::default();
    if let Some(v) = store::settings::get(c, RETENTION_KEY).await? {
        out.data_retention_days = v
            .parse()
            .map_err(|_| Error::internal("stored data_retention_days is not a number"))?;
    }
    if let Some(v) = store::settings::get(c, WEBHOOKS_PRIVATE_KEY).await? {
        out.webhooks_allow_private = v == "true";
    }
    Ok(out)
}

impl Canopy {
    pub async fn platform_settings(&self) -> Result<PlatformSettings> {
        self.authorize_operator("settings.read", None).await?;
        let mut c = self.store.reader().await?;
        read(&mut c).await
    }

    pub async fn update_platform_settings(
        &self,
        changes: SettingsChanges,
    ) -> Result<PlatformSettings> {
        self.authorize_operator("settings.update", None).await?;
        let days = changes
            .data_retention_days
            .map(check_retention_days)
            .transpose()
            .map_err(|why| Error::invalid("data_retention_days", why))?;
        let mut tx = self.store.begin().await?;
        if let Some(days) = days {
            store::settings::put(&mut tx, RETENTION_KEY, &days.to_string()).await?;
        }
        if let Some(allow) = changes.webhooks_allow_private {
            store::settings::put(
                &mut tx,
                WEBHOOKS_PRIVATE_KEY,
                if allow { "true" } else { "false" },
            )
            .await?;
        }
        let now = read(&mut tx).await?;
        tx.commit().await.map_err(store::db_error)?;
        tracing::info!(
            data_retention_days = now.data_retention_days,
            webhooks_allow_private = now.webhooks_allow_private,
            "platform settings changed"
        );
        Ok(now)
    }
}

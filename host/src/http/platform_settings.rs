//! The operator's platform settings.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{Body, Operator};
use super::{AppState, Problem};
use crate::Result;
use crate::domain::retention::PlatformSettings;
use crate::ops::platform_settings::SettingsChanges;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_settings, update_settings))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SettingsView {
    /// Days a deleted account's personal data is kept before it is purged.
    #[schema(example = 30)]
    pub data_retention_days: i64,
    /// Whether webhooks may target private and loopback addresses.
    pub webhooks_allow_private: bool,
}

impl From<PlatformSettings> for SettingsView {
    fn from(s: PlatformSettings) -> SettingsView {
        SettingsView {
            data_retention_days: s.data_retention_days,
            webhooks_allow_private: s.webhooks_allow_private,
        }
    }
}

/// The platform's settings.
#[utoipa::path(get, path = "/v1/operator/settings", tag = "operator",
    responses((status = 200, body = SettingsView), (status = "4XX", body = Problem)))]
async fn get_settings(State(s): State<AppState>, _: Operator) -> Result<Json<SettingsView>> {
    Ok(Json(s.canopy.platform_settings().await?.into()))
}

/// Change the platform's settings (only the fields given).
#[utoipa::path(patch, path = "/v1/operator/settings", tag = "operator", request_body = SettingsChanges,
    responses((status = 200, body = SettingsView), (status = "4XX", body = Problem)))]
async fn update_settings(
    State(s): State<AppState>,
    _: Operator,
    Body(req): Body<SettingsChanges>,
) -> Result<Json<SettingsView>> {
    Ok(Json(s.canopy.update_platform_settings(req).await?.into()))
}

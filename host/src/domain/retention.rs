//! Data retention: the operator's settings and when a deleted account's
//! personal data is purged. No I/O here.

/// `data_retention_days` when the operator set none.
pub const RETENTION_DAYS_DEFAULT: i64 = 30;
/// The range the operator may set.
pub const RETENTION_DAYS_MIN: i64 = 1;
pub const RETENTION_DAYS_MAX: i64 = 3650;

const DAY_US: i64 = 24 * 3600 * 1_000_000;

/// The operator's platform settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlatformSettings {
    pub data_retention_days: i64,
    /// Whether webhooks may target private or loopback addresses.
    pub webhooks_allow_private: bool,
}

impl Default for PlatformSettings {
    fn default() -> PlatformSettings {
        PlatformSettings {
            data_retention_days: RETENTION_DAYS_DEFAULT,
            webhooks_allow_private: false,
        }
    }
}

/// Checks a retention period; the reason for the 422 otherwise.
pub fn check_retention_days(days: i64) -> Result<i64, String> {
    if (RETENTION_DAYS_MIN..=RETENTION_DAYS_MAX).contains(&days) {
        Ok(days)
    } else {
        Err(format!(
            "must be a whole number of days from {RETENTION_DAYS_MIN} to {RETENTION_DAYS_MAX}"
        ))
    }
}

/// Accounts deleted at or before this instant are due for the purge.
pub fn purge_cutoff_us(now_us: i64, retention_days: i64) -> i64 {
    now_us.saturating_sub(retention_days.saturating_mul(DAY_US))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_range() {
        assert_eq!(check_retention_days(30), Ok(30));
        assert!(check_retention_days(1).is_ok());
        assert!(check_retention_days(3650).is_ok());
        assert!(check_retention_days(0).is_err());
        assert!(check_retention_days(3651).is_err());
        assert!(check_retention_days(-5).is_err());
    }

    #[test]
    fn cutoff_is_exactly_the_period_before_now() {
        let now = 100 * DAY_US;
        assert_eq!(purge_cutoff_us(now, 30), 70 * DAY_US);
        // Deleted 30 days and one microsecond ago: due; one microsecond later: not.
        assert!(now - 30 * DAY_US <= purge_cutoff_us(now, 30));
        assert!(now - 30 * DAY_US + 1 > purge_cutoff_us(now, 30));
    }
}

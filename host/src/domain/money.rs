//! Exact money: `rust_decimal` in the domain, integer micro-units in storage.

use rust_decimal::Decimal;

/// Storage scale: amounts are kept as integer millionths of the currency
/// unit, fine enough for per-message prices such as 0.0035.
pub const SCALE: u32 = 6;
const MICROS_PER_UNIT: i64 = 1_000_000;

/// A non-negative or signed amount of money as the API and domain see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Amount(Decimal);

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("has more than {SCALE} decimal places")]
    TooPrecise,
    #[error("is too large")]
    TooLarge,
    #[error("must not be negative")]
    Negative,
}

impl Amount {
    pub const ZERO: Amount = Amount(Decimal::ZERO);

    /// Accepts any decimal that storage can hold exactly.
    pub fn new(value: Decimal) -> Result<Amount, AmountError> {
        let normalized = value.normalize();
        if normalized.scale() > SCALE {
            return Err(AmountError::TooPrecise);
        }
        let amount = Amount(normalized);
        amount.to_micros().map(|_| amount)
    }

    pub fn non_negative(value: Decimal) -> Result<Amount, AmountError> {
        if value.is_sign_negative() && !value.is_zero() {
            return Err(AmountError::Negative);
        }
        Amount::new(value)
    }

    pub fn from_micros(micros: i64) -> Amount {
        Amount(Decimal::new(micros, SCALE).normalize())
    }

    pub fn to_micros(self) -> Result<i64, AmountError> {
        let scaled = self
            .0
            .checked_mul(Decimal::from(MICROS_PER_UNIT))
            .ok_or(AmountError::TooLarge)?;
        i64::try_from(scaled).map_err(|_| AmountError::TooLarge)
    }

    pub fn decimal(self) -> Decimal {
        self.0
    }

    /// The wire form: at least two decimal places ("12.50", "0.0035").
    pub fn to_api_string(self) -> String {
        let mut d = self.0;
        if d.scale() < 2 {
            d.rescale(2);
        }
        d.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn round_trips_through_micros_exactly() {
        for s in ["0", "0.0035", "12.5", "100", "922337203685.477580"] {
            let a = Amount::new(dec(s)).unwrap();
            assert_eq!(Amount::from_micros(a.to_micros().unwrap()), a, "{s}");
        }
        assert_eq!(
            Amount::new(dec("0.0035")).unwrap().to_micros().unwrap(),
            3500
        );
    }

    #[test]
    fn refuses_what_storage_cannot_hold() {
        assert_eq!(Amount::new(dec("0.0000001")), Err(AmountError::TooPrecise));
        assert_eq!(
            Amount::new(dec("10000000000000")),
            Err(AmountError::TooLarge)
        );
        assert_eq!(Amount::non_negative(dec("-1")), Err(AmountError::Negative));
        // Trailing zeros beyond the scale are not extra precision.
        assert!(Amount::new(dec("1.50000000")).is_ok());
    }

    #[test]
    fn formats_for_the_api() {
        assert_eq!(Amount::new(dec("12.5")).unwrap().to_api_string(), "12.50");
        assert_eq!(
            Amount::new(dec("0.0035")).unwrap().to_api_string(),
            "0.0035"
        );
        assert_eq!(Amount::ZERO.to_api_string(), "0.00");
    }
}

//! Exact money: `rust_decimal` in the domain, integer micro-units in storage.

use rust_decimal::Decimal;
use serde::de::{self, Deserialize, Deserializer, Visitor};

use super::currency::Currency;

/// Storage scale: amounts are kept as integer millionths of the currency
/// unit, fine enough for per-message prices such as 0.0035.
pub const SCALE: u32 = 6;
const MICROS_PER_UNIT: i64 = 1_000_000;

/// The most any one amount in a request may be, in currency units: a
/// top-up, a budget move, a limit, a threshold, a price.
pub const AMOUNT_MAX_UNITS: i64 = 1_000_000_000;
/// The most a prepaid balance or an assigned budget may hold, in currency
/// units. Every posting holds the account it credits to it, in the same
/// statement that moves the money (`store::ledger`).
pub const BALANCE_MAX_UNITS: i64 = 100_000_000_000;
/// The most any ledger account may hold in either sign, in micro-units
/// (held by every posting, `store::ledger`): with amounts at most
/// [`AMOUNT_MAX_UNITS`], no update can overflow a 64-bit integer on the way.
pub const STORED_MICROS_MAX: i64 = 9_000_000_000_000_000_000;
/// The most a monthly counter (usage, allocated, returned) may hold, in
/// micro-units: a third of [`STORED_MICROS_MAX`], so that the monthly
/// limit's sum of the three cannot overflow either (`within_storage_range`,
/// migrations/0004).
pub const COUNTER_MICROS_MAX: i64 = STORED_MICROS_MAX / 3;
/// Decimal places a price may have (per-message prices such as 0.0035).
pub const PRICE_PLACES: u32 = SCALE;
/// Longest money text accepted at all.
const MONEY_TEXT_LEN_MAX: usize = 40;

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

    /// [`BALANCE_MAX_UNITS`] as an amount.
    pub fn balance_max() -> Amount {
        Amount(Decimal::from(BALANCE_MAX_UNITS))
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

    pub fn abs(self) -> Amount {
        Amount(self.0.abs())
    }

    /// `self + other`, or `TooLarge` where storage could not hold it.
    pub fn checked_add(self, other: Amount) -> Result<Amount, AmountError> {
        let sum = self.0.checked_add(other.0).ok_or(AmountError::TooLarge)?;
        Amount::new(sum)
    }

    /// `self - other`, or `TooLarge` where storage could not hold it.
    pub fn checked_sub(self, other: Amount) -> Result<Amount, AmountError> {
        let difference = self.0.checked_sub(other.0).ok_or(AmountError::TooLarge)?;
        Amount::new(difference)
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

/// Why a money text was refused; each says what to send instead.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error(
        "must be a decimal string, not a JSON number; send a decimal string such as \"150.00\""
    )]
    NotText,
    #[error("is not a decimal number; send a decimal string such as \"150.00\"")]
    Malformed,
    #[error("must not use exponent notation; send a decimal string such as \"1000.00\"")]
    Exponent,
    #[error("{}", too_many_places(.currency, *.places))]
    TooManyPlaces {
        /// `None` for a price.
        currency: Option<&'static str>,
        places: u32,
    },
    #[error(
        "is more than the maximum of {} per amount; send at most \"{}\"",
        max_text(),
        max_text()
    )]
    TooLarge,
    #[error("must not be negative; send a decimal string such as \"150.00\"")]
    Negative,
}

fn example(places: u32) -> String {
    let mut d = Decimal::from(150);
    d.rescale(places);
    d.to_string()
}

fn too_many_places(currency: &Option<&'static str>, places: u32) -> String {
    match (currency, places) {
        (Some(c), 0) => {
            format!(
                "{c} has no minor unit; send a whole number such as \"{}\"",
                example(0)
            )
        }
        (Some(c), p) => format!(
            "has more decimal places than {c} has ({p}); send a decimal string such as \"{}\"",
            example(p)
        ),
        (None, p) => {
            format!("has more than {p} decimal places; send a decimal string such as \"0.0075\"")
        }
    }
}

fn max_text() -> String {
    let mut d = Decimal::from(AMOUNT_MAX_UNITS);
    d.rescale(2);
    d.to_string()
}

/// A money amount as the client wrote it, kept as text until it is checked
/// against what it is (an amount in a currency, a price), so that nothing
/// is rounded before it is checked: `"1.001"` in USD is refused, never
/// taken as 1.00. Its shape (`-`? digits, `.` digits?) is checked when
/// the request is read; JSON numbers are refused (a float is not money).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoneyText(String);

impl MoneyText {
    pub fn parse(text: &str) -> Result<MoneyText, MoneyError> {
        if text.len() > MONEY_TEXT_LEN_MAX {
            return Err(MoneyError::Malformed);
        }
        let unsigned = text.strip_prefix('-').unwrap_or(text);
        if unsigned.starts_with(|c: char| c.is_ascii_digit() || c == '.')
            && unsigned.contains(['e', 'E'])
        {
            return Err(MoneyError::Exponent);
        }
        let (units, fraction) = match unsigned.split_once('.') {
            Some((u, f)) => (u, Some(f)),
            None => (unsigned, None),
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(units) || !fraction.is_none_or(digits) {
            return Err(MoneyError::Malformed);
        }
        Ok(MoneyText(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_negative(&self) -> bool {
        self.0.starts_with('-')
    }

    /// Decimal places that carry a value (trailing zeros do not).
    fn places(&self) -> u32 {
        let fraction = self.0.split_once('.').map_or("", |(_, f)| f);
        fraction.trim_end_matches('0').len() as u32
    }

    /// The value, exactly, within `places` decimal places and
    /// [`AMOUNT_MAX_UNITS`] either side of zero.
    fn exact(&self, places: u32, currency: Option<&'static str>) -> Result<Amount, MoneyError> {
        if self.places() > places {
            return Err(MoneyError::TooManyPlaces { currency, places });
        }
        let value = Decimal::from_str_exact(&self.0).map_err(|_| MoneyError::TooLarge)?;
        if value.abs() > Decimal::from(AMOUNT_MAX_UNITS) {
            return Err(MoneyError::TooLarge);
        }
        Amount::new(value).map_err(|_| MoneyError::TooLarge)
    }

    /// A signed amount of money in `currency`: at most its minor units.
    pub fn amount(&self, currency: &str) -> Result<Amount, MoneyError> {
        let places = Currency::minor_units_of(currency);
        let code = Currency::find(currency).map_or("this currency", |c| c.code);
        self.exact(places, Some(code))
    }

    /// An amount of money in `currency` that cannot be negative.
    pub fn non_negative(&self, currency: &str) -> Result<Amount, MoneyError> {
        if self.is_negative() {
            return Err(MoneyError::Negative);
        }
        self.amount(currency)
    }

    /// A price per unit: up to [`PRICE_PLACES`] places, never negative.
    pub fn price(&self) -> Result<Amount, MoneyError> {
        if self.is_negative() {
            return Err(MoneyError::Negative);
        }
        self.exact(PRICE_PLACES, None)
    }
}

impl<'de> Deserialize<'de> for MoneyText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<MoneyText, D::Error> {
        struct Text;

        impl Visitor<'_> for Text {
            type Value = MoneyText;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a decimal string such as \"150.00\"")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<MoneyText, E> {
                MoneyText::parse(v).map_err(E::custom)
            }

            fn visit_i64<E: de::Error>(self, _: i64) -> Result<MoneyText, E> {
                Err(E::custom(MoneyError::NotText))
            }

            fn visit_u64<E: de::Error>(self, _: u64) -> Result<MoneyText, E> {
                Err(E::custom(MoneyError::NotText))
            }

            fn visit_f64<E: de::Error>(self, _: f64) -> Result<MoneyText, E> {
                Err(E::custom(MoneyError::NotText))
            }
        }

        deserializer.deserialize_any(Text)
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

    fn text(s: &str) -> MoneyText {
        MoneyText::parse(s).unwrap()
    }

    #[test]
    fn money_text_places_follow_the_currency() {
        assert_eq!(
            text("150.00").amount("USD").unwrap().to_api_string(),
            "150.00"
        );
        assert_eq!(text("1.5").amount("EUR").unwrap().to_api_string(), "1.50");
        // Trailing zeros carry no value: not extra places.
        assert!(text("10.000").amount("USD").is_ok());
        assert!(matches!(
            text("1.001").amount("USD"),
            Err(MoneyError::TooManyPlaces {
                currency: Some("USD"),
                places: 2
            })
        ));
        assert!(text("150").amount("JPY").is_ok());
        let jpy = text("150.5").amount("JPY").unwrap_err();
        assert!(jpy.to_string().contains("JPY has no minor unit"), "{jpy}");
        assert!(text("1.234").amount("KWD").is_ok());
        assert!(text("1.234").amount("BHD").is_ok());
        assert!(text("1.2345").amount("KWD").is_err());
        // Prices keep six places whatever the currency.
        assert_eq!(text("0.0035").price().unwrap().to_micros().unwrap(), 3500);
        assert!(text("0.0000001").price().is_err());
    }

    #[test]
    fn money_text_is_refused_rather_than_rounded() {
        let digits29 = format!("1.{}1", "0".repeat(28));
        assert!(matches!(
            text(&digits29).amount("USD"),
            Err(MoneyError::TooManyPlaces { .. })
        ));
        assert!(text(&digits29).price().is_err());
        for exponent in ["1e3", "1E3", "1.5e2", "-1e3"] {
            assert_eq!(
                MoneyText::parse(exponent),
                Err(MoneyError::Exponent),
                "{exponent}"
            );
        }
        for bad in [
            "", "-", ".5", "5.", "+5", " 5", "5 ", "1,000.00", "1.2.3", "0x10", "NaN", "١٢",
        ] {
            assert_eq!(MoneyText::parse(bad), Err(MoneyError::Malformed), "{bad:?}");
        }
        assert_eq!(
            MoneyText::parse(&"9".repeat(41)),
            Err(MoneyError::Malformed)
        );
    }

    #[test]
    fn money_text_is_bounded_by_the_maximum() {
        assert!(text("1000000000.00").amount("USD").is_ok());
        assert_eq!(
            text("1000000000.01").amount("USD"),
            Err(MoneyError::TooLarge)
        );
        assert_eq!(
            text("-1000000000.01").amount("USD"),
            Err(MoneyError::TooLarge)
        );
        assert_eq!(
            text(&"9".repeat(35)).amount("USD"),
            Err(MoneyError::TooLarge)
        );
        assert_eq!(text("1000000001").price(), Err(MoneyError::TooLarge));
        let message = MoneyError::TooLarge.to_string();
        assert!(message.contains("1000000000.00"), "{message}");
    }

    #[test]
    fn money_text_sign() {
        assert_eq!(
            text("-25.50").amount("USD").unwrap().to_api_string(),
            "-25.50"
        );
        assert_eq!(
            text("-25.50").non_negative("USD"),
            Err(MoneyError::Negative)
        );
        assert_eq!(text("-0.0075").price(), Err(MoneyError::Negative));
        assert!(text("0").non_negative("USD").is_ok());
    }

    #[test]
    fn money_text_comes_only_from_json_strings() {
        let parsed: MoneyText = serde_json::from_str("\"12.50\"").unwrap();
        assert_eq!(parsed.as_str(), "12.50");
        for number in ["12.5", "12", "-3", "1e3"] {
            let e = serde_json::from_str::<MoneyText>(number).unwrap_err();
            assert!(
                e.to_string().contains("send a decimal string such as"),
                "{e}"
            );
        }
        let e = serde_json::from_str::<MoneyText>("\"1e3\"").unwrap_err();
        assert!(e.to_string().contains("exponent"), "{e}");
    }

    #[test]
    fn checked_arithmetic_refuses_what_storage_cannot_hold() {
        let big = Amount::from_micros(i64::MAX - 1);
        assert_eq!(
            big.checked_add(Amount::from_micros(2)),
            Err(AmountError::TooLarge)
        );
        assert_eq!(
            Amount::from_micros(i64::MIN + 1).checked_sub(Amount::from_micros(2)),
            Err(AmountError::TooLarge)
        );
        assert_eq!(
            Amount::from_micros(5).checked_sub(Amount::from_micros(7)),
            Ok(Amount::from_micros(-2))
        );
    }

    #[test]
    fn the_schema_holds_the_named_maximums() {
        let schema = include_str!("../../../migrations/0004_identity_and_exactly_once.sql");
        let balance_max_micros = BALANCE_MAX_UNITS * MICROS_PER_UNIT;
        assert!(schema.contains(&format!("usage_micros <= {COUNTER_MICROS_MAX}")));
        // The largest stored value plus the largest amount still fits an i64.
        assert!(
            STORED_MICROS_MAX
                .checked_add(AMOUNT_MAX_UNITS * MICROS_PER_UNIT)
                .is_some()
        );
        assert!(balance_max_micros < STORED_MICROS_MAX);
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

//! The validated product types. Requests are parsed into these once, at the gRPC boundary, with
//! DRF's messages for what is wrong; everything past the boundary trusts them. The fields are
//! here; the requests made of them ([`NewProduct`], [`ProductChanges`]) in `requests`.

use std::fmt;

use service_kit::validation::{self, FieldErrors, Messages};

/// DRF's message for a decimal that does not parse.
pub const INVALID_NUMBER: &str = "A valid number is required.";
/// DRF's message for a value under a field's minimum of 0.
pub const NEGATIVE: &str = "Ensure this value is greater than or equal to 0.";

/// One field's complaint, as service-kit's parsers return it.
fn complaint(message: impl Into<String>) -> Messages {
    vec![message.into()]
}

/// A product name: trimmed (as DRF's `CharField` does), not blank, at most 200 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductName(String);

impl ProductName {
    pub const MAX_CHARS: usize = 200;

    /// `None` is a missing name (required).
    pub fn parse(raw: Option<String>) -> Result<Self, Messages> {
        let name = validation::required_text(raw)?;
        if name.chars().count() > Self::MAX_CHARS {
            return Err(complaint(validation::too_long(Self::MAX_CHARS)));
        }
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A price: an exact decimal `>= 0` with at most 2 places, held as integer cents. The bounds are
/// those of Django's `DecimalField(max_digits=10, decimal_places=2)`, so a price always fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Price {
    cents: i64,
}

impl Price {
    const MAX_DIGITS: usize = 10;
    const DECIMAL_PLACES: usize = 2;
    const MAX_WHOLE_DIGITS: usize = Self::MAX_DIGITS - Self::DECIMAL_PLACES;

    /// Parses a decimal string (`"19.99"`, `"19"`, `".5"`, `"+3.10"`; surrounding spaces are
    /// ignored), checking what DRF checks, in DRF's order: a number at all, its digits, then the
    /// minimum.
    pub fn parse(raw: &str) -> Result<Self, Messages> {
        let text = raw.trim();
        let (negative, unsigned) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
        let all_digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
        if whole.len() + fraction.len() == 0 || !all_digits(whole) || !all_digits(fraction) {
            return Err(complaint(INVALID_NUMBER));
        }
        // Digits are counted as Python's Decimal counts them: leading zeros of the whole part
        // do not count, trailing zeros of the fraction do.
        let whole = whole.trim_start_matches('0');
        if whole.len() + fraction.len() > Self::MAX_DIGITS {
            return Err(complaint(format!(
                "Ensure that there are no more than {} digits in total.",
                Self::MAX_DIGITS
            )));
        }
        if fraction.len() > Self::DECIMAL_PLACES {
            return Err(complaint(format!(
                "Ensure that there are no more than {} decimal places.",
                Self::DECIMAL_PLACES
            )));
        }
        if whole.len() > Self::MAX_WHOLE_DIGITS {
            return Err(complaint(format!(
                "Ensure that there are no more than {} digits before the decimal point.",
                Self::MAX_WHOLE_DIGITS
            )));
        }
        // At most 10 digits in all: the arithmetic below cannot overflow.
        let digits_value =
            |part: &str| part.bytes().fold(0i64, |n, b| n * 10 + i64::from(b - b'0'));
        let fraction_cents = digits_value(fraction) * if fraction.len() == 1 { 10 } else { 1 };
        let cents = digits_value(whole) * 100 + fraction_cents;
        if negative && cents > 0 {
            return Err(complaint(NEGATIVE));
        }
        Ok(Self { cents })
    }

    /// A price read back from storage, where only valid prices are ever written.
    pub fn from_cents(cents: i64) -> Self {
        Self { cents }
    }

    pub fn cents(self) -> i64 {
        self.cents
    }

    /// Always two places, as DRF renders a `DecimalField`: `"19.90"`. Written without
    /// `core::fmt`, which was a tenth of inventory's instructions per listed page.
    pub fn to_decimal(self) -> String {
        // Never negative: `parse` refuses it, and only parsed prices are stored.
        let cents = self.cents.unsigned_abs();
        let mut text = String::with_capacity(24);
        text.push_str(itoa::Buffer::new().format(cents / 100));
        text.push('.');
        text.push(char::from(b'0' + (cents / 10 % 10) as u8));
        text.push(char::from(b'0' + (cents % 10) as u8));
        text
    }
}

impl fmt::Display for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_decimal())
    }
}

/// A stock level: `0 ..= 2147483647`, the range of Django's `PositiveIntegerField`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Quantity(i64);

impl Quantity {
    pub const MAX: i64 = i32::MAX as i64;

    pub fn parse(value: i64) -> Result<Self, Messages> {
        if value < 0 {
            Err(complaint(NEGATIVE))
        } else if value > Self::MAX {
            Err(complaint(at_most(Self::MAX)))
        } else {
            Ok(Self(value))
        }
    }

    /// A quantity read back from storage, where only valid quantities are ever written.
    pub fn from_stored(value: i64) -> Self {
        Self(value)
    }

    pub fn value(self) -> i64 {
        self.0
    }
}

/// DRF's message for a value over a field's maximum.
fn at_most(max: i64) -> String {
    format!("Ensure this value is less than or equal to {max}.")
}

/// A change of stock for AdjustStock: any amount a [`Quantity`] can hold, either way. Whether
/// the result stays in range is decided by the database, atomically.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StockDelta(i64);

impl StockDelta {
    pub fn parse(value: i64) -> Result<Self, FieldErrors> {
        if value < -Quantity::MAX {
            Err(FieldErrors::single(
                "delta",
                format!(
                    "Ensure this value is greater than or equal to {}.",
                    -Quantity::MAX
                ),
            ))
        } else if value > Quantity::MAX {
            Err(FieldErrors::single("delta", at_most(Quantity::MAX)))
        } else {
            Ok(Self(value))
        }
    }

    pub fn value(self) -> i64 {
        self.0
    }

    /// The field error for a delta that would push the stock over [`Quantity::MAX`], given the
    /// stock it was applied to.
    pub fn exceeds_capacity(current: Quantity) -> FieldErrors {
        FieldErrors::single("delta", at_most(Quantity::MAX - current.value()))
    }
}

mod requests;

pub use requests::{NewProduct, ProductChanges};

#[cfg(test)]
mod tests {
    use super::*;

    fn price_error(raw: &str) -> String {
        Price::parse(raw).unwrap_err().join(" ")
    }

    #[test]
    fn prices_are_exact_cents() {
        assert_eq!(Price::parse("19.99").map(Price::cents), Ok(1999));
        assert_eq!(Price::parse("19").map(Price::cents), Ok(1900));
        assert_eq!(Price::parse("19.9").map(Price::cents), Ok(1990));
        assert_eq!(Price::parse(" .5 ").map(Price::cents), Ok(50));
        assert_eq!(Price::parse("0").map(Price::cents), Ok(0));
        assert_eq!(Price::parse("-0.00").map(Price::cents), Ok(0));
        assert_eq!(Price::parse("00012.50").map(Price::cents), Ok(1250));
        assert_eq!(
            Price::parse("99999999.99").map(Price::cents),
            Ok(9_999_999_999)
        );
    }

    #[test]
    fn prices_are_rejected_with_drf_messages() {
        assert_eq!(
            price_error("19.999"),
            "Ensure that there are no more than 2 decimal places."
        );
        assert_eq!(
            price_error("19.990"),
            "Ensure that there are no more than 2 decimal places."
        );
        assert_eq!(price_error("-1"), NEGATIVE);
        for not_a_number in ["abc", "", " ", ".", "-", "1.2.3", "1e2", "1,5", "NaN", "½"] {
            assert_eq!(
                price_error(not_a_number),
                INVALID_NUMBER,
                "{not_a_number:?}"
            );
        }
        assert_eq!(
            price_error("12345678901"),
            "Ensure that there are no more than 10 digits in total."
        );
        assert_eq!(
            price_error("123456789.1"),
            "Ensure that there are no more than 8 digits before the decimal point."
        );
    }

    #[test]
    fn prices_render_with_two_places() {
        assert_eq!(Price::from_cents(1990).to_string(), "19.90");
        assert_eq!(Price::from_cents(5).to_string(), "0.05");
        assert_eq!(Price::from_cents(0).to_decimal(), "0.00");
        assert_eq!(Price::from_cents(9_999_999_999).to_decimal(), "99999999.99");
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        let parse = |raw: &str| ProductName::parse(Some(raw.to_owned()));
        assert_eq!(parse("  Widget ").unwrap().as_str(), "Widget");
        assert_eq!(parse("   ").unwrap_err(), [validation::BLANK]);
        assert_eq!(
            ProductName::parse(None).unwrap_err(),
            [validation::REQUIRED]
        );
        assert!(parse(&"é".repeat(200)).is_ok());
        assert_eq!(
            parse(&"x".repeat(201)).unwrap_err(),
            ["Ensure this field has no more than 200 characters."]
        );
    }

    #[test]
    fn quantities_are_non_negative() {
        assert_eq!(Quantity::parse(0).map(Quantity::value), Ok(0));
        assert_eq!(Quantity::parse(-1).unwrap_err(), [NEGATIVE]);
        assert!(Quantity::parse(Quantity::MAX + 1).is_err());
    }

    #[test]
    fn deltas_are_bounded_both_ways() {
        assert_eq!(StockDelta::parse(-5).map(StockDelta::value), Ok(-5));
        assert!(StockDelta::parse(i64::MIN).is_err());
        assert!(StockDelta::parse(i64::MAX).is_err());
    }
}

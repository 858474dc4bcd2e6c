//! Exact decimal amounts for costs: AWS returns money as decimal strings ("12.3456789012",
//! sometimes "1.2E-7"); sums, differences and percentages are done in fixed point so that
//! totals match AWS to the cent with no floating-point drift.

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Neg, Sub};

/// Fractional digits kept. Cost Explorer reports at most 10.
pub const SCALE_DIGITS: u32 = 10;
const SCALE: i128 = 10i128.pow(SCALE_DIGITS);

/// An exact decimal amount, in units of 10^-10.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Amount(i128);

impl Amount {
    pub const ZERO: Amount = Amount(0);

    /// Parse a decimal string as AWS writes it: optional sign, digits, optional fraction,
    /// optional exponent (`1.2E-7`). Digits beyond 10 decimal places are rounded half away
    /// from zero. `None` for anything else.
    pub fn parse(text: &str) -> Option<Amount> {
        let text = text.trim();
        let (mantissa, exponent) = match text.find(['e', 'E']) {
            Some(i) => (&text[..i], text[i + 1..].parse::<i32>().ok()?),
            None => (text, 0),
        };
        let (negative, digits) = match mantissa.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, mantissa.strip_prefix('+').unwrap_or(mantissa)),
        };
        let (int_part, frac_part) = match digits.split_once('.') {
            Some((i, f)) => (i, f),
            None => (digits, ""),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return None;
        }
        if !int_part.bytes().all(|b| b.is_ascii_digit())
            || !frac_part.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        // All digits as one integer, with the decimal point `point` places from the right.
        let all: String = format!("{int_part}{frac_part}");
        let all = all.trim_start_matches('0');
        if all.len() > 30 {
            return None;
        }
        let value: i128 = if all.is_empty() { 0 } else { all.parse().ok()? };
        let point = frac_part.len() as i32 - exponent;
        let shift = SCALE_DIGITS as i32 - point;
        let scaled = if shift >= 0 {
            value.checked_mul(10i128.checked_pow(shift as u32)?)?
        } else {
            let div = 10i128.checked_pow((-shift) as u32).unwrap_or(i128::MAX);
            let q = value / div;
            let r = value % div;
            if r * 2 >= div { q + 1 } else { q }
        };
        Some(Amount(if negative { -scaled } else { scaled }))
    }

    /// Units of 10^-10.
    pub fn units(self) -> i128 {
        self.0
    }

    /// Rounded to `digits` decimal places (half away from zero), as a string.
    pub fn to_fixed(self, digits: u32) -> String {
        let digits = digits.min(SCALE_DIGITS);
        let step = 10i128.pow(SCALE_DIGITS - digits);
        let rounded = round_div(self.0, step);
        let negative = rounded < 0;
        let abs = rounded.unsigned_abs();
        let base = 10u128.pow(digits);
        let int = abs / base;
        let frac = abs % base;
        let sign = if negative { "-" } else { "" };
        if digits == 0 {
            format!("{sign}{int}")
        } else {
            format!("{sign}{int}.{frac:0width$}", width = digits as usize)
        }
    }

    /// Money as shown in status: two decimals.
    pub fn to_cents(self) -> String {
        self.to_fixed(2)
    }

    /// For Prometheus, which only has floats.
    pub fn to_f64(self) -> f64 {
        self.0 as f64 / SCALE as f64
    }

    /// `self` as a percentage of `whole`, two decimals; `None` when `whole` is zero.
    pub fn percent_of(self, whole: Amount) -> Option<String> {
        if whole.0 == 0 {
            return None;
        }
        // percent with two decimals = self * 10_000 / whole, rounded.
        let hundredths = round_div(self.0.checked_mul(10_000)?, whole.0);
        Some(Amount(hundredths * 10i128.pow(SCALE_DIGITS - 2)).to_fixed(2))
    }

    /// Change from `previous` to `self` in percent, two decimals; `None` when `previous` is 0.
    pub fn change_from(self, previous: Amount) -> Option<String> {
        (self - previous).percent_of(previous.abs())
    }

    pub fn abs(self) -> Amount {
        Amount(self.0.abs())
    }
}

/// Integer division rounded half away from zero.
fn round_div(n: i128, d: i128) -> i128 {
    let q = n / d;
    let r = n % d;
    if r.abs() * 2 >= d.abs() {
        if (n < 0) != (d < 0) { q - 1 } else { q + 1 }
    } else {
        q
    }
}

impl fmt::Display for Amount {
    /// Full precision with trailing zeros trimmed (at least two decimals).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let full = self.to_fixed(SCALE_DIGITS);
        let (int, frac) = full.split_once('.').unwrap_or((&full, ""));
        let mut frac = frac.trim_end_matches('0').to_string();
        while frac.len() < 2 {
            frac.push('0');
        }
        write!(f, "{int}.{frac}")
    }
}

impl Add for Amount {
    type Output = Amount;
    fn add(self, rhs: Amount) -> Amount {
        Amount(self.0 + rhs.0)
    }
}

impl AddAssign for Amount {
    fn add_assign(&mut self, rhs: Amount) {
        self.0 += rhs.0;
    }
}

impl Sub for Amount {
    type Output = Amount;
    fn sub(self, rhs: Amount) -> Amount {
        Amount(self.0 - rhs.0)
    }
}

impl Neg for Amount {
    type Output = Amount;
    fn neg(self) -> Amount {
        Amount(-self.0)
    }
}

impl Sum for Amount {
    fn sum<I: Iterator<Item = Amount>>(iter: I) -> Amount {
        iter.fold(Amount::ZERO, Add::add)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Amount {
        Amount::parse(s).unwrap_or_else(|| panic!("{s} parses"))
    }

    #[test]
    fn parses_what_aws_writes() {
        assert_eq!(a("12.34").units(), 123_400_000_000);
        assert_eq!(a("-0.5").to_cents(), "-0.50");
        assert_eq!(a("0").to_cents(), "0.00");
        assert_eq!(a("1.2E-7").units(), 1_200);
        assert_eq!(a("3.5e2").to_cents(), "350.00");
        assert_eq!(a("0.00000000005").units(), 1, "rounded half away from zero");
        assert_eq!(a(".5").to_cents(), "0.50");
        for bad in ["", "-", "1.2.3", "abc", "1e", "1,5", "--1"] {
            assert_eq!(Amount::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn sums_exactly_where_floats_drift() {
        // 0.1 + 0.2 != 0.3 in f64; ten thousand cents add up to 100.00 exactly here.
        assert_eq!(a("0.1") + a("0.2"), a("0.3"));
        let total: Amount = (0..10_000).map(|_| a("0.01")).sum();
        assert_eq!(total.to_cents(), "100.00");
        assert_eq!(total.to_string(), "100.00");
        assert_eq!(a("1.2345678901").to_string(), "1.2345678901");
    }

    #[test]
    fn rounds_cents_half_away_from_zero() {
        assert_eq!(a("2.345").to_cents(), "2.35");
        assert_eq!(a("-2.345").to_cents(), "-2.35");
        assert_eq!(a("2.3449999").to_cents(), "2.34");
    }

    #[test]
    fn percentages() {
        assert_eq!(a("25").percent_of(a("200")).as_deref(), Some("12.50"));
        assert_eq!(a("1").percent_of(a("3")).as_deref(), Some("33.33"));
        assert_eq!(a("2").percent_of(a("3")).as_deref(), Some("66.67"));
        assert_eq!(a("1").percent_of(Amount::ZERO), None);
        assert_eq!(a("110").change_from(a("100")).as_deref(), Some("10.00"));
        assert_eq!(a("90").change_from(a("100")).as_deref(), Some("-10.00"));
        assert_eq!(a("5").change_from(a("-10")).as_deref(), Some("150.00"));
        assert_eq!(a("5").change_from(Amount::ZERO), None);
    }
}

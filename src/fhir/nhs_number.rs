//! The NHS number: 10 digits with a Modulus 11 check digit. Redacted in `Debug`, no `Display`,
//! so it cannot slip into a log line by accident.

use std::fmt;

#[derive(Clone, PartialEq, Eq, Hash)]
pub struct NhsNumber(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NhsNumberError {
    #[error("an NHS number is 10 digits")]
    NotTenDigits,
    #[error("the NHS number check digit is wrong")]
    BadCheckDigit,
}

impl NhsNumber {
    /// Parses an NHS number: exactly 10 ASCII digits whose last is the Modulus 11 check digit of
    /// the first nine (weights 10..2; check = 11 − (sum mod 11); 11 → 0; 10 is never valid).
    pub fn parse(s: &str) -> Result<NhsNumber, NhsNumberError> {
        let digits: Vec<u32> = s.chars().filter_map(|c| c.to_digit(10)).collect();
        if s.len() != 10 || digits.len() != 10 || !s.is_ascii() {
            return Err(NhsNumberError::NotTenDigits);
        }
        let sum: u32 = digits
            .iter()
            .take(9)
            .zip((2..=10).rev())
            .map(|(d, w)| d * w)
            .sum();
        let check = match 11 - (sum % 11) {
            11 => 0,
            10 => return Err(NhsNumberError::BadCheckDigit),
            c => c,
        };
        if digits.get(9) != Some(&check) {
            return Err(NhsNumberError::BadCheckDigit);
        }
        Ok(NhsNumber(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The valid NHS number whose first nine digits are `stem` (0..1_000_000_000), if any
    /// (stems whose check would be 10 have none). Used by the sandbox and benchmarks.
    pub fn from_stem(stem: u64) -> Option<NhsNumber> {
        let nine = format!("{stem:09}");
        (0..=9)
            .map(|d| format!("{nine}{d}"))
            .find_map(|s| NhsNumber::parse(&s).ok())
    }
}

impl fmt::Debug for NhsNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NhsNumber(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_test_numbers_are_valid() {
        for n in ["9449306753", "9000000009", "9912003888"] {
            assert!(NhsNumber::parse(n).is_ok(), "{n}");
        }
    }

    #[test]
    fn wrong_check_digit_is_rejected() {
        assert_eq!(
            NhsNumber::parse("9449306754"),
            Err(NhsNumberError::BadCheckDigit)
        );
    }

    #[test]
    fn check_value_of_ten_is_never_valid() {
        // 000000006x: sum = 6*2 = 12, 12 mod 11 = 1, 11 - 1 = 10: no valid check digit.
        for d in 0..=9 {
            assert!(NhsNumber::parse(&format!("000000006{d}")).is_err());
        }
        assert_eq!(NhsNumber::from_stem(6), None);
    }

    #[test]
    fn check_value_of_eleven_means_zero() {
        // 0000000000: sum 0, 11 - 0 = 11 -> 0.
        assert!(NhsNumber::parse("0000000000").is_ok());
    }

    #[test]
    fn non_digits_and_wrong_lengths_are_rejected() {
        for bad in [
            "",
            "944930675",
            "94493067530",
            "944930675a",
            "944 930 675",
            "９４４９３０６７５３",
        ] {
            assert_eq!(
                NhsNumber::parse(bad),
                Err(NhsNumberError::NotTenDigits),
                "{bad}"
            );
        }
    }

    #[test]
    fn debug_never_shows_the_number() {
        let n = NhsNumber::parse("9449306753").unwrap();
        assert!(!format!("{n:?}").contains("9449306753"));
    }

    #[test]
    fn stems_generate_valid_numbers() {
        let generated: Vec<_> = (0..1000).filter_map(NhsNumber::from_stem).collect();
        assert!(generated.len() > 900);
        assert!(generated
            .iter()
            .all(|n| NhsNumber::parse(n.as_str()).is_ok()));
    }
}

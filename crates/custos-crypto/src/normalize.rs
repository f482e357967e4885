//! Normalisation of searchable values, so that equivalent spellings of the
//! same phone number, email or account id produce the same blind index.
//!
//! Errors never echo the input: it is a customer's personal data.

use std::sync::Once;

use phonenumber::country;

use crate::error::CryptoError;

/// Longest phone input accepted (after trimming). Real numbers with
/// separators are well under this; the bound keeps the parser's work small.
pub const MAX_PHONE_CHARS: usize = 40;
/// Longest email input accepted, blanks around it included.
pub const MAX_EMAIL_CHARS: usize = 254;
/// Longest account id accepted (after trimming).
pub const MAX_ACCOUNT_ID_CHARS: usize = 64;

/// Compiled patterns the phone parser keeps. phonenumber 0.3.10 compiles the metadata's
/// patterns on use into one shared LRU cache of 100, and one region's number touches tens
/// of them: numbers of forty countries in turn recompiled on almost every call (about 140
/// times slower than with this cache, BENCHMARKS.md "Phone normalisation"), a cost
/// anyone who may send a phone number could impose. 512 holds the patterns of about
/// eighty regions (numbers under all 999 country codes touch 611); at about 125 KB a
/// compiled pattern (bench/phones.sh), the cache stays near 64 MB.
pub const PHONE_PATTERNS_CACHED: usize = 512;

/// Widens the parser's pattern cache to [`PHONE_PATTERNS_CACHED`], once per process.
fn cache_phone_patterns() {
    static WIDENED: Once = Once::new();
    WIDENED.call_once(|| {
        // A poisoned lock means a parse panicked; the parser's own `unwrap` on the same
        // lock reports that, so there is nothing to widen here.
        if let Ok(mut cache) = phonenumber::metadata::DATABASE.cache().lock() {
            cache.set_capacity(PHONE_PATTERNS_CACHED);
        }
    });
}

fn invalid(kind: &'static str) -> CryptoError {
    CryptoError::InvalidValue { kind }
}

/// The ASCII form of a phone character, as [`normalize_phone`] reads it: full-width
/// forms (common from Chinese input methods) and other separators map to ASCII; `None`
/// for any character not allowed in a phone number. Letters are rejected on purpose:
/// they would let the parser read extensions or vanity numbers, which are not what a
/// lookup means. Leak tracing finds phone numbers in free text with the same map.
pub fn phone_char(c: char) -> Option<char> {
    match c {
        '0'..='9' | '+' | '-' | '(' | ')' | '.' | ' ' => Some(c),
        // U+FF10..=U+FF19 FULLWIDTH DIGIT ZERO..NINE.
        '\u{FF10}'..='\u{FF19}' => char::from_u32(u32::from(c) - 0xFF10 + u32::from(b'0')),
        '\u{FF0B}' => Some('+'),
        '\u{FF0D}' | '\u{2010}'..='\u{2015}' | '\u{2212}' => Some('-'),
        '\u{FF08}' => Some('('),
        '\u{FF09}' => Some(')'),
        '\u{FF0E}' => Some('.'),
        '\t' | '\u{3000}' | '\u{00A0}' => Some(' '),
        _ => None,
    }
}

/// Normalises a phone number to E.164 (e.g. `"+8613800138000"`).
///
/// `default_region` is the ISO 3166 region (e.g. `"CN"`) used for numbers
/// written without a country code. Full-width digits and common separators
/// (spaces, dashes, dots, parentheses) are accepted; `00` international
/// prefixes are understood for regions that use them. The number must be
/// valid for its region according to libphonenumber metadata.
///
/// # Errors
///
/// [`CryptoError::InvalidValue`] with kind `"phone"` if the input is not a
/// valid phone number, or kind `"region"` if `default_region` is not a known
/// region code.
pub fn normalize_phone(input: &str, default_region: &str) -> Result<String, CryptoError> {
    let region: country::Id = default_region
        .trim()
        .to_ascii_uppercase()
        .parse()
        .map_err(|_| invalid("region"))?;

    let trimmed = input.trim();
    if trimmed.is_empty() || trimmed.chars().count() > MAX_PHONE_CHARS {
        return Err(invalid("phone"));
    }
    let mapped: String = trimmed
        .chars()
        .map(phone_char)
        .collect::<Option<String>>()
        .ok_or_else(|| invalid("phone"))?;
    // At most one '+': the parser would silently skip extra ones, but such
    // input is more likely a typo than a number.
    if !mapped.chars().any(|c| c.is_ascii_digit()) || mapped.matches('+').count() > 1 {
        return Err(invalid("phone"));
    }

    // A number with its country code needs no region; given one anyway, the parser
    // (phonenumber 0.3) refuses some, e.g. "+8613800138000" with "US".
    let region = (!mapped.starts_with('+')).then_some(region);
    let e164 = valid_e164(region, &mapped).ok_or_else(|| invalid("phone"))?;
    // A blind index is computed over this form, so it must normalise to itself. Some
    // inputs do not: "(0(0.78796229(0.77" reads as a valid "+78796229077", which alone
    // is not valid (found by fuzzing). They are refused.
    if valid_e164(None, &e164).as_deref() != Some(e164.as_str()) {
        return Err(invalid("phone"));
    }
    Ok(e164)
}

/// The E.164 form of `text` if it parses (under `region` when it has no country code)
/// as a valid number; refuses anything that would not be "+" followed by digits.
fn valid_e164(region: Option<country::Id>, text: &str) -> Option<String> {
    cache_phone_patterns();
    let number = phonenumber::parse(region, text).ok()?;
    if !number.is_valid() {
        return None;
    }
    let e164 = number.format().mode(phonenumber::Mode::E164).to_string();
    let digits = e164.strip_prefix('+')?;
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then_some(e164)
}

/// Normalises an email address: trims surrounding whitespace and lowercases.
///
/// The result must have exactly one `@`, a non-empty local part, and a
/// domain containing a `.` (not at either end, no empty labels), no
/// whitespace or control characters, and at most 254 characters both as given
/// (blanks around it included) and once lowercased (so that a normalised address
/// normalises to itself).
///
/// # Errors
///
/// [`CryptoError::InvalidValue`] with kind `"email"`.
pub fn normalize_email(input: &str) -> Result<String, CryptoError> {
    // Counted as sent: lowercasing may lengthen a string, and an address's length
    // cannot be said in a pattern, so a schema can only bound it as sent.
    if input.chars().count() > MAX_EMAIL_CHARS {
        return Err(invalid("email"));
    }
    let email = input.trim().to_lowercase();
    // Lowercasing lengthens some letters ("İ" becomes "i" and a combining dot): bound
    // the result too, or a normalised address could be refused when normalised again.
    if email.is_empty() || email.chars().count() > MAX_EMAIL_CHARS {
        return Err(invalid("email"));
    }
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid("email"));
    }
    let mut parts = email.split('@');
    let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(invalid("email"));
    };
    if local.is_empty()
        || domain.is_empty()
        || !domain.contains('.')
        || domain.split('.').any(str::is_empty)
    {
        return Err(invalid("email"));
    }
    Ok(email)
}

/// Normalises an account id: trims, uppercases, and requires 1 to 64
/// characters from `[A-Z0-9_-]`.
///
/// # Errors
///
/// [`CryptoError::InvalidValue`] with kind `"account_id"`.
pub fn normalize_account_id(input: &str) -> Result<String, CryptoError> {
    let id = input.trim();
    // Check the ASCII charset before uppercasing: Unicode uppercasing could
    // turn non-ASCII letters into allowed ones ("ß" -> "SS", "ı" -> "I"),
    // giving two different inputs the same index.
    if id.is_empty()
        || id.len() > MAX_ACCOUNT_ID_CHARS
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(invalid("account_id"));
    }
    Ok(id.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_of_forty_countries_keep_their_patterns_compiled() {
        // They touch about 170 patterns: the parser's own cache of 100 would hold only
        // the last ones and compile the rest again on the next pass.
        let countries = [
            1u16, 44, 49, 33, 81, 82, 61, 91, 7, 55, 52, 34, 39, 31, 46, 47, 45, 41, 43, 32, 27,
            20, 234, 254, 62, 63, 66, 84, 60, 65, 90, 971, 966, 972, 48, 420, 36, 40, 30, 351,
        ];
        for cc in countries {
            let _ = normalize_phone(&format!("+{cc} 2025550123"), "CN");
        }
        let held = phonenumber::metadata::DATABASE
            .cache()
            .lock()
            .expect("no parse panicked")
            .len();
        assert!(held > 100, "{held} patterns held");
    }

    #[test]
    fn phone_cn_forms() {
        for input in [
            "13800138000",
            "+86 138 0013 8000",
            "0086-138-0013-8000",
            "+8613800138000",
            "  138-0013-8000 ",
            "(+86) 138.0013.8000",
            "１３８００１３８０００",
            "＋８６　１３８　００１３　８０００",
            "138\u{2014}0013\u{2014}8000",
        ] {
            assert_eq!(
                normalize_phone(input, "CN").unwrap(),
                "+8613800138000",
                "{input}"
            );
        }
        // Region is case-insensitive.
        assert_eq!(
            normalize_phone("13800138000", "cn").unwrap(),
            "+8613800138000"
        );
    }

    #[test]
    fn phone_other_regions() {
        assert_eq!(
            normalize_phone("(201) 555-0123", "US").unwrap(),
            "+12015550123"
        );
        // An explicit country code wins over the default region.
        assert_eq!(
            normalize_phone("+1 201-555-0123", "CN").unwrap(),
            "+12015550123"
        );
        assert_eq!(
            normalize_phone("+86 138 0013 8000", "US").unwrap(),
            "+8613800138000"
        );
        assert_eq!(
            normalize_phone("020 7946 0018", "GB").unwrap(),
            "+442079460018"
        );
    }

    #[test]
    fn phone_invalid() {
        for input in [
            "",
            "   ",
            "12345",
            "1380013800",
            "138001380001234",
            "abc",
            "+86 138 0013 800O",
            "1-800-FLOWERS",
            "13800138000 ext. 12",
            "tel:+86-138-0013-8000",
            "+",
            "++8613800138000",
            "-",
            "()",
            "+86 000 0000 0000",
            "1\u{0}3800138000",
            "١٣٨٠٠١٣٨٠٠٠",
            &"1".repeat(41),
            &"9".repeat(10_000),
        ] {
            let Err(err) = normalize_phone(input, "CN") else {
                panic!("accepted {input:?}");
            };
            assert_eq!(err.code(), "invalid_phone", "{input:?}");
            assert_eq!(err.to_string(), "not a valid phone number");
        }
    }

    #[test]
    fn phone_invalid_region() {
        for region in ["", "XX", "China", "ZZZ", "c n"] {
            let err = normalize_phone("13800138000", region).unwrap_err();
            assert_eq!(err.code(), "invalid_region", "{region:?}");
        }
    }

    #[test]
    fn phone_parser_does_not_panic_on_odd_inputs() {
        // Every combination of two allowed characters, plus a few shapes,
        // must return Ok or Err, never panic.
        let alphabet = [
            "0", "1", "8", "+", "-", "(", ")", ".", " ", "00", "86", "+86",
        ];
        for a in alphabet {
            for b in alphabet {
                for c in alphabet {
                    let input = format!("{a}{b}{c}138{a}0013{b}8000{c}");
                    let _ = normalize_phone(&input, "CN");
                    let _ = normalize_phone(&format!("{a}{b}{c}"), "US");
                }
            }
        }
    }

    #[test]
    fn email_cases() {
        assert_eq!(
            normalize_email("  Alice.Smith+tag@Example.COM ").unwrap(),
            "alice.smith+tag@example.com"
        );
        assert_eq!(normalize_email("a@b.cn").unwrap(), "a@b.cn");
        assert_eq!(normalize_email("张三@例子.中国").unwrap(), "张三@例子.中国");
        let long_ok = format!("{}@example.com", "a".repeat(254 - 12));
        assert_eq!(normalize_email(&long_ok).unwrap(), long_ok);
    }

    #[test]
    fn email_invalid() {
        let too_long = format!("{}@example.com", "a".repeat(254 - 11));
        for input in [
            "",
            "   ",
            "alice",
            "@example.com",
            "alice@",
            "alice@example",
            "alice@@example.com",
            "a@b@example.com",
            "alice smith@example.com",
            "alice@exa mple.com",
            "alice@.com",
            "alice@example.",
            "alice@example..com",
            "alice\t@example.com",
            "alice\u{0}@example.com",
            too_long.as_str(),
        ] {
            let err = normalize_email(input).unwrap_err();
            assert_eq!(err.code(), "invalid_email", "{input:?}");
            assert_eq!(err.to_string(), "not a valid email address");
        }
    }

    /// Regression (found by tests/normalize_props.rs): "İ" lowercases to two characters,
    /// so 130 of them made a 272-character address from a 142-character input, which
    /// normalising again refused: the normal form was not a fixed point.
    #[test]
    fn email_lengthened_by_lowercasing_is_bounded() {
        let grown = format!("{}@example.com", "İ".repeat(130));
        assert_eq!(grown.chars().count(), 142);
        let err = normalize_email(&grown).unwrap_err();
        assert_eq!(err.code(), "invalid_email");
        // 121 of them lowercase to exactly 254 characters: accepted, and a fixed point.
        let fits = format!("{}@example.com", "İ".repeat(121));
        let once = normalize_email(&fits).unwrap();
        assert_eq!(once.chars().count(), 254);
        assert_eq!(normalize_email(&once).unwrap(), once);
    }

    #[test]
    fn account_id_cases() {
        assert_eq!(normalize_account_id(" acct-001_x ").unwrap(), "ACCT-001_X");
        assert_eq!(normalize_account_id("A").unwrap(), "A");
        let max = "z".repeat(64);
        assert_eq!(normalize_account_id(&max).unwrap(), "Z".repeat(64));
    }

    #[test]
    fn account_id_invalid() {
        let too_long = "a".repeat(65);
        for input in [
            "",
            "   ",
            "acct 001",
            "acct.001",
            "acct/001",
            "straße",
            "ıd",
            "ＡＢＣ",
            "acct\u{0}",
            too_long.as_str(),
        ] {
            let err = normalize_account_id(input).unwrap_err();
            assert_eq!(err.code(), "invalid_account_id", "{input:?}");
            assert_eq!(err.to_string(), "not a valid account id");
        }
    }
}

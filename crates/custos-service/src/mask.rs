//! Masking: what an agent sees of a field without revealing it. A mask keeps just
//! enough to confirm the customer in front of you ("is your number 138****8000?").

/// `+8613800138000` → `138****8000`: the national number's first three and last four
/// digits. Short numbers keep only their last two digits. The national number keeps its
/// leading zeros (`+390212345678` → `021****5678`): they are part of it in Italy, San
/// Marino and a few other countries.
pub fn phone(e164: &str) -> String {
    let national = phonenumber::parse(None, e164)
        .map(|n| n.national().to_string())
        .unwrap_or_else(|_| e164.chars().filter(char::is_ascii_digit).collect());
    let digits: Vec<char> = national.chars().collect();
    if digits.len() >= 9 {
        let head: String = digits[..3].iter().collect();
        let tail: String = digits[digits.len() - 4..].iter().collect();
        format!("{head}****{tail}")
    } else {
        let tail: String = digits[digits.len().saturating_sub(2)..].iter().collect();
        format!("****{tail}")
    }
}

/// `zhang.wei@example.com` → `z***@example.com`. The domain is what follows the last
/// `@`: a local part may hold one in quotes, a domain cannot.
pub fn email(email: &str) -> String {
    match email.rsplit_once('@') {
        Some((local, domain)) => {
            let first = local.chars().next().unwrap_or('*');
            format!("{first}***@{domain}")
        }
        None => "***".to_owned(),
    }
}

/// `Zhang Wei` → `Z** W**`; `张伟` → `张**`. The stars do not tell the length.
pub fn name(name: &str) -> String {
    let words: Vec<String> = name
        .split_whitespace()
        .filter_map(|w| w.chars().next())
        .map(|c| format!("{c}**"))
        .collect();
    if words.is_empty() {
        "***".to_owned()
    } else {
        words.join(" ")
    }
}

/// `ACC-0012345678` → `****5678`.
pub fn account_id(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    let tail: String = chars[chars.len().saturating_sub(4)..].iter().collect();
    format!("****{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_keeps_prefix_and_last_four() {
        assert_eq!(phone("+8613800138000"), "138****8000");
        assert_eq!(phone("+12025550143"), "202****0143");
        assert_eq!(phone("+4930123"), "****23");
    }

    /// Regression (found by tests/mask_props.rs): the national number's leading zero was
    /// dropped, so the mask showed its fourth digit as if it were the third, one digit
    /// more than the rule (San Marino `0549 886377` showed `549`).
    #[test]
    fn phone_keeps_the_leading_zero_of_the_national_number() {
        assert_eq!(phone("+3780549886377"), "054****6377");
        assert_eq!(phone("+390212345678"), "021****5678");
        assert_eq!(phone("+39061234567"), "061****4567");
    }

    #[test]
    fn email_keeps_first_letter_and_domain() {
        assert_eq!(email("zhang.wei@example.com"), "z***@example.com");
    }

    /// Regression (found by tests/mask_props.rs): with an `@` in the local part (quoted,
    /// as RFC 5322 allows) the mask showed the rest of the local part as the domain.
    /// Stored addresses are normalised to one `@`, so the vault never met this.
    #[test]
    fn email_domain_follows_the_last_at() {
        assert_eq!(email("\"zhang@wei\"@example.com"), "\"***@example.com");
        assert_eq!(email("a@b@example.com"), "a***@example.com");
    }

    #[test]
    fn name_keeps_initials_only() {
        assert_eq!(name("Zhang Wei"), "Z** W**");
        assert_eq!(name("张伟"), "张**");
        assert_eq!(name("  "), "***");
    }

    #[test]
    fn account_keeps_last_four() {
        assert_eq!(account_id("ACC-0012345678"), "****5678");
        assert_eq!(account_id("AB"), "****AB");
    }
}

//! Invariant: normalisation is total and idempotent, and merges the spellings it claims
//! to merge.
//!
//! A blind index is a keyed hash of the normalised value, so a lookup finds a customer
//! only if the value typed at the lookup and the value stored at the import normalise to
//! the same string. Three things must hold for every input, not only for the examples in
//! `src/normalize.rs`:
//!
//! * **total** — `normalize_phone`, `normalize_email` and `normalize_account_id` never
//!   panic and answer `Ok` or an error with a stable code whose message never echoes the
//!   input (it is a customer's personal data);
//! * **idempotent** — a normalised value normalises to itself: a value already stored in
//!   canonical form (an export re-imported, a stored value re-indexed after a key
//!   rotation) keeps its index;
//! * **merging** — the spellings the documentation calls equivalent (separators,
//!   full-width digits, `+CC` and `00CC` prefixes for phones; case and surrounding blanks
//!   for emails and account ids) give one normal form.
//!
//! Cases: 256 per property by default (128 for the phone spellings, four parses each);
//! `PROPTEST_CASES` sets another number.

use custos_crypto::{
    CryptoError, MAX_ACCOUNT_ID_CHARS, MAX_EMAIL_CHARS, MAX_PHONE_CHARS, normalize_account_id,
    normalize_email, normalize_phone,
};
use proptest::prelude::*;
use proptest::sample::select;

// ----- helpers -----

/// The error of `result`, checked to carry one of `codes` and a fixed message (never
/// the input).
fn check_err(err: &CryptoError, codes: &[&str], input: &str) {
    let code = err.code();
    assert!(codes.contains(&code), "code {code} for {input:?}");
    let expected = match code {
        "invalid_phone" => "not a valid phone number",
        "invalid_email" => "not a valid email address",
        "invalid_account_id" => "not a valid account id",
        _ => "",
    };
    if !expected.is_empty() {
        assert_eq!(err.to_string(), expected, "{input:?}");
    }
}

/// Regions a default region may be: valid ones in any case, and invalid ones.
fn region() -> impl Strategy<Value = &'static str> {
    select(vec![
        "CN", "cn", "US", "GB", "DE", "FR", "IN", "JP", "BR", "RU", "AU", "IT", "AR", "MX", "XX",
        "", "China", "c n",
    ])
}

/// Any string, weighted towards the characters a phone number may hold (ASCII and
/// full-width digits, separators, `+`) and the ones it may not (letters, other digits).
fn phone_like() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[+]?[0-9 ()\\-.]{0,24}",
        "[ \t\u{3000}]{0,2}(\\+|00|\u{FF0B})?[0-9\u{FF10}-\u{FF19} \\-.()\u{2010}-\u{2015}\u{2212}\u{FF0D}\u{FF08}\u{FF09}\u{FF0E}\u{00A0}]{1,30}",
        "[0-9+ a-zA-Z#*;,/\u{0660}-\u{0669}\u{0}]{0,45}",
    ]
}

/// Regions whose example numbers the merging property uses, with an international
/// (IDD) prefix dialled there before a country code.
const REGIONS: [(&str, &str); 12] = [
    ("CN", "00"),
    ("US", "011"),
    ("GB", "00"),
    ("DE", "00"),
    ("FR", "00"),
    ("IN", "00"),
    ("JP", "010"),
    ("AU", "0011"),
    ("IT", "00"),
    ("ES", "00"),
    ("CA", "011"),
    ("SG", "000"),
];

/// A national significant number of `region`: its metadata's fixed-line or mobile
/// example with the last `k` digits replaced (so most stay valid, a few do not).
fn national_number() -> impl Strategy<Value = (&'static str, &'static str, String)> {
    (
        select(REGIONS.to_vec()),
        any::<bool>(),
        prop::collection::vec(0u8..10, 0..=3),
    )
        .prop_map(|((region, idd), mobile, tail)| {
            let meta = phonenumber::metadata::DATABASE
                .by_id(region)
                .expect("region in the metadata");
            let d = meta.descriptors();
            let desc = if mobile { d.mobile() } else { d.fixed_line() };
            let example = desc
                .and_then(|d| d.example())
                .or_else(|| d.general().example())
                .or_else(|| d.fixed_line().and_then(|d| d.example()))
                .expect("an example number");
            let mut digits: Vec<u8> = example.bytes().collect();
            let n = digits.len();
            for (i, t) in tail.iter().enumerate() {
                if i < n {
                    digits[n - 1 - i] = b'0' + t;
                }
            }
            (region, idd, String::from_utf8(digits).expect("ASCII"))
        })
}

/// One way of writing a digit string: each digit ASCII or full-width, each gap empty or
/// one separator, optionally the first group in parentheses.
#[derive(Debug, Clone)]
struct Spelling {
    fullwidth: Vec<bool>,
    gaps: Vec<&'static str>,
    paren_group: Option<usize>,
    lead: &'static str,
    trail: &'static str,
}

fn spelling() -> impl Strategy<Value = Spelling> {
    (
        prop::collection::vec(prop::bool::weighted(0.2), 24),
        prop::collection::vec(
            prop_oneof![
                6 => Just(""),
                1 => select(vec![
                    " ", "-", ".", "\u{3000}", "\u{00A0}", "\t", "\u{2014}", "\u{2010}", "\u{2212}",
                    "\u{FF0D}", "\u{FF0E}",
                ]),
            ],
            24,
        ),
        prop::option::weighted(0.2, 2usize..5),
        select(vec!["", " ", "  ", "\t", "\u{3000}"]),
        select(vec!["", " ", "\u{00A0}", "\u{3000}"]),
    )
        .prop_map(|(fullwidth, gaps, paren_group, lead, trail)| Spelling {
            fullwidth,
            gaps,
            paren_group,
            lead,
            trail,
        })
}

impl Spelling {
    /// `prefix` (written as is: `+86`, `00 86`, `0`, …) then `digits` spelled.
    fn write(&self, prefix: &str, digits: &str) -> String {
        let mut out = String::from(self.lead);
        out.push_str(prefix);
        if !prefix.is_empty() {
            out.push(' ');
        }
        let group = self.paren_group.filter(|&g| g < digits.len());
        for (i, c) in digits.chars().enumerate() {
            if i > 0 {
                if group == Some(i) {
                    out.push(')');
                }
                out.push_str(self.gaps[i % self.gaps.len()]);
            }
            if i == 0 && group.is_some() {
                out.push('(');
            }
            if self.fullwidth[i % self.fullwidth.len()] {
                let d = u32::from(c) - u32::from('0');
                out.push(char::from_u32(0xFF10 + d).expect("full-width digit"));
            } else {
                out.push(c);
            }
        }
        out.push_str(self.trail);
        out
    }
}

fn cases(default: u32) -> ProptestConfig {
    // proptest's own default reads PROPTEST_CASES; only without it use `default`.
    let config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_some() {
        config
    } else {
        ProptestConfig {
            cases: default,
            ..config
        }
    }
}

// ----- phone -----

proptest! {
    #![proptest_config(cases(256))]

    /// Total: any string with any region is `Ok("+digits")` or a coded error.
    #[test]
    fn phone_is_total(input in phone_like(), region in region()) {
        match normalize_phone(&input, region) {
            Ok(e164) => {
                let digits = e164.strip_prefix('+').expect("E.164 starts with +");
                prop_assert!(!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()));
                prop_assert!(digits.len() <= 15, "{e164} is longer than E.164 allows");
            }
            Err(e) => check_err(&e, &["invalid_phone", "invalid_region"], &input),
        }
    }

    /// Idempotent: an E.164 result normalises to itself, whatever the default region
    /// (the country code is in it).
    #[test]
    fn phone_is_idempotent(
        input in prop_oneof![phone_like(), national_number().prop_map(|(_, _, n)| n)],
        region in select(vec!["CN", "US", "GB", "DE", "FR", "IN", "JP", "AU", "IT", "ES", "CA", "SG"]),
        again in select(vec!["CN", "US", "GB", "DE", "JP", "BR"]),
    ) {
        if let Ok(once) = normalize_phone(&input, region) {
            prop_assert_eq!(normalize_phone(&once, region).ok(), Some(once.clone()));
            prop_assert_eq!(normalize_phone(&once, again).ok(), Some(once.clone()));
        }
    }

}

proptest! {
    // Four parses a case, each slow in a debug build.
    #![proptest_config(cases(128))]

    /// Merging: a number written nationally (with the default region), with `+CC`, with
    /// the region's international prefix and CC, in full-width digits, with separators,
    /// with the first group in parentheses and with blanks around it is one number.
    #[test]
    fn phone_spellings_merge(
        (region, idd, national) in national_number(),
        a in spelling(),
        b in spelling(),
        c in spelling(),
        other_region in select(vec!["CN", "US", "GB", "DE", "JP"]),
    ) {
        let Ok(canonical) = normalize_phone(&national, region) else {
            // Not a valid number once its tail was changed: nothing to merge.
            return Ok(());
        };
        let cc = phonenumber::metadata::DATABASE
            .by_id(region)
            .expect("region")
            .country_code()
            .to_string();
        let spelled = [
            (a.write("", &national), region),
            (b.write(&format!("+{cc}"), &national), other_region),
            (c.write(&format!("{idd} {cc}"), &national), region),
            (a.write(&format!("\u{FF0B}{cc}"), &national), region),
        ];
        for (input, default_region) in spelled {
            let got = normalize_phone(&input, default_region);
            if input.trim().chars().count() > MAX_PHONE_CHARS {
                // Longer than the bound: refused, whatever it spells.
                prop_assert_eq!(got.map_err(|e| e.code()), Err("invalid_phone"), "{:?}", input);
            } else {
                prop_assert_eq!(
                    got.map_err(|e| e.code()),
                    Ok(canonical.clone()),
                    "{:?} with region {}", input, default_region
                );
            }
        }
    }
}

// ----- email -----

/// Characters for local parts and domain labels: ASCII, and letters whose lowercase
/// form is longer (`İ` → `i̇`) or context-dependent (`Σ`), or that have no simple case
/// pair (`ß`, `ẞ`).
fn email_char() -> impl Strategy<Value = char> {
    prop_oneof![
        8 => prop::char::range('a', 'z'),
        4 => prop::char::range('A', 'Z'),
        2 => select(vec!['0', '7', '.', '+', '_', '-', '\'']),
        2 => select(vec!['İ', 'Σ', 'ς', 'ß', 'ẞ', 'Ω', 'Ж', 'É', 'ǅ', 'Å', '张', 'ﬃ', 'K']),
        1 => any::<char>(),
    ]
}

/// Email-like strings, some near the 254-character bound.
fn email_like() -> impl Strategy<Value = String> {
    let part = |max| prop::collection::vec(email_char(), 0..max).prop_map(String::from_iter);
    prop_oneof![
        any::<String>(),
        (
            select(vec!["", " ", "\t", "\u{3000}", "\n"]),
            part(20),
            select(vec!["@", "@", "@", "@@", ""]),
            part(10),
            select(vec![".", ".", ""]),
            part(8),
            select(vec!["", " ", "\u{00A0}"]),
        )
            .prop_map(|(l, local, at, d1, dot, d2, t)| format!("{l}{local}{at}{d1}{dot}{d2}{t}")),
        // Near the bound: a long run of one letter, then mixed characters.
        (
            200usize..250,
            select(vec!['a', 'A', 'İ']),
            part(12),
            part(6)
        )
            .prop_map(|(n, c, local, label)| {
                format!("{}{local}@{label}x.cn", String::from(c).repeat(n))
            }),
    ]
}

proptest! {
    #![proptest_config(cases(256))]

    /// Total, with a well-formed result: one `@`, a non-empty local part, a dotted
    /// domain, no blank or control character, already lowercase, within the bound.
    #[test]
    fn email_is_total(input in email_like()) {
        match normalize_email(&input) {
            Ok(email) => {
                prop_assert_eq!(email.matches('@').count(), 1);
                let (local, domain) = email.split_once('@').expect("one @");
                prop_assert!(!local.is_empty());
                prop_assert!(domain.split('.').count() >= 2);
                prop_assert!(domain.split('.').all(|l| !l.is_empty()));
                prop_assert!(!email.chars().any(|c| c.is_whitespace() || c.is_control()));
                prop_assert_eq!(email.to_lowercase(), email.clone());
                prop_assert!(email.chars().count() <= MAX_EMAIL_CHARS, "{} chars", email.chars().count());
            }
            Err(e) => check_err(&e, &["invalid_email"], &input),
        }
    }

    /// Idempotent: a normalised address normalises to itself.
    #[test]
    fn email_is_idempotent(input in email_like()) {
        if let Ok(once) = normalize_email(&input) {
            prop_assert_eq!(normalize_email(&once).ok(), Some(once.clone()), "from {:?}", input);
        }
    }

    /// Merging: ASCII case and blanks around the address do not change it.
    #[test]
    fn email_case_and_blanks_merge(
        input in email_like(),
        upper in prop::collection::vec(any::<bool>(), 64),
        lead in select(vec!["", " ", "\t", "\u{3000}", "\n "]),
        trail in select(vec!["", " ", "\u{00A0}", "\r\n"]),
    ) {
        let Ok(canonical) = normalize_email(&input) else {
            return Ok(());
        };
        let recased: String = canonical
            .chars()
            .enumerate()
            .map(|(i, c)| if upper[i % upper.len()] { c.to_ascii_uppercase() } else { c })
            .collect();
        let variant = format!("{lead}{recased}{trail}");
        if variant.chars().count() <= MAX_EMAIL_CHARS {
            prop_assert_eq!(normalize_email(&variant).ok(), Some(canonical));
        }
    }
}

// ----- account id -----

fn account_like() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[ \t]{0,2}[a-zA-Z0-9_\\-]{0,70}[ \t\u{3000}]{0,2}",
        "[a-zA-Z0-9_\\-ßıİſK\u{FF21}-\u{FF3A}. /]{0,20}",
    ]
}

proptest! {
    #![proptest_config(cases(256))]

    /// Total, with a result of 1 to 64 characters from `[A-Z0-9_-]`; non-ASCII input is
    /// always refused (uppercasing `ß`, `ı` or `ſ` would turn it into allowed letters).
    #[test]
    fn account_id_is_total(input in account_like()) {
        match normalize_account_id(&input) {
            Ok(id) => {
                prop_assert!(!id.is_empty() && id.len() <= MAX_ACCOUNT_ID_CHARS);
                prop_assert!(id.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b == b'-'));
                prop_assert!(input.trim().is_ascii(), "accepted non-ASCII {:?}", input);
            }
            Err(e) => check_err(&e, &["invalid_account_id"], &input),
        }
    }

    /// Idempotent, and case and blanks around the id merge.
    #[test]
    fn account_id_is_idempotent_and_merges_case(
        input in account_like(),
        upper in prop::collection::vec(any::<bool>(), 64),
        lead in select(vec!["", " ", "\t", "\u{3000}"]),
        trail in select(vec!["", " ", "\n", "\u{00A0}"]),
    ) {
        let Ok(once) = normalize_account_id(&input) else {
            return Ok(());
        };
        prop_assert_eq!(normalize_account_id(&once).ok(), Some(once.clone()));
        let recased: String = once
            .chars()
            .enumerate()
            .map(|(i, c)| if upper[i] { c } else { c.to_ascii_lowercase() })
            .collect();
        let variant = format!("{lead}{recased}{trail}");
        prop_assert_eq!(normalize_account_id(&variant).ok(), Some(once));
    }
}

/// Found by fuzzing (fuzz/fuzz_targets/normalize.rs): this input read as a valid
/// "+78796229077", which alone is not valid, so a blind index over it could never be
/// matched by the number's own E.164 form. A phone's normal form must normalise to itself.
#[test]
fn a_phone_whose_normal_form_is_not_valid_alone_is_refused() {
    for input in ["(0(0.78796229(0.77", "+8613800138000", "138 0013 8000"] {
        if let Ok(once) = normalize_phone(input, "CN") {
            assert_eq!(normalize_phone(&once, "CN").ok(), Some(once));
        }
    }
    assert!(normalize_phone("(0(0.78796229(0.77", "CN").is_err());
    assert_eq!(
        normalize_phone("138 0013 8000", "CN").ok().as_deref(),
        Some("+8613800138000")
    );
}

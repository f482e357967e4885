//! Invariant: a masked field never shows more of the value than its mask's rule allows,
//! for any input.
//!
//! Masking is the "least exposure" pillar: an agent sees `138****8000`, `z***@example.com`,
//! `Z** W**` and `****5678` and must reveal a field (with a reason, logged, under a
//! quota) to see more. If a mask leaked one more character for some shape of value (a
//! leading zero, a second `@`, a combining mark, a long name), every view of such a
//! customer would leak it, unlogged as a reveal. The rules, from `src/mask.rs`:
//!
//! * **phone** — of the national significant number `N` (the E.164 digits after the
//!   country code): the first three and the last four digits when `N` has nine or more,
//!   else the last two; the rest is four stars, whatever its length;
//! * **email** — the first character of the local part and the whole domain;
//! * **name** — the first character of each word, each followed by two stars (so the
//!   stars do not tell the length);
//! * **account id** — the last four characters after four stars.
//!
//! Checked for any string (any Unicode: combining marks, emoji, right-to-left text,
//! empty) as totality and shape, and on generated values of each kind as the exact rule
//! and as indistinguishability: two values that differ only where the mask hides give
//! the same mask. Phone numbers are example numbers of 12 regions from the libphonenumber
//! metadata (leading zeros, short and long numbers among them), normalised as the vault
//! stores them.
//!
//! Cases: 512 per property (masking is cheap), 256 for the pairs of names, 128 for the
//! stored phone numbers (parsed two or three times each); `PROPTEST_CASES` sets another
//! number.

use custos_service::mask;
use proptest::prelude::*;
use proptest::sample::select;

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

/// Characters from the scripts and code points that make text handling go wrong:
/// combining marks, emoji and their joiners, right-to-left letters and controls, CJK,
/// every kind of blank, and the mask's own `*` and `@`.
fn tricky_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => prop::char::range('a', 'z'),
        2 => prop::char::range('A', 'Z'),
        2 => prop::char::range('0', '9'),
        1 => prop::char::range('\u{0300}', '\u{036F}'),
        1 => prop::char::range('\u{1F300}', '\u{1FAFF}'),
        1 => select(vec!['\u{200D}', '\u{FE0F}', '\u{1F3FB}', '\u{20E3}']),
        1 => prop::char::range('\u{05D0}', '\u{05EA}'),
        1 => prop::char::range('\u{0621}', '\u{064A}'),
        1 => select(vec!['\u{200F}', '\u{202E}', '\u{2067}', '\u{061C}', '\u{200B}']),
        1 => prop::char::range('\u{4E00}', '\u{9FFF}'),
        1 => select(vec![' ', '\t', '\n', '\u{00A0}', '\u{3000}', '\u{2028}', '\u{1680}']),
        1 => select(vec!['*', '@', '.', '+', '-', 'İ', 'ß', 'ǅ']),
        1 => any::<char>(),
    ]
}

fn tricky_string(max: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(tricky_char(), 0..max).prop_map(String::from_iter),
        any::<String>(),
    ]
}

/// A non-empty run of characters none of which is a blank.
fn word(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(
        tricky_char().prop_filter("not a blank", |c| !c.is_whitespace()),
        1..max,
    )
    .prop_map(String::from_iter)
}

/// A run of blanks of any kind (what `split_whitespace` splits on).
fn blanks(min: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(
        select(vec![
            ' ', '\t', '\n', '\r', '\u{00A0}', '\u{3000}', '\u{2003}', '\u{2028}', '\u{85}',
        ]),
        min..4,
    )
    .prop_map(String::from_iter)
}

// ----- phone -----

/// Regions whose numbers have the shapes that matter here: leading zeros that belong to
/// the national number (IT, SM, CI, CG), short numbers (NU, SH), numbers of varying
/// length (DE, AT), national prefixes other than `0` (US, RU), and CN and GB. (Few: the
/// parser keeps only 100 compiled patterns, and recompiling them is slow in a debug
/// build.)
const PHONE_REGIONS: [&str; 12] = [
    "IT", "SM", "CI", "CG", "NU", "SH", "DE", "AT", "US", "RU", "CN", "GB",
];

/// A number as the vault stores it (E.164, from `normalize_phone`) with the national
/// significant number its country code leaves: a region's example number of any kind,
/// with up to three of its last digits changed.
fn stored_phone() -> impl Strategy<Value = Option<(String, String)>> {
    let regions: Vec<&'static phonenumber::Metadata> = PHONE_REGIONS
        .iter()
        .map(|id| phonenumber::metadata::DATABASE.by_id(*id).expect("region"))
        .collect();
    (
        select(regions),
        0usize..4,
        prop::collection::vec(0u8..10, 0..=3),
    )
        .prop_map(|(meta, kind, tail)| {
            let d = meta.descriptors();
            let desc = match kind {
                0 => d.mobile(),
                1 => d.fixed_line(),
                2 => d.toll_free(),
                _ => d.voip(),
            };
            let example = desc.or(d.fixed_line())?.example()?;
            let mut digits: Vec<u8> = example.bytes().collect();
            let n = digits.len();
            for (i, t) in tail.iter().enumerate().take(n) {
                digits[n - 1 - i] = b'0' + t;
            }
            let national = String::from_utf8(digits).ok()?;
            let e164 = custos_crypto::normalize_phone(&national, meta.id()).ok()?;
            let parsed = phonenumber::parse(None, &e164).ok()?;
            let cc = parsed.code().value().to_string();
            let nsn = e164
                .strip_prefix('+')?
                .strip_prefix(cc.as_str())?
                .to_owned();
            Some((e164, nsn))
        })
}

/// The phone mask's rule applied to the national significant number `nsn`.
fn phone_rule(nsn: &str) -> String {
    let d: Vec<char> = nsn.chars().collect();
    if d.len() >= 9 {
        format!(
            "{}****{}",
            String::from_iter(&d[..3]),
            String::from_iter(&d[d.len() - 4..])
        )
    } else {
        format!("****{}", String::from_iter(&d[d.len().saturating_sub(2)..]))
    }
}

proptest! {
    #![proptest_config(cases(512))]

    /// Any string: no panic, and the shape of a mask: three digits, four stars, four
    /// digits; or four stars and at most two digits. So at most seven digits, and no
    /// other character of the input, appear.
    #[test]
    fn phone_mask_is_total_and_shaped(input in prop_oneof![
        tricky_string(40),
        "[+]?[0-9]{0,20}",
        "\\+[0-9]{1,3}[ \\-]?0[0-9]{4,12}",
    ]) {
        let m = mask::phone(&input);
        let shown: String = m.chars().filter(|c| *c != '*').collect();
        prop_assert!(shown.chars().all(|c| c.is_ascii_digit()), "{:?} -> {:?}", input, m);
        let long = m.len() == 11 && m[3..7] == *"****" && !m[..3].contains('*') && !m[7..].contains('*');
        let short = m.starts_with("****") && m.len() <= 6 && !m[4..].contains('*');
        prop_assert!(long || short, "{:?} -> {:?}", input, m);
        // (The digits shown need not all be the input's: for a number that is not in
        // E.164 the parser may complete it by its country's rules, e.g. Madagascar's
        // `+261 2000000` is read as `+261 20 2000000`. Stored numbers are E.164 already:
        // the next property checks them digit by digit.)
    }
}

proptest! {
    // Two or three parses a case, slow in a debug build.
    #![proptest_config(cases(128))]

    /// A stored number: exactly the rule on its national significant number, leading
    /// zeros included (an Italian fixed line keeps its `0`); and another stored number
    /// of the same country and length that differs only in the hidden digits has the
    /// same mask.
    #[test]
    fn phone_mask_follows_the_rule_on_stored_numbers(
        stored in stored_phone(),
        middle in prop::collection::vec(0u8..10, 8),
    ) {
        let Some((e164, nsn)) = stored else {
            // Not a valid number once its tail was changed: never stored.
            return Ok(());
        };
        let m = mask::phone(&e164);
        prop_assert_eq!(&m, &phone_rule(&nsn), "{}", e164);
        let n = nsn.len();
        if n >= 9 {
            let mut other: Vec<u8> = nsn.bytes().collect();
            for (k, d) in middle.iter().enumerate().take(n - 7) {
                other[3 + k] = b'0' + d;
            }
            let cc = &e164[1..e164.len() - n];
            let other = format!("+{cc}{}", String::from_utf8(other).unwrap());
            if custos_crypto::normalize_phone(&other, "CN").ok().as_deref() == Some(other.as_str()) {
                prop_assert_eq!(mask::phone(&other), m, "{} and {}", e164, other);
            }
        }
    }
}

// ----- email -----

proptest! {
    #![proptest_config(cases(512))]

    /// Any string: no panic; `***` without an `@`; otherwise at most one character
    /// before `***@`, and after it exactly the domain (what follows the last `@`:
    /// a local part may hold `@` in quotes, a domain never does).
    #[test]
    fn email_mask_is_total_and_shows_only_first_letter_and_domain(input in prop_oneof![
        tricky_string(30),
        (tricky_string(12), select(vec!["@", "@", "@@", "\"@\"@"]), tricky_string(12))
            .prop_map(|(a, at, b)| format!("{a}{at}{b}")),
    ]) {
        let m = mask::email(&input);
        match input.rsplit_once('@') {
            None => prop_assert_eq!(m, "***"),
            Some((local, domain)) => {
                let first = local.chars().next().unwrap_or('*');
                prop_assert_eq!(m, format!("{first}***@{domain}"), "{:?}", input);
            }
        }
    }

    /// Stored addresses (normalised) that differ only after the first letter of the
    /// local part have the same mask, whatever the local part's length.
    #[test]
    fn email_mask_hides_the_local_part(
        first in tricky_char().prop_filter("not @", |c| *c != '@' && !c.is_whitespace() && !c.is_control()),
        rest_a in "[a-z0-9._+\\-]{0,30}",
        rest_b in "[a-z0-9._+\\-]{0,30}",
        domain in "[a-z0-9\\-]{1,12}(\\.[a-z]{2,6}){1,2}",
    ) {
        let a = custos_crypto::normalize_email(&format!("{first}{rest_a}@{domain}"));
        let b = custos_crypto::normalize_email(&format!("{first}{rest_b}@{domain}"));
        if let (Ok(a), Ok(b)) = (a, b) {
            let (ma, mb) = (mask::email(&a), mask::email(&b));
            prop_assert_eq!(&ma, &mb);
            let shown_first = ma.split("***@").next().unwrap_or_default();
            prop_assert_eq!(shown_first.chars().count(), 1);
            prop_assert!(a.starts_with(shown_first));
        }
    }
}

// ----- name -----

/// A name as words and the blanks around and between them.
fn name_parts() -> impl Strategy<Value = (Vec<String>, Vec<String>)> {
    prop::collection::vec(word(12), 0..6).prop_flat_map(|words| {
        let n = words.len();
        (
            Just(words),
            // Blanks before, between (at least one) and after the words.
            (
                blanks(0),
                prop::collection::vec(blanks(1), n.saturating_sub(1)),
                blanks(0),
            )
                .prop_map(|(lead, mut between, trail)| {
                    between.insert(0, lead);
                    between.push(trail);
                    between
                }),
        )
    })
}

fn join_name(words: &[String], blanks: &[String]) -> String {
    let mut s = blanks[0].clone();
    for (i, w) in words.iter().enumerate() {
        if i > 0 {
            s.push_str(&blanks[i]);
        }
        s.push_str(w);
    }
    s.push_str(blanks.last().map_or("", String::as_str));
    s
}

proptest! {
    #![proptest_config(cases(512))]

    /// Any string: no panic; `***`, or one group per word: its first character and two
    /// stars, one space apart. So the mask is 4·words − 1 characters long, whatever the
    /// words' lengths, and shows at most one character of each word.
    #[test]
    fn name_mask_is_total_and_shows_initials_only(input in tricky_string(40)) {
        let m = mask::name(&input);
        let words: Vec<&str> = input.split_whitespace().collect();
        if words.is_empty() {
            prop_assert_eq!(m, "***");
        } else {
            prop_assert_eq!(m.chars().count(), 4 * words.len() - 1, "{:?} -> {:?}", input, m);
            for (group, word) in m.split(' ').zip(&words) {
                let mut g = group.chars();
                prop_assert_eq!(g.next(), word.chars().next());
                prop_assert_eq!(g.as_str(), "**");
            }
        }
    }

}

proptest! {
    // Two names of nested generated parts a case.
    #![proptest_config(cases(256))]

    /// Names with the same initials have the same mask, however the rest of each word
    /// and the blanks between words differ.
    #[test]
    fn name_mask_hides_all_but_initials(
        (words, gaps) in name_parts(),
        others in prop::collection::vec(prop::collection::vec(tricky_char().prop_filter("not a blank", |c| !c.is_whitespace()), 0..12), 6),
        other_gaps in prop::collection::vec(blanks(1), 7),
    ) {
        let a = join_name(&words, &gaps);
        // Same initials, other letters after them, other blanks.
        let same_initials: Vec<String> = words
            .iter()
            .zip(&others)
            .map(|(w, rest)| {
                let mut s = w.chars().next().map(String::from).unwrap_or_default();
                s.extend(rest);
                s
            })
            .collect();
        let b = join_name(&same_initials, &other_gaps[..=words.len()]);
        prop_assert_eq!(mask::name(&a), mask::name(&b), "{:?} and {:?}", a, b);
    }
}

// ----- account id -----

proptest! {
    #![proptest_config(cases(512))]

    /// Any string: no panic; four stars, then the last four characters (all of a
    /// shorter id), never more.
    #[test]
    fn account_mask_is_total_and_shows_last_four(input in tricky_string(70)) {
        let m = mask::account_id(&input);
        let chars: Vec<char> = input.chars().collect();
        let tail = String::from_iter(&chars[chars.len().saturating_sub(4)..]);
        prop_assert_eq!(m, format!("****{tail}"));
    }

    /// Stored ids (normalised) that share their last four characters have the same mask,
    /// whatever comes before and however long they are.
    #[test]
    fn account_mask_hides_all_but_last_four(
        prefix_a in "[a-zA-Z0-9_\\-]{0,60}",
        prefix_b in "[a-zA-Z0-9_\\-]{0,60}",
        last in "[a-zA-Z0-9_\\-]{4}",
    ) {
        let a = custos_crypto::normalize_account_id(&format!("{prefix_a}{last}")).unwrap();
        let b = custos_crypto::normalize_account_id(&format!("{prefix_b}{last}")).unwrap();
        let (ma, mb) = (mask::account_id(&a), mask::account_id(&b));
        prop_assert_eq!(&ma, &mb);
        prop_assert_eq!(ma, format!("****{}", last.to_ascii_uppercase()));
    }
}

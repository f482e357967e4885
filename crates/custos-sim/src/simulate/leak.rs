//! Test leaks with ground truth: a list cut from what a source (one insider, or a ring)
//! revealed in a run, mixed with rows from elsewhere (customers the source never held,
//! numbers not in the vault), written in a randomly chosen messy format — the input of
//! leak attribution's evaluation (`custos simulate --cut-leak`, `--trace-eval`).

use std::collections::HashSet;

use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use serde::Serialize;

use crate::demo::data::DemoCustomer;

/// What a leak is cut from.
pub struct Source<'a> {
    /// Its staff ids.
    pub staff: Vec<String>,
    /// The vault's customers (index = the plan's customer number) in plaintext.
    pub people: &'a [DemoCustomer],
    /// Customer numbers the source revealed: what its rows are drawn from.
    pub revealed: Vec<u32>,
    /// Customer numbers the source held in any way (never drawn as noise).
    pub held: HashSet<u32>,
    /// Real customers (numbers `0..real`; the rest are canaries, never noise).
    pub real: u32,
}

/// The ground truth of a cut leak.
#[derive(Clone, Debug, Serialize)]
pub struct Truth {
    /// The source's staff ids.
    pub staff: Vec<String>,
    /// Rows written.
    pub rows: usize,
    /// Of which from the source's reveals.
    pub from_source: usize,
    /// Of those, canaries (allocated to the source: the only canaries a source reveals
    /// and keeps revealing).
    pub canaries: usize,
    /// Of which real customers the source never held.
    pub from_elsewhere: usize,
    /// Of which numbers not in the vault.
    pub not_in_vault: usize,
    /// The format drawn.
    pub format: Format,
}

/// How a leak is written.
#[derive(Clone, Debug, Serialize)]
pub struct Format {
    /// `,`, `\t`, or none (one phone number per line).
    pub delimiter: Option<char>,
    /// Whether a header row comes first.
    pub header: bool,
    /// The columns, in order.
    pub columns: Vec<&'static str>,
    /// `utf-8` or `gb18030`.
    pub encoding: &'static str,
}

/// A cut leak: the file's bytes and its truth.
pub struct Leak {
    /// The file.
    pub bytes: Vec<u8>,
    /// What is in it.
    pub truth: Truth,
}

/// Cuts a leak of `rows` rows, `noise` of them (rounded) from elsewhere, half of those
/// real customers the source never held and half numbers not in the vault. Fewer source
/// rows are written when the source revealed fewer customers.
pub fn cut(source: &Source, rows: usize, noise: f64, rng: &mut StdRng) -> Leak {
    let noise_rows = ((rows as f64) * noise.clamp(0.0, 1.0)).round() as usize;
    let wanted = rows.saturating_sub(noise_rows);
    let mut own = source.revealed.clone();
    own.shuffle(rng);
    own.truncate(wanted);
    let elsewhere_rows = noise_rows.div_ceil(2);
    let unknown_rows = noise_rows - elsewhere_rows;

    let mut picked: Vec<Row> = own.iter().map(|&c| Row::Customer(c)).collect();
    let mut taken: HashSet<u32> = own.iter().copied().collect();
    // Bounded draws: a tiny vault the source held entirely yields fewer rows.
    let mut draws = 0;
    let mut elsewhere = 0;
    while elsewhere < elsewhere_rows && draws < 100 * (elsewhere_rows + 1) {
        draws += 1;
        let c = rng.random_range(0..source.real.max(1));
        if !source.held.contains(&c) && taken.insert(c) {
            picked.push(Row::Customer(c));
            elsewhere += 1;
        }
    }
    // Numbers of a prefix the vault's generator never draws from (170: virtual
    // operators; see `demo_data`), so none can be a customer's.
    for _ in 0..unknown_rows {
        let number = format!("170{:08}", rng.random_range(0..100_000_000u32));
        picked.push(Row::Unknown(number));
    }
    picked.shuffle(rng);

    let format = draw_format(rng);
    let delimiter = format.delimiter.unwrap_or(',').to_string();
    let mut text = String::new();
    if format.header {
        let names: Vec<&str> = format.columns.iter().map(|c| header_name(c, rng)).collect();
        text.push_str(&names.join(&delimiter));
        text.push('\n');
    }
    for row in &picked {
        let (phone, name, email) = match row {
            Row::Customer(c) => {
                let p = &source.people[*c as usize];
                (p.phone.as_str(), p.name.as_str(), Some(p.email.as_str()))
            }
            Row::Unknown(number) => (number.as_str(), "Wang Fang", None),
        };
        let cells: Vec<String> = format
            .columns
            .iter()
            .map(|column| match *column {
                "phone" => messy_phone(phone, rng),
                "name" => name.to_owned(),
                "email" => email.map(|e| messy_email(e, rng)).unwrap_or_default(),
                _ => ["vip", "", "call back", "已联系"]
                    .choose(rng)
                    .copied()
                    .unwrap_or_default()
                    .to_owned(),
            })
            .collect();
        text.push_str(&cells.join(&delimiter));
        text.push('\n');
    }
    let bytes = if format.encoding == "gb18030" {
        encoding_rs::GB18030.encode(&text).0.into_owned()
    } else {
        text.into_bytes()
    };
    Leak {
        bytes,
        truth: Truth {
            staff: source.staff.clone(),
            rows: picked.len(),
            from_source: own.len(),
            canaries: own.iter().filter(|&&c| c >= source.real).count(),
            from_elsewhere: elsewhere,
            not_in_vault: unknown_rows,
            format,
        },
    }
}

enum Row {
    Customer(u32),
    Unknown(String),
}

fn draw_format(rng: &mut StdRng) -> Format {
    if rng.random_bool(0.2) {
        return Format {
            delimiter: None,
            header: false,
            columns: vec!["phone"],
            encoding: "utf-8",
        };
    }
    let mut columns = vec!["phone", "name"];
    if rng.random_bool(0.5) {
        columns.push("email");
    }
    if rng.random_bool(0.3) {
        columns.push("note");
    }
    columns.shuffle(rng);
    Format {
        delimiter: Some(if rng.random_bool(0.7) { ',' } else { '\t' }),
        header: rng.random_bool(0.6),
        columns,
        encoding: if rng.random_bool(0.3) {
            "gb18030"
        } else {
            "utf-8"
        },
    }
}

fn header_name(column: &str, rng: &mut StdRng) -> &'static str {
    let names: &[&'static str] = match column {
        "phone" => &["phone", "手机号", "Mobile", "电话"],
        "name" => &["name", "姓名", "客户"],
        "email" => &["email", "邮箱", "E-Mail"],
        _ => &["note", "备注"],
    };
    names.choose(rng).copied().unwrap_or("x")
}

/// An 11-digit national mobile number as people write it.
fn messy_phone(national: &str, rng: &mut StdRng) -> String {
    let (a, b, c) = (&national[..3], &national[3..7], &national[7..]);
    match rng.random_range(0..6) {
        0 => format!("+86 {a} {b} {c}"),
        1 => format!("0086-{a}-{b}-{c}"),
        2 => format!("{a} {b} {c}"),
        3 => format!("+86{national}"),
        // Full-width digits.
        4 => national
            .chars()
            .filter_map(|d| d.to_digit(10).and_then(|v| char::from_u32(0xFF10 + v)))
            .collect(),
        _ => national.to_owned(),
    }
}

fn messy_email(email: &str, rng: &mut StdRng) -> String {
    if rng.random_bool(0.3) {
        email.to_uppercase()
    } else {
        email.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use rand::SeedableRng;

    use super::*;

    /// Every format drawn reads back, through the real reader, as exactly the rows the
    /// truth says: the source's customers, others it never held, numbers of no one.
    #[test]
    fn a_cut_leak_reads_back_as_its_truth() {
        let mut rng = StdRng::seed_from_u64(7);
        let people = crate::demo::data::people(&mut rng, 300, 0);
        let source = Source {
            staff: vec!["s1".to_owned()],
            people: &people,
            revealed: (0..50).collect(),
            held: (0..80).collect(),
            real: 300,
        };
        let number: HashMap<String, u32> = people
            .iter()
            .enumerate()
            .map(|(i, p)| (format!("+86{}", p.phone), i as u32))
            .collect();
        let mut layouts = HashSet::new();
        for seed in 0..40 {
            let mut rng = StdRng::seed_from_u64(seed);
            let leak = cut(&source, 50, 0.3, &mut rng);
            let t = &leak.truth;
            assert_eq!(
                (t.rows, t.from_source, t.from_elsewhere, t.not_in_vault),
                (50, 35, 8, 7)
            );
            layouts.insert((t.format.delimiter, t.format.header, t.format.encoding));
            let read = custos_trace::input::read_leak(&leak.bytes, "CN").unwrap();
            assert_eq!(read.rows.len(), 50, "{:?}", t.format);
            let (mut own, mut elsewhere, mut unknown) = (0, 0, 0);
            for row in &read.rows {
                assert_eq!(row.phones.len(), 1, "{:?}", t.format);
                match number.get(&row.phones[0]) {
                    Some(c) if source.revealed.contains(c) => own += 1,
                    Some(c) => {
                        assert!(!source.held.contains(c), "noise the source held");
                        elsewhere += 1;
                    }
                    None => unknown += 1,
                }
            }
            assert_eq!((own, elsewhere, unknown), (35, 8, 7), "{:?}", t.format);
        }
        assert!(layouts.len() >= 4, "formats vary: {layouts:?}");
    }

    #[test]
    fn a_small_source_gives_a_smaller_leak() {
        let mut rng = StdRng::seed_from_u64(8);
        let people = crate::demo::data::people(&mut rng, 100, 0);
        let source = Source {
            staff: vec!["s1".to_owned()],
            people: &people,
            revealed: vec![3, 4],
            held: [3, 4].into_iter().collect(),
            real: 100,
        };
        let leak = cut(&source, 10, 0.3, &mut rng);
        assert_eq!(
            (
                leak.truth.rows,
                leak.truth.from_source,
                leak.truth.from_elsewhere
            ),
            (5, 2, 2)
        );
    }
}

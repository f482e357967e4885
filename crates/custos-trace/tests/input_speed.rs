//! Parse speed of `read_leak` on 1,000,000-row lists of Chinese mobile numbers (four
//! spellings mixed). Run:
//! `cargo test --release -p custos-trace --test input_speed -- --ignored --nocapture`.

use std::time::Instant;

use custos_trace::input::read_leak;

/// The shapes measured: a header and a row builder from (row number, phone).
type Shape = (&'static str, &'static str, fn(u64, &str) -> String);

#[test]
#[ignore = "a measurement, for release builds"]
fn one_million_rows() {
    let shapes: [Shape; 3] = [
        ("one column of phone numbers", "phone", |_, p| p.to_owned()),
        ("CSV: id, phone", "id,phone", |i, p| format!("{i},{p}")),
        (
            "CSV: name, phone, email, province",
            "name,phone,email,province",
            |i, p| format!("Zhang San {i},{p},user{i}@example.com,Guangdong"),
        ),
    ];
    for (what, header, row) in shapes {
        measure(what, header, row);
    }
}

fn measure(what: &str, header: &str, row: fn(u64, &str) -> String) {
    let rows = 1_000_000u64;
    let mut text = format!("{header}\n");
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    for i in 0..rows {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let prefix = [138, 139, 150, 186, 199, 177][(x % 6) as usize];
        let number = x % 100_000_000;
        let phone = match i % 4 {
            0 => format!("{prefix}{number:08}"),
            1 => format!("+86 {prefix} {:04} {:04}", number / 10_000, number % 10_000),
            2 => format!("{prefix}-{:04}-{:04}", number / 10_000, number % 10_000),
            _ => format!("0086{prefix}{number:08}"),
        };
        text.push_str(&row(i, &phone));
        text.push('\n');
    }
    let mut times = Vec::new();
    for _ in 0..3 {
        let start = Instant::now();
        let file = read_leak(text.as_bytes(), "CN").unwrap();
        times.push(start.elapsed().as_secs_f64());
        assert_eq!(file.rows.len() as u64, rows);
    }
    times.sort_by(f64::total_cmp);
    let median = times[1];
    println!(
        "{what}: {} MB, {rows} rows: median {median:.3} s, {:.0} rows/s (runs {times:?})",
        text.len() / 1_000_000,
        rows as f64 / median
    );
}

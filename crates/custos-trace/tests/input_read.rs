//! `read_leak` on the shapes a leaked list arrives in.

use custos_trace::input::{ColumnKind, Encoding, InputError, LeakFile, MAX_LEAK_BYTES, read_leak};

const P1: &str = "+8613800138000";
const P2: &str = "+8613900139000";
const P3: &str = "+8618612345678";

fn read(text: &str) -> LeakFile {
    match read_leak(text.as_bytes(), "CN") {
        Ok(file) => file,
        Err(e) => panic!("{e} ({})", e.code()),
    }
}

fn err(bytes: &[u8]) -> InputError {
    match read_leak(bytes, "CN") {
        Ok(file) => panic!("read {} rows", file.rows.len()),
        Err(e) => e,
    }
}

/// (line, phones, emails, account ids) of every row.
type Summary = (u64, Vec<String>, Vec<String>, Vec<String>);

fn summary(file: &LeakFile) -> Vec<Summary> {
    file.rows
        .iter()
        .map(|r| {
            (
                r.line,
                r.phones.clone(),
                r.emails.clone(),
                r.account_ids.clone(),
            )
        })
        .collect()
}

fn row(line: u64, phones: &[&str], emails: &[&str], accounts: &[&str]) -> Summary {
    let own = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect();
    (line, own(phones), own(emails), own(accounts))
}

fn phones(file: &LeakFile) -> Vec<&str> {
    file.rows
        .iter()
        .flat_map(|r| r.phones.iter().map(String::as_str))
        .collect()
}

#[test]
fn csv_with_header() {
    let file = read(
        "姓名,手机号,邮箱,账号\n\
         张三,+86 138 0013 8000,Zhang.San@Example.COM,acc-0012345678\n\
         李四,13900139000,LISI@QQ.com,ACC-0000000002\n",
    );
    assert_eq!(file.layout.encoding, Encoding::Utf8);
    assert_eq!(file.layout.delimiter, Some(','));
    assert!(file.layout.header);
    assert_eq!(
        file.layout.columns,
        [
            ColumnKind::Name,
            ColumnKind::Phone,
            ColumnKind::Email,
            ColumnKind::AccountId
        ]
    );
    assert_eq!(
        summary(&file),
        [
            row(2, &[P1], &["zhang.san@example.com"], &["ACC-0012345678"]),
            row(3, &[P2], &["lisi@qq.com"], &["ACC-0000000002"]),
        ]
    );
    assert!(file.rows.iter().all(|r| r.has_name));
    assert_eq!(
        (
            file.blank_lines,
            file.rows_without_identifier,
            file.rows_name_only
        ),
        (0, 0, 0)
    );
}

#[test]
fn english_header_any_order() {
    let file = read(
        "E-mail,Account ID,Mobile Phone,Full Name,Notes\n\
         wang@example.com,ACC-0000000003,186-1234-5678,Wang Wu,vip\n",
    );
    assert!(file.layout.header);
    assert_eq!(
        file.layout.columns,
        [
            ColumnKind::Email,
            ColumnKind::AccountId,
            ColumnKind::Phone,
            ColumnKind::Name,
            ColumnKind::Other
        ]
    );
    assert_eq!(
        summary(&file),
        [row(2, &[P3], &["wang@example.com"], &["ACC-0000000003"])]
    );
}

#[test]
fn csv_without_header_shuffled_and_extra_columns() {
    let file = read(
        "北京,ZHANG@X.COM,VIP,13800138000,2024-01-02,ACC-0012345678\n\
         上海,li@y.cn,,139 0013 9000,2024-02-03,ACC-0000000002\n\
         广州,wang@z.com.cn,gold,+86 186 1234 5678,2024-03-04,ACC-0000000003\n",
    );
    assert!(!file.layout.header);
    assert_eq!(
        file.layout.columns,
        [
            ColumnKind::Name, // one- or two-word text: a name for all we can tell
            ColumnKind::Email,
            ColumnKind::Name,
            ColumnKind::Phone,
            ColumnKind::Other,
            ColumnKind::AccountId
        ]
    );
    assert_eq!(
        summary(&file),
        [
            row(1, &[P1], &["zhang@x.com"], &["ACC-0012345678"]),
            row(2, &[P2], &["li@y.cn"], &["ACC-0000000002"]),
            row(3, &[P3], &["wang@z.com.cn"], &["ACC-0000000003"]),
        ]
    );
}

#[test]
fn header_detected_by_content() {
    // Header words not in the lists, but the first row holds no identifier while the
    // others do.
    let file = read("联系方式,备注\n13800138000,a\n13900139000,b\n");
    assert!(file.layout.header);
    assert_eq!(file.layout.columns[0], ColumnKind::Phone);
    assert_eq!(phones(&file), [P1, P2]);
    assert_eq!(file.rows[0].line, 2);
}

#[test]
fn tsv_semicolon_and_pipe() {
    for delimiter in ['\t', ';', '|'] {
        let text = "name{d}phone{d}email\nZhang San{d}138-0013-8000{d}Z@X.COM\nLi Si{d}(+86) 139 0013 9000{d}l@y.cn\n"
            .replace("{d}", &delimiter.to_string());
        let file = read(&text);
        assert_eq!(file.layout.delimiter, Some(delimiter));
        assert!(file.layout.header);
        assert_eq!(
            summary(&file),
            [
                row(2, &[P1], &["z@x.com"], &[]),
                row(3, &[P2], &["l@y.cn"], &[]),
            ],
            "{delimiter:?}"
        );
    }
}

#[test]
fn plain_text_one_value_per_line() {
    let file = read(
        "+86 138 0013 8000\n0086-139-0013-9000\n18612345678\n\n  Mixed.Case@Example.ORG  \nACC-0000000009\n",
    );
    assert_eq!(file.layout.delimiter, None);
    assert_eq!(file.layout.columns, [ColumnKind::Phone]);
    assert_eq!(
        summary(&file),
        [
            row(1, &[P1], &[], &[]),
            row(2, &[P2], &[], &[]),
            row(3, &[P3], &[], &[]),
            row(5, &[], &["mixed.case@example.org"], &[]),
            row(6, &[], &[], &["ACC-0000000009"]),
        ]
    );
    assert_eq!(file.blank_lines, 1);
}

/// A first line that holds an identifier of another kind than the column below it is a
/// row: header detection must never swallow a row that may match a customer.
#[test]
fn a_first_row_of_another_identifier_kind_is_not_a_header() {
    for (text, first) in [
        (
            "Zhang.San@Example.com\n13800138000\n13900139000\n18612345678\n",
            "email",
        ),
        (
            "ACC-0012345678\n13800138000\n13900139000\n18612345678\n",
            "account",
        ),
        (
            "13800138000\nzhang@example.com\nli@example.com\nwang@example.org\n",
            "phone",
        ),
        (
            "张三,zhang@example.com\n李四,13900139000\n王五,18612345678\n",
            "csv",
        ),
    ] {
        let file = read(text);
        assert!(!file.layout.header, "{first}: {:?}", file.layout);
        assert_eq!(file.rows.len(), text.lines().count(), "{first}");
        assert_eq!(file.rows[0].line, 1, "{first}");
    }
}

#[test]
fn plain_text_with_a_header() {
    let file = read("手机号\n13800138000\n13900139000\n");
    assert!(file.layout.header);
    assert_eq!(phones(&file), [P1, P2]);
    assert_eq!(file.rows_without_identifier, 0);
}

#[test]
fn plain_free_text_with_chinese_names() {
    let file = read(
        "张三 138 0013 8000 zhang@x.com\n\
         李四，手机：13900139000，邮箱：LiSi@QQ.com，账号ACC-0000000002\n\
         王五电话+86 186-1234-5678\n\
         赵六\n\
         孙七 13800138000 13900139000\n\
         客户 周八 12345@qq.com 备用 186 1234 5678\n\
         just some words\n",
    );
    assert_eq!(file.layout.delimiter, None);
    assert!(file.layout.columns.is_empty());
    assert!(!file.layout.header);
    assert_eq!(
        summary(&file),
        [
            row(1, &[P1], &["zhang@x.com"], &[]),
            row(2, &[P2], &["lisi@qq.com"], &["ACC-0000000002"]),
            row(3, &[P3], &[], &[]),
            row(5, &[P1, P2], &[], &[]),
            row(6, &[P3], &["12345@qq.com"], &[]),
        ]
    );
    assert!(file.rows.iter().all(|r| r.has_name));
    assert_eq!(file.rows_without_identifier, 2);
    assert_eq!(file.rows_name_only, 2);
}

#[test]
fn email_glued_to_chinese_text() {
    let file = read("张三zhang@x.com电话13800138000\n");
    assert_eq!(summary(&file), [row(1, &[P1], &["zhang@x.com"], &[])]);
}

#[test]
fn gb18030_file() {
    let text =
        "姓名,手机号,邮箱\n张三,１３８００１３８０００,zhang@x.com\n李四,139 0013 9000,\n王五,,\n";
    let (bytes, _, unmappable) = encoding_rs::GB18030.encode(text);
    assert!(!unmappable);
    assert!(
        std::str::from_utf8(&bytes).is_err(),
        "the test needs non-UTF-8 bytes"
    );
    let file = read_leak(&bytes, "CN").unwrap();
    assert_eq!(file.layout.encoding, Encoding::Gb18030);
    assert!(file.layout.header);
    assert_eq!(
        file.layout.columns,
        [ColumnKind::Name, ColumnKind::Phone, ColumnKind::Email]
    );
    assert_eq!(
        summary(&file),
        [
            row(2, &[P1], &["zhang@x.com"], &[]),
            row(3, &[P2], &[], &[]),
        ]
    );
    assert_eq!(file.rows_name_only, 1);
}

#[test]
fn gbk_free_text() {
    // GBK is GB18030's two-byte subset: the usual export of older Chinese software.
    let (bytes, _, _) = encoding_rs::GBK.encode("客户名单\n张三 13800138000\n李四\n");
    let file = read_leak(&bytes, "CN").unwrap();
    assert_eq!(file.layout.encoding, Encoding::Gb18030);
    assert!(!file.layout.header);
    assert_eq!(summary(&file), [row(2, &[P1], &[], &[])]);
    // The title "客户名单" (customer list) and 李四: words without an identifier.
    assert_eq!(file.rows_name_only, 2);
}

#[test]
fn utf8_bom() {
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend_from_slice("手机,姓名\n13800138000,张三\n".as_bytes());
    let file = read_leak(&bytes, "CN").unwrap();
    assert_eq!(file.layout.encoding, Encoding::Utf8);
    assert!(file.layout.header, "the BOM must not hide the header name");
    assert_eq!(file.layout.columns, [ColumnKind::Phone, ColumnKind::Name]);
    assert_eq!(phones(&file), [P1]);
}

#[test]
fn utf16_with_bom() {
    let text = "电话\t姓名\r\n13800138000\t张三\r\n";
    let mut le = vec![0xFF, 0xFE];
    let mut be = vec![0xFE, 0xFF];
    for unit in text.encode_utf16() {
        le.extend_from_slice(&unit.to_le_bytes());
        be.extend_from_slice(&unit.to_be_bytes());
    }
    for (bytes, encoding) in [(le, Encoding::Utf16Le), (be, Encoding::Utf16Be)] {
        let file = read_leak(&bytes, "CN").unwrap();
        assert_eq!(file.layout.encoding, encoding);
        assert_eq!(file.layout.delimiter, Some('\t'));
        assert_eq!(phones(&file), [P1]);
    }
}

#[test]
fn every_phone_form() {
    let forms = [
        "+86 138 0013 8000",
        "0086-138-0013-8000",
        "13800138000",
        "138 0013 8000",
        "8613800138000",
        "+8613800138000",
        "138-0013-8000",
        "138.0013.8000",
        "(+86) 138 0013 8000",
        "１３８００１３８０００",
        "＋８６　１３８　００１３　８０００",
        "138\u{2014}0013\u{2014}8000",
        "\t13800138000\u{3000}",
    ];
    let text: String = forms.iter().map(|f| format!("x,{f}\n")).collect();
    let file = read(&text);
    assert_eq!(file.layout.columns[1], ColumnKind::Phone);
    assert_eq!(phones(&file), vec![P1; forms.len()]);
    // The same forms in free text.
    let text: String = forms.iter().map(|f| format!("客户 {f} 张三\n")).collect();
    let file = read(&text);
    assert!(file.layout.columns.is_empty());
    assert_eq!(phones(&file), vec![P1; forms.len()]);
}

#[test]
fn foreign_numbers_and_other_regions() {
    let file = read("phone\n+1 201-555-0123\n+44 20 7946 0018\n13800138000\n");
    assert_eq!(phones(&file), ["+12015550123", "+442079460018", P1]);
    let file = read_leak(b"phone\n(201) 555-0123\n", "us").unwrap();
    assert_eq!(phones(&file), ["+12015550123"]);
}

#[test]
fn invalid_numbers_are_not_identifiers() {
    let file = read("phone,name\n13800138000,a\n12345,b\n+86 000 0000 0000,c\n,d\n");
    assert_eq!(phones(&file), [P1]);
    assert_eq!(file.rows_without_identifier, 3);
    assert_eq!(file.rows_name_only, 3);
}

#[test]
fn emails_in_mixed_case() {
    let file = read("email\nAlice.Smith+Tag@Example.COM\nBOB@QQ.COM\nbob@qq.com\n");
    assert_eq!(file.layout.columns, [ColumnKind::Email]);
    let emails: Vec<&str> = file
        .rows
        .iter()
        .flat_map(|r| r.emails.iter().map(String::as_str))
        .collect();
    assert_eq!(
        emails,
        ["alice.smith+tag@example.com", "bob@qq.com", "bob@qq.com"]
    );
}

#[test]
fn quoted_fields_with_delimiters_and_newlines() {
    let file = read(
        "name,phone,address,email\n\
         \"Zhang, San\",\"138 0013 8000\",\"1 Road,\nBeijing\",zhang@x.com\n\
         \"Li \"\"Si\"\"\",13900139000,\"a\",\"li@y.cn\"\n\
         \"Wang\",\"13800138000 / 18612345678\",,\n",
    );
    assert_eq!(file.layout.delimiter, Some(','));
    assert!(file.layout.header);
    assert_eq!(
        summary(&file),
        [
            row(2, &[P1], &["zhang@x.com"], &[]),
            row(4, &[P2], &["li@y.cn"], &[]),
            row(5, &[P1, P3], &[], &[]),
        ]
    );
}

#[test]
fn ragged_rows_do_not_fail_the_file() {
    let file = read(
        "phone,email,name\n13800138000\n13900139000,b@x.com,Li,extra,more\n,,\n18612345678,c@x.com\n",
    );
    assert_eq!(
        summary(&file),
        [
            row(2, &[P1], &[], &[]),
            row(3, &[P2], &["b@x.com"], &[]),
            row(5, &[P3], &["c@x.com"], &[]),
        ]
    );
    assert_eq!(file.blank_lines, 1);
}

#[test]
fn blank_lines_and_crlf() {
    let file = read("\r\nphone\r\n\r\n13800138000\r\n   \r\n13900139000\r\n\r\n");
    assert_eq!(
        summary(&file),
        [row(4, &[P1], &[], &[]), row(6, &[P2], &[], &[])]
    );
    assert_eq!(file.blank_lines, 4);
    let file = read("\nphone,name\n\n13800138000,a\n,\n\n13900139000,b\n\n");
    assert_eq!(
        summary(&file),
        [row(4, &[P1], &[], &[]), row(7, &[P2], &[], &[])]
    );
    assert_eq!(file.blank_lines, 5);
}

#[test]
fn numeric_account_ids_under_a_header() {
    // An 11-digit account id would pass as a phone number by content; the header says.
    let file = read("account_id,name\n13800138000,a\nU123,b\n");
    assert_eq!(file.layout.columns[0], ColumnKind::AccountId);
    assert_eq!(
        summary(&file),
        [
            row(2, &[], &[], &["13800138000"]),
            row(3, &[], &[], &["U123"]),
        ]
    );
}

#[test]
fn phone_before_account_id_without_header() {
    let file = read("13800138000,ACC-0012345678\n13900139000,ACC-0000000002\n");
    assert_eq!(
        file.layout.columns,
        [ColumnKind::Phone, ColumnKind::AccountId]
    );
    assert_eq!(
        summary(&file),
        [
            row(1, &[P1], &[], &["ACC-0012345678"]),
            row(2, &[P2], &[], &["ACC-0000000002"]),
        ]
    );
}

#[test]
fn name_only_rows_are_counted_not_returned() {
    let file = read("name,phone\n张三,13800138000\n李四,\n王五,n/a\n,\n");
    assert_eq!(summary(&file), [row(2, &[P1], &[], &[])]);
    assert_eq!(file.rows_without_identifier, 2);
    assert_eq!(file.rows_name_only, 2);
    assert_eq!(file.blank_lines, 1);
}

#[test]
fn empty_file() {
    for bytes in [
        &b""[..],
        b"   \n\r\n\t",
        b"\xEF\xBB\xBF",
        b"\xEF\xBB\xBF\n\n",
    ] {
        assert_eq!(err(bytes).code(), "trace_empty_file", "{bytes:?}");
    }
}

#[test]
fn no_identifiers() {
    let e = err("name,city\n张三,北京\n李四,上海\n".as_bytes());
    assert_eq!(e.code(), "trace_no_identifiers");
    assert_eq!(
        e.to_string(),
        "no phone number, email or account id in 2 records"
    );
    assert_eq!(err(b"phone,email\n").code(), "trace_no_identifiers");
}

#[test]
fn bad_region() {
    for region in ["", "XX", "China"] {
        let e = read_leak(b"13800138000\n", region).unwrap_err();
        assert_eq!(e.code(), "trace_bad_region", "{region:?}");
    }
}

#[test]
fn too_large() {
    // Zeroed pages are not touched: this costs no real memory.
    let bytes = vec![0u8; MAX_LEAK_BYTES + 1];
    let e = err(&bytes);
    assert_eq!(e.code(), "trace_file_too_large");
    assert!(!e.to_string().is_empty());
}

#[test]
fn binary_garbage() {
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\x01\0".to_vec();
    png.extend((0u8..=255).cycle().take(4096));
    assert_eq!(err(&png).code(), "trace_bad_encoding");
    assert_eq!(err(b"\0\0\0\0\0\0\0\x01").code(), "trace_bad_encoding");
    // Invalid as UTF-8 and as GB18030 (0xFF is never a GB18030 byte).
    assert_eq!(err(b"13800138000\n\xFF\xFF\n").code(), "trace_bad_encoding");
    // A UTF-8 byte-order mark followed by something else.
    assert_eq!(err(b"\xEF\xBB\xBF\xC3\x28").code(), "trace_bad_encoding");
}

#[test]
fn errors_carry_no_content() {
    let secret = "13800138000";
    let cases: [&[u8]; 3] = [
        b"\xFF13800138000\xFF",
        b"\x0013800138000\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0e\x0f\x10\x11\x12",
        b"name,city\n13800138\xe4\xb8\x89,x\n",
    ];
    for bytes in cases {
        let e = err(bytes);
        assert!(!e.to_string().contains(secret), "{e}");
        assert!(!format!("{e:?}").contains(secret), "{e:?}");
        assert!(!format!("{e:?}").contains("13800138"), "{e:?}");
    }
}

/// A small deterministic generator for the fuzzing below.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, pieces: &[&'a [u8]]) -> &'a [u8] {
        pieces[(self.next() % pieces.len() as u64) as usize]
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x1234_5678_9ABC_DEF1);
    let alphabet: &[&[u8]] = &[
        b"1",
        b"3",
        b"8",
        b"0",
        b"+",
        b"-",
        b" ",
        b",",
        b"\t",
        b";",
        b"|",
        b"\"",
        b"\n",
        b"\r",
        b"@",
        b".",
        b"a",
        b"Z",
        b"ACC-",
        b"86",
        b"\xEF\xBC\x91",
        b"\xE5\xBC\xA0",
        "，".as_bytes(),
        "：".as_bytes(),
        "电话".as_bytes(),
        b"_",
        b"x.com",
        b"(",
        b")",
        b"\xE3\x80\x80",
    ];
    // Bytes that make the text invalid or binary, mixed in one round out of three.
    let invalid: &[&[u8]] = &[b"\xFF", b"\x81\x30", b"\0", b"\xC3"];
    let mut found = 0;
    for round in 0..3000 {
        let len = (rng.next() % 200) as usize;
        let mut bytes = Vec::new();
        for i in 0..len {
            match round % 3 {
                0 => bytes.push(rng.next() as u8),
                1 if i % 17 == 3 => bytes.extend_from_slice(rng.pick(invalid)),
                _ => bytes.extend_from_slice(rng.pick(alphabet)),
            }
        }
        match read_leak(&bytes, "CN") {
            Ok(file) => {
                found += file.rows.len();
                for r in &file.rows {
                    assert!(r.line >= 1);
                    assert!(
                        !r.phones.is_empty() || !r.emails.is_empty() || !r.account_ids.is_empty()
                    );
                    for p in &r.phones {
                        assert_eq!(
                            custos_crypto::normalize_phone(p, "CN").ok().as_deref(),
                            Some(p.as_str())
                        );
                    }
                    for e in &r.emails {
                        assert_eq!(
                            custos_crypto::normalize_email(e).ok().as_deref(),
                            Some(e.as_str())
                        );
                    }
                }
            }
            Err(e) => assert!(e.code().starts_with("trace_")),
        }
    }
    assert!(found > 50, "the fuzzing hardly reaches the rows: {found}");
}

#[test]
fn leak_row_debug_is_redacted() {
    let file = read("phone,email\n13800138000,zhang@x.com\n");
    let shown = format!("{file:?}");
    assert!(!shown.contains("138"), "{shown}");
    assert!(!shown.contains("zhang"), "{shown}");
}

#[test]
fn layout_serialises() {
    let file = read("手机号\t姓名\n13800138000\t张三\n");
    let json = serde_json::to_string(&file.layout).unwrap();
    assert_eq!(
        json,
        r#"{"encoding":"utf8","delimiter":"\t","header":true,"columns":["phone","name"]}"#
    );
}

#[test]
fn spreadsheet_artefacts() {
    // Numbers turned into floats, and Excel's ="…" text protection.
    let file = read("手机,姓名\n13800138000.0,a\n=\"13900139000\",b\n1.86123E+10,c\n");
    assert_eq!(
        summary(&file),
        [row(2, &[P1], &[], &[]), row(3, &[P2], &[], &[])]
    );
    assert_eq!(file.rows_name_only, 1);
}

#[test]
fn id_headers_are_decided_by_content() {
    let file = read("客户ID,客户,电话\nACC-0012345678,张三,13800138000\n");
    assert_eq!(
        file.layout.columns,
        [ColumnKind::AccountId, ColumnKind::Name, ColumnKind::Phone]
    );
    assert_eq!(summary(&file), [row(2, &[P1], &[], &["ACC-0012345678"])]);
}

#[test]
fn repeated_values_in_a_row_are_kept_once() {
    let file = read("张三 13800138000 / 138 0013 8000 / +86 138-0013-8000 Z@X.COM z@x.com\n");
    assert_eq!(summary(&file), [row(1, &[P1], &["z@x.com"], &[])]);
}

#[test]
fn one_line_with_many_numbers_is_linear() {
    // 20,000 numbers on one line, with repeats: must not take quadratic time.
    let line: String = (0..20_000u32)
        .map(|i| format!("138{:08} ", i % 5_000))
        .collect();
    let started = std::time::Instant::now();
    let file = read(&line);
    assert_eq!(file.rows.len(), 1);
    assert_eq!(file.rows[0].phones.len(), 5_000);
    assert_eq!(file.rows[0].phones[1], "+8613800000001");
    assert!(started.elapsed().as_secs() < 20, "{:?}", started.elapsed());
}

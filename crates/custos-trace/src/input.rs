//! Reading a leaked customer list into rows of normalised identifiers.
//!
//! A list that turns up outside the company is messy: CSV, TSV or plain text; UTF-8
//! (with or without a byte-order mark), UTF-16 with a byte-order mark, or GB18030/GBK;
//! with or without a header; any column order; phone numbers in every spelling. [`read_leak`]
//! works out the [`Layout`] from the file itself and returns, for each row, the phone
//! numbers, emails and account ids it holds, normalised exactly as
//! [`custos_crypto::normalize_phone`], [`custos_crypto::normalize_email`] and
//! [`custos_crypto::normalize_account_id`] do, so that they can be looked up through the
//! blind indexes.
//!
//! How a file is read:
//!
//! 1. **Encoding.** A UTF-8 or UTF-16 byte-order mark decides; otherwise valid UTF-8 is
//!    UTF-8 and anything else is decoded as GB18030 (a superset of GBK and GB2312). A file
//!    that is neither, or is mostly control characters, is refused.
//! 2. **Delimiter.** Among `,`, tab, `;` and `|`, one found in most of the first
//!    records, preferring the one that splits most of them into the same number of
//!    fields (quotes respected). Without one, the file is plain text, one record per
//!    line.
//! 3. **Columns.** By content, over up to [`SAMPLE_RECORDS`] records: a column is a
//!    phone column if most of its non-empty cells are phone numbers, else likewise email,
//!    else account id (letters then digits, like `ACC-0012345678`), else name. Phone
//!    comes before account id, and the decision is per column, because an 11-digit
//!    number is also a valid account id. The first record is a header if it holds no
//!    identifier and either names columns (`phone`, `mobile`, `tel`, `手机`, `电话`;
//!    `email`, `mail`, `邮箱`; `account`, `acct`, `账号`, `账户`; `name`, `姓名`, `客户`
//!    …) or the records after it hold identifiers. A header naming an identifier column
//!    is trusted over the content (numeric account ids look like phone numbers). A plain
//!    text file whose lines mostly hold a single identifier is one column; otherwise it is
//!    free text.
//! 4. **Values.** A cell of an identifier column is normalised as that kind; if that fails
//!    (two numbers in one cell, `Zhang <zhang@example.com>`), identifiers are extracted
//!    from it as from free text. Free text yields every email (a token with `@`), every
//!    account id written like `ACC-0012345678` (letters, `-` or `_`, digits), and every
//!    phone number (a run of phone characters holding at least seven digits, or failing
//!    that, consecutive space-separated pieces of it). Cells of other columns are not read.
//!
//! Errors never contain anything read from the file, only line numbers and counts: the
//! file is personal data.
//!
//! Speed: `normalize_phone` parses about 200,000 numbers a second; Chinese mobile
//! numbers in their common spellings take a fast path with the same result, so a
//! million-row list reads in well under a second.

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};

use custos_crypto::{normalize_account_id, normalize_email, normalize_phone, phone_char};
use serde::Serialize;

/// Largest file [`read_leak`] accepts, in bytes (512 MiB): far above any list worth
/// selling (10 million rows of phone numbers are about 150 MB), and a bound on memory.
pub const MAX_LEAK_BYTES: usize = 512 * 1024 * 1024;

/// How many records after the first are read to decide the delimiter, the header and the
/// column kinds.
pub const SAMPLE_RECORDS: usize = 200;

/// Columns beyond this many are never classified (they are [`ColumnKind::Other`]): a
/// bound on the work a hostile record with millions of delimiters can cause.
const MAX_CLASSIFIED_COLUMNS: usize = 256;

/// Bytes scanned to choose the delimiter.
const DELIMITER_SCAN_BYTES: usize = 1 << 20;

/// Consecutive space-separated pieces tried together as one phone number in free text
/// (`+86 138 0013 8000` is four).
const MAX_PHONE_PIECES: usize = 6;

/// Why a leaked file could not be read. No variant carries file content.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// The file is empty or holds only whitespace.
    #[error("the file is empty")]
    EmptyFile,
    /// The file is larger than [`MAX_LEAK_BYTES`].
    #[error("the file is {size} bytes, more than the {max} accepted")]
    FileTooLarge {
        /// Size of the file in bytes.
        size: usize,
        /// [`MAX_LEAK_BYTES`].
        max: usize,
    },
    /// The file is not text in a supported encoding (UTF-8, UTF-16 with a byte-order
    /// mark, GB18030), or is mostly control characters.
    #[error("the file is not UTF-8, UTF-16 or GB18030 text")]
    BadEncoding,
    /// No phone number, email or account id was found anywhere in the file.
    #[error("no phone number, email or account id in {records} records")]
    NoIdentifiers {
        /// Records read (excluding a header and blank lines).
        records: u64,
    },
    /// The default region is not a known ISO 3166 region code.
    #[error("not a known phone region code")]
    BadRegion,
    /// The CSV reader failed on a record (not expected for decoded text; kept so that
    /// no reader error can panic).
    #[error("unreadable record at line {line}")]
    Malformed {
        /// 1-based line where the unreadable record starts.
        line: u64,
    },
}

impl InputError {
    /// A stable machine-readable code: `trace_empty_file`, `trace_file_too_large`,
    /// `trace_bad_encoding`, `trace_no_identifiers`, `trace_bad_region`,
    /// `trace_malformed`.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            InputError::EmptyFile => "trace_empty_file",
            InputError::FileTooLarge { .. } => "trace_file_too_large",
            InputError::BadEncoding => "trace_bad_encoding",
            InputError::NoIdentifiers { .. } => "trace_no_identifiers",
            InputError::BadRegion => "trace_bad_region",
            InputError::Malformed { .. } => "trace_malformed",
        }
    }
}

/// A leaked file, read.
#[derive(Debug)]
pub struct LeakFile {
    /// Every record holding at least one identifier, in file order. Records with only a
    /// name are not here (a name alone cannot be matched); they are counted in
    /// [`LeakFile::rows_name_only`].
    pub rows: Vec<LeakRow>,
    /// How the file was read.
    pub layout: Layout,
    /// Lines that are empty, whitespace or delimiters only.
    pub blank_lines: u64,
    /// Records (not blank, not the header) holding no identifier, including those
    /// counted in [`LeakFile::rows_name_only`].
    pub rows_without_identifier: u64,
    /// Records holding a name but no identifier. In free text any leftover word counts
    /// as a name.
    pub rows_name_only: u64,
}

/// One record of a leaked file, with its identifiers normalised. Each list holds
/// distinct values in the order they appear.
///
/// Holds personal data: its `Debug` shows the line and counts only, and it is not
/// serialisable.
pub struct LeakRow {
    /// 1-based line of the file where the record starts (a quoted CSV field can span
    /// lines).
    pub line: u64,
    /// Phone numbers in E.164, as [`custos_crypto::normalize_phone`] returns them.
    pub phones: Vec<String>,
    /// Emails, as [`custos_crypto::normalize_email`] returns them.
    pub emails: Vec<String>,
    /// Account ids, as [`custos_crypto::normalize_account_id`] returns them.
    pub account_ids: Vec<String>,
    /// Whether the record also holds a name (a non-empty name column, or in free text a
    /// leftover word).
    pub has_name: bool,
}

impl fmt::Debug for LeakRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeakRow")
            .field("line", &self.line)
            .field("phones", &self.phones.len())
            .field("emails", &self.emails.len())
            .field("account_ids", &self.account_ids.len())
            .field("has_name", &self.has_name)
            .finish()
    }
}

/// How a leaked file was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Layout {
    /// The text encoding.
    pub encoding: Encoding,
    /// The field delimiter, or `None` for plain text (one record per line).
    pub delimiter: Option<char>,
    /// Whether the first record is a header (and so not read as data).
    pub header: bool,
    /// The kind of each column, in file order. Empty for free text, where identifiers
    /// are extracted wherever they appear. When none of the columns is an identifier
    /// column, identifiers are extracted from every cell as from free text.
    pub columns: Vec<ColumnKind>,
}

/// A text encoding [`read_leak`] understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// UTF-8, with or without a byte-order mark.
    Utf8,
    /// UTF-16 little-endian, with a byte-order mark (Excel's "Unicode text").
    Utf16Le,
    /// UTF-16 big-endian, with a byte-order mark.
    Utf16Be,
    /// GB18030, which includes GBK and GB2312.
    Gb18030,
}

/// What a column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnKind {
    /// Phone numbers.
    Phone,
    /// Email addresses.
    Email,
    /// Account ids.
    AccountId,
    /// Customers' names (weak evidence: counted, never matched).
    Name,
    /// Anything else; not read.
    Other,
}

impl ColumnKind {
    fn is_identifier(self) -> bool {
        matches!(
            self,
            ColumnKind::Phone | ColumnKind::Email | ColumnKind::AccountId
        )
    }
}

/// Reads a leaked file. `default_region` (e.g. `"CN"`) is the region of phone numbers
/// written without a country code.
///
/// # Errors
///
/// [`InputError`]: the file is empty, too large, not text in a supported encoding, or
/// holds no identifier at all; or the region is unknown.
pub fn read_leak(bytes: &[u8], default_region: &str) -> Result<LeakFile, InputError> {
    if bytes.len() > MAX_LEAK_BYTES {
        return Err(InputError::FileTooLarge {
            size: bytes.len(),
            max: MAX_LEAK_BYTES,
        });
    }
    let phones = PhoneReader::new(default_region)?;
    let (text, encoding) = decode(bytes)?;
    if text.trim().is_empty() {
        return Err(InputError::EmptyFile);
    }
    if mostly_control(&text) {
        return Err(InputError::BadEncoding);
    }
    let delimiter = detect_delimiter(&text);
    let mut source = Source::new(&text, delimiter);

    let mut sample = Vec::new();
    while sample.len() <= SAMPLE_RECORDS {
        let Some((_, cells)) = source.next_record()? else {
            break;
        };
        sample.push(Record(cells.iter().map(str::to_owned).collect()));
    }
    let (header, columns) = decide_layout(&sample, delimiter.is_some(), &phones);

    // One thread: on 1,000,000 rows, reading two halves of the file on two threads
    // measured slower than one (allocating the rows dominates, and contends).
    let Sink {
        rows,
        blank_lines,
        rows_without_identifier,
        rows_name_only,
        ..
    } = read_records(&text, delimiter, header, &columns, &phones)?;
    if rows.is_empty() {
        return Err(InputError::NoIdentifiers {
            records: rows_without_identifier,
        });
    }
    Ok(LeakFile {
        rows,
        layout: Layout {
            encoding,
            delimiter: delimiter.map(char::from),
            header,
            columns,
        },
        blank_lines,
        rows_without_identifier,
        rows_name_only,
    })
}

/// Reads every record of the file, skipping the header if `header`.
fn read_records<'a>(
    text: &str,
    delimiter: Option<u8>,
    header: bool,
    columns: &'a [ColumnKind],
    phones: &'a PhoneReader,
) -> Result<Sink<'a>, InputError> {
    let mut source = Source::new(text, delimiter);
    let mut sink = Sink::new(columns, phones);
    let mut header = header;
    while let Some((line, cells)) = source.next_record()? {
        if header && !cells.is_blank() {
            // The header is not data, but its lines are not blank either.
            sink.skip(line, cells);
            header = false;
        } else {
            sink.push(line, cells);
        }
    }
    sink.finish(line_count(text));
    Ok(sink)
}

// ---------------------------------------------------------------------------------------
// Encoding

fn decode(bytes: &[u8]) -> Result<(Cow<'_, str>, Encoding), InputError> {
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        let text = std::str::from_utf8(rest).map_err(|_| InputError::BadEncoding)?;
        return Ok((Cow::Borrowed(text), Encoding::Utf8));
    }
    for (bom, codec, encoding) in [
        (b"\xFF\xFE", encoding_rs::UTF_16LE, Encoding::Utf16Le),
        (b"\xFE\xFF", encoding_rs::UTF_16BE, Encoding::Utf16Be),
    ] {
        if let Some(rest) = bytes.strip_prefix(bom) {
            let text = codec
                .decode_without_bom_handling_and_without_replacement(rest)
                .ok_or(InputError::BadEncoding)?;
            return Ok((text, encoding));
        }
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Ok((Cow::Borrowed(text), Encoding::Utf8));
    }
    let text = encoding_rs::GB18030
        .decode_without_bom_handling_and_without_replacement(bytes)
        .ok_or(InputError::BadEncoding)?;
    // GB18030 has a byte-order mark of its own (84 31 95 33), decoded as U+FEFF.
    let text = match text.strip_prefix('\u{FEFF}') {
        Some(rest) => Cow::Owned(rest.to_owned()),
        None => text,
    };
    Ok((text, Encoding::Gb18030))
}

/// Whether more than 1% of the bytes are control characters other than tab, line ends
/// and form feed. Binary data often decodes as GB18030 (most byte pairs are valid);
/// real text has hardly any such characters.
fn mostly_control(text: &str) -> bool {
    let controls = text
        .bytes()
        .filter(|&b| (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0C)) || b == 0x7F)
        .count();
    controls * 100 > text.len()
}

/// Lines as `str::lines` and the CSV reader count them: one per `\n`, plus an
/// unterminated last line.
fn line_count(text: &str) -> u64 {
    let newlines = text.bytes().filter(|&b| b == b'\n').count() as u64;
    newlines + u64::from(!text.is_empty() && !text.ends_with('\n'))
}

// ---------------------------------------------------------------------------------------
// Delimiter and records

const DELIMITERS: [u8; 4] = [b',', b'\t', b';', b'|'];

/// The delimiter found in most (at least 60%) of the first records, preferring the one
/// that splits most of them into the same number of fields; `None` for plain text.
/// Quoted text is not counted.
fn detect_delimiter(text: &str) -> Option<u8> {
    let mut counts: Vec<[u32; DELIMITERS.len()]> = Vec::new();
    let mut current = [0u32; DELIMITERS.len()];
    let mut in_quotes = false;
    let mut nonblank = false;
    for &b in text.as_bytes().iter().take(DELIMITER_SCAN_BYTES) {
        match b {
            b'"' => in_quotes = !in_quotes,
            b'\n' if !in_quotes => {
                if nonblank {
                    counts.push(current);
                    if counts.len() > SAMPLE_RECORDS {
                        break;
                    }
                }
                current = [0; DELIMITERS.len()];
                nonblank = false;
            }
            _ if in_quotes => {}
            _ => {
                if let Some(i) = DELIMITERS.iter().position(|&d| d == b) {
                    current[i] += 1;
                }
                nonblank |= !b.is_ascii_whitespace();
            }
        }
    }
    if nonblank {
        counts.push(current);
    }
    if counts.is_empty() {
        return None;
    }
    let mut best: Option<(usize, usize, u8)> = None;
    for (i, &d) in DELIMITERS.iter().enumerate() {
        // How many records have each non-zero count of this delimiter.
        let mut tally: Vec<(u32, usize)> = Vec::new();
        for n in counts.iter().map(|c| c[i]).filter(|&n| n > 0) {
            match tally.iter_mut().find(|(v, _)| *v == n) {
                Some((_, k)) => *k += 1,
                None => tally.push((n, 1)),
            }
        }
        let present: usize = tally.iter().map(|&(_, k)| k).sum();
        let Some(&(_, agreeing)) = tally.iter().max_by_key(|&&(v, k)| (k, v)) else {
            continue;
        };
        // Ragged rows (missing or extra fields) are common: presence in most records
        // qualifies; agreement on the count ranks. Ties keep the earlier (more
        // common) delimiter.
        if present * 10 < counts.len() * 6 {
            continue;
        }
        if best.is_none_or(|(a, p, _)| (agreeing, present) > (a, p)) {
            best = Some((agreeing, present, d));
        }
    }
    best.map(|(_, _, d)| d)
}

/// A record held for layout detection: its fields.
struct Record(Vec<String>);

impl Record {
    fn cells(&self) -> Cells<'_> {
        Cells::Owned(&self.0)
    }
}

/// Records of the file: CSV records, or lines of plain text.
enum Source<'a> {
    Csv(Box<csv::Reader<&'a [u8]>>, csv::StringRecord, &'a [u8]),
    Lines(std::iter::Enumerate<std::str::Lines<'a>>),
}

impl<'a> Source<'a> {
    fn new(text: &'a str, delimiter: Option<u8>) -> Self {
        match delimiter {
            Some(d) => Source::Csv(
                Box::new(
                    csv::ReaderBuilder::new()
                        .has_headers(false)
                        .flexible(true)
                        .delimiter(d)
                        .from_reader(text.as_bytes()),
                ),
                csv::StringRecord::new(),
                text.as_bytes(),
            ),
            None => Source::Lines(text.lines().enumerate()),
        }
    }

    /// The next record and its 1-based first line.
    fn next_record(&mut self) -> Result<Option<(u64, Cells<'_>)>, InputError> {
        match self {
            Source::Csv(reader, record, bytes) => {
                let line = reader.position().line();
                if !reader
                    .read_record(record)
                    .map_err(|_| InputError::Malformed { line })?
                {
                    return Ok(None);
                }
                // The record's position is where the reader started, before the empty
                // lines it skipped.
                let (mut line, start) = record
                    .position()
                    .map_or((line, 0), |p| (p.line(), p.byte()));
                let skipped = usize::try_from(start)
                    .ok()
                    .and_then(|start| bytes.get(start..))
                    .unwrap_or_default()
                    .iter()
                    .take_while(|&&b| b == b'\n' || b == b'\r');
                line += skipped.filter(|&&b| b == b'\n').count() as u64;
                Ok(Some((line, Cells::Csv(record))))
            }
            Source::Lines(lines) => Ok(lines
                .next()
                .map(|(i, text)| (i as u64 + 1, Cells::Line(text)))),
        }
    }
}

/// The fields of one record, borrowed (no copy per field: a leak can have millions).
#[derive(Clone, Copy)]
enum Cells<'r> {
    Csv(&'r csv::StringRecord),
    Line(&'r str),
    Owned(&'r [String]),
}

impl<'r> Cells<'r> {
    fn iter(self) -> impl Iterator<Item = &'r str> + Clone {
        let (csv, line, owned) = match self {
            Cells::Csv(r) => (Some(r), None, None),
            Cells::Line(l) => (None, Some(l), None),
            Cells::Owned(o) => (None, None, Some(o)),
        };
        csv.into_iter()
            .flatten()
            .chain(line)
            .chain(owned.into_iter().flatten().map(String::as_str))
    }

    fn is_blank(self) -> bool {
        self.iter().all(|f| f.trim().is_empty())
    }
}

// ---------------------------------------------------------------------------------------
// Layout

/// Whether the first non-blank sample record is a header, and the column kinds (empty
/// for free text).
fn decide_layout(
    sample: &[Record],
    delimited: bool,
    phones: &PhoneReader,
) -> (bool, Vec<ColumnKind>) {
    let mut records = sample.iter().filter(|r| !r.cells().is_blank());
    let Some(first) = records.next() else {
        return (false, Vec::new());
    };
    let rest: Vec<&Record> = records.collect();
    let named: Vec<Option<ColumnKind>> = first.0.iter().map(|f| header_kind(f)).collect();
    let by_content = classify(&rest, phones);
    let any_named = named.iter().any(Option::is_some);

    let kinds: Vec<ColumnKind> = (0..named.len().max(by_content.len()))
        .map(|i| {
            let name = named.get(i).copied().flatten();
            let content = by_content.get(i).copied().unwrap_or(ColumnKind::Other);
            match name {
                // A header naming an identifier is trusted: numeric account ids can
                // look like phone numbers.
                Some(k) if k.is_identifier() => k,
                _ if content.is_identifier() => content,
                Some(k) => k,
                // Under a header naming columns, names are where it says.
                None if any_named => ColumnKind::Other,
                None => content,
            }
        })
        .collect();
    // Of any kind, in any column: a first line holding an email above a column of
    // phone numbers is a row, not a header, and a row may match a customer.
    let first_has_identifier = first.0.iter().any(|cell| holds_identifier(cell, phones));
    let header = !first_has_identifier && (any_named || kinds.iter().any(|k| k.is_identifier()));

    let columns = if header {
        kinds
    } else {
        let all: Vec<&Record> = std::iter::once(first).chain(rest).collect();
        classify(&all, phones)
    };
    if !delimited && !columns.iter().any(|k| k.is_identifier()) {
        // Plain text that is not a list of single values: free text.
        return (header, Vec::new());
    }
    (header, columns)
}

/// The kind of each column from the content of `records`.
fn classify(records: &[&Record], phones: &PhoneReader) -> Vec<ColumnKind> {
    let width = records
        .iter()
        .map(|r| r.0.len())
        .max()
        .unwrap_or(0)
        .min(MAX_CLASSIFIED_COLUMNS);
    (0..width)
        .map(|i| {
            let cells: Vec<&str> = records
                .iter()
                .filter_map(|r| r.0.get(i))
                .map(|c| c.trim())
                .filter(|c| !c.is_empty())
                .collect();
            let most = |kind: ColumnKind| {
                cells.iter().filter(|c| cell_is(c, kind, phones)).count() * 2 > cells.len()
            };
            [
                ColumnKind::Phone,
                ColumnKind::Email,
                ColumnKind::AccountId,
                ColumnKind::Name,
            ]
            .into_iter()
            .find(|&k| !cells.is_empty() && most(k))
            .unwrap_or(ColumnKind::Other)
        })
        .collect()
}

/// Whether a cell, on its own, looks like a value of `kind`. Account ids must look like
/// this project's (`ACC-0012345678`: letters, then digits): any word is a valid account
/// id, so without a header only this shape makes a column one of account ids.
fn cell_is(cell: &str, kind: ColumnKind, phones: &PhoneReader) -> bool {
    let cell = cell.trim();
    match kind {
        ColumnKind::Phone => phones.normalize(cell).is_some(),
        ColumnKind::Email => normalize_email(cell).is_ok(),
        ColumnKind::AccountId => account_shaped(cell, false),
        ColumnKind::Name => looks_like_name(cell),
        ColumnKind::Other => false,
    }
}

/// Whether a cell holds something that may identify a customer: a phone number, an
/// email or an account id, or what free-text reading could take one from (an `@`, seven
/// digits). Header cells hold none of these.
fn holds_identifier(cell: &str, phones: &PhoneReader) -> bool {
    [ColumnKind::Phone, ColumnKind::Email, ColumnKind::AccountId]
        .into_iter()
        .any(|kind| cell_is(cell, kind, phones))
        || cell.contains('@')
        || cell.chars().filter(char::is_ascii_digit).count() >= 7
}

/// Letters (1 to 10), an optional `-` or `_`, then at least 4 digits. In free text
/// (`strict`) the letters must be at least 2 and the separator is required, so that a
/// word glued to a phone number (`tel13800138000`) is not taken for an account id.
fn account_shaped(s: &str, strict: bool) -> bool {
    let letters = s.bytes().take_while(u8::is_ascii_alphabetic).count();
    let rest = &s.as_bytes()[letters..];
    let (sep, digits) = match rest.first() {
        Some(b'-' | b'_') => (true, &rest[1..]),
        _ => (false, rest),
    };
    let min_letters = if strict { 2 } else { 1 };
    (min_letters..=10).contains(&letters)
        && (sep || !strict)
        && digits.len() >= 4
        && digits.iter().all(u8::is_ascii_digit)
        && normalize_account_id(s).is_ok()
}

/// A short run of words without digits or `@`: what a name column holds.
fn looks_like_name(cell: &str) -> bool {
    cell.chars().count() <= 40
        && cell.split_whitespace().count() <= 4
        && cell.chars().any(char::is_alphabetic)
        && !cell.chars().any(|c| c.is_numeric() || c == '@')
}

/// The kind a header cell names, if any.
fn header_kind(cell: &str) -> Option<ColumnKind> {
    if cell.len() > 120 {
        return None;
    }
    let h: String = cell
        .trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '_' | '-' | '.' | '"'))
        .flat_map(char::to_lowercase)
        .collect();
    // Free text mentioning 电话 is not a header: headers hold no values.
    if h.is_empty() || h.chars().count() > 30 || h.chars().any(|c| c.is_numeric() || c == '@') {
        return None;
    }
    let has = |words: &[&str]| words.iter().any(|w| h.contains(w));
    if has(&["mail", "邮箱", "邮件"]) {
        Some(ColumnKind::Email)
    } else if has(&["phone", "mobile", "手机", "电话"])
        || h.starts_with("tel")
        || h.starts_with("cell")
    {
        Some(ColumnKind::Phone)
    } else if has(&["name", "姓名", "名字", "名称"]) {
        Some(ColumnKind::Name)
    } else if has(&["account", "acct", "账号", "账户", "帐号", "帐户"]) {
        Some(ColumnKind::AccountId)
    } else if ["客户", "联系人", "收货人", "用户"].contains(&h.as_str()) {
        // Only alone: "客户ID", "用户编号" are ids, for the content to decide.
        Some(ColumnKind::Name)
    } else {
        None
    }
}

// ---------------------------------------------------------------------------------------
// Rows

/// The identifiers of one record, gathered.
#[derive(Default)]
struct Found {
    phones: Vec<String>,
    emails: Vec<String>,
    account_ids: Vec<String>,
    has_name: bool,
}

impl Found {
    fn is_empty(&self) -> bool {
        self.phones.is_empty() && self.emails.is_empty() && self.account_ids.is_empty()
    }
}

/// Removes repeated values, keeping the first of each. Linear in the list's length: a
/// single free-text line can hold any number of values.
fn dedup_in_order(list: &mut Vec<String>) {
    if list.len() < 2 {
        return;
    }
    let mut seen = std::collections::HashSet::with_capacity(list.len());
    let mut kept = Vec::with_capacity(list.len());
    for value in std::mem::take(list) {
        if !seen.contains(&value) {
            seen.insert(value.clone());
            kept.push(value);
        }
    }
    *list = kept;
}

/// Turns records into rows and counts.
struct Sink<'a> {
    columns: &'a [ColumnKind],
    /// No identifier column: every cell is free text.
    free_text: bool,
    phones: &'a PhoneReader,
    rows: Vec<LeakRow>,
    blank_lines: u64,
    rows_without_identifier: u64,
    rows_name_only: u64,
    /// The line after the last record seen; lines skipped before the next record are
    /// blank (the CSV reader skips empty lines).
    next_line: u64,
}

impl<'a> Sink<'a> {
    fn new(columns: &'a [ColumnKind], phones: &'a PhoneReader) -> Self {
        Sink {
            columns,
            free_text: !columns.iter().any(|k| k.is_identifier()),
            phones,
            rows: Vec::new(),
            blank_lines: 0,
            rows_without_identifier: 0,
            rows_name_only: 0,
            next_line: 1,
        }
    }

    /// Accounts for the lines of a record that is not data (the header).
    fn skip(&mut self, line: u64, cells: Cells<'_>) {
        self.blank_lines += line.saturating_sub(self.next_line);
        let newlines: usize = cells.iter().map(|f| f.matches('\n').count()).sum();
        self.next_line = line.saturating_add(newlines as u64 + 1);
    }

    fn push(&mut self, line: u64, cells: Cells<'_>) {
        self.skip(line, cells);
        if cells.is_blank() {
            self.blank_lines += 1;
            return;
        }
        let mut found = Found::default();
        for (i, cell) in cells.iter().enumerate() {
            let cell = cell.trim();
            if cell.is_empty() {
                continue;
            }
            if self.free_text {
                extract_free_text(cell, self.phones, &mut found, true);
                continue;
            }
            let kind = self.columns.get(i).copied().unwrap_or(ColumnKind::Other);
            let (list, value) = match kind {
                ColumnKind::Phone => (&mut found.phones, self.phones.normalize(cell)),
                // Non-ASCII around an address is usually glued text ("张三zhang@x.com"),
                // which free-text extraction cuts off.
                ColumnKind::Email if !cell.is_ascii() => (&mut found.emails, None),
                ColumnKind::Email => (&mut found.emails, normalize_email(cell).ok()),
                ColumnKind::AccountId => (&mut found.account_ids, normalize_account_id(cell).ok()),
                ColumnKind::Name => {
                    found.has_name = true;
                    continue;
                }
                ColumnKind::Other => continue,
            };
            match value {
                Some(v) => list.push(v),
                // Labels and placeholders in an identifier column are not names.
                None => extract_free_text(cell, self.phones, &mut found, false),
            }
        }
        for list in [&mut found.phones, &mut found.emails, &mut found.account_ids] {
            dedup_in_order(list);
        }
        if found.is_empty() {
            self.rows_without_identifier += 1;
            self.rows_name_only += u64::from(found.has_name);
        } else {
            self.rows.push(LeakRow {
                line,
                phones: found.phones,
                emails: found.emails,
                account_ids: found.account_ids,
                has_name: found.has_name,
            });
        }
    }

    /// Counts blank lines after the last record.
    fn finish(&mut self, total_lines: u64) {
        self.blank_lines += total_lines.saturating_sub(self.next_line.saturating_sub(1));
    }
}

// ---------------------------------------------------------------------------------------
// Free text

/// Characters that end a token when looking for emails.
fn is_token_separator(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            ',' | ';'
                | ':'
                | '='
                | '<'
                | '>'
                | '('
                | ')'
                | '['
                | ']'
                | '{'
                | '}'
                | '"'
                | '\''
                | '`'
                | '|'
                | '/'
                | '\\'
                | '，'
                | '；'
                | '：'
                | '、'
                | '（'
                | '）'
                | '【'
                | '】'
                | '《'
                | '》'
                | '“'
                | '”'
                | '‘'
                | '’'
                | '。'
                | '！'
                | '？'
        )
}

/// Replaces a byte range (on character boundaries) with spaces, so that what was
/// taken is not read again.
fn blank_out(text: &mut String, start: usize, end: usize) {
    if start < end && text.is_char_boundary(start) && text.is_char_boundary(end) {
        text.replace_range(start..end, &" ".repeat(end - start));
    }
}

/// Adds the emails, account ids and phone numbers found in `text` to `found`, and, if
/// `names`, notes whether words are left over.
fn extract_free_text(text: &str, phones: &PhoneReader, found: &mut Found, names: bool) {
    let mut rest = text.to_owned();

    // Emails first: their local part may be a phone number (QQ and 163 mail).
    let mut taken = Vec::new();
    for (offset, end) in runs(text, |c| !is_token_separator(c)) {
        let token = &text[offset..end];
        let Some(at) = token.find('@') else { continue };
        let (local, domain) = (&token[..at], &token[at + 1..]);
        // Chinese text glued to an ASCII address ("张三zhang@example.com电话") is not
        // part of it; an address that is not ASCII at its edges is kept whole.
        let local_start = if local.ends_with(|c: char| c.is_ascii()) {
            local.rfind(|c: char| !c.is_ascii()).map_or(0, |i| {
                i + local[i..].chars().next().map_or(1, char::len_utf8)
            })
        } else {
            0
        };
        let domain_end = if domain.starts_with(|c: char| c.is_ascii()) {
            domain.find(|c: char| !c.is_ascii()).unwrap_or(domain.len())
        } else {
            domain.len()
        };
        let (start, end) = (local_start, at + 1 + domain_end);
        let candidate = token[start..end].trim_matches(|c| c == '.' || c == '-');
        if let Ok(email) = normalize_email(candidate) {
            found.emails.push(email);
            taken.push((offset + start, offset + end));
        }
    }
    for (s, e) in taken.drain(..) {
        blank_out(&mut rest, s, e);
    }

    // Account ids, before phone numbers: their digits are not a phone number.
    let scan = rest.clone();
    for (s, e) in runs(&scan, |c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        let run = &scan[s..e];
        let trimmed = run.trim_matches(|c| c == '-' || c == '_');
        if account_shaped(trimmed, true)
            && let Ok(id) = normalize_account_id(trimmed)
        {
            found.account_ids.push(id);
            taken.push((s, e));
        }
    }
    for (s, e) in taken.drain(..) {
        blank_out(&mut rest, s, e);
    }

    for (s, e) in runs(&rest, |c| phone_char(c).is_some()) {
        extract_phones(&rest[s..e], phones, &mut found.phones);
    }
    if names {
        found.has_name |= rest
            .chars()
            .any(|c| c.is_alphabetic() && phone_char(c).is_none());
    }
}

/// Byte ranges of the maximal runs of characters satisfying `keep`.
fn runs(text: &str, keep: impl Fn(char) -> bool) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (keep(c), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, text.len()));
    }
    out
}

fn digit_count(s: &str) -> usize {
    s.chars()
        .filter(|&c| phone_char(c).is_some_and(|m| m.is_ascii_digit()))
        .count()
}

/// Phone numbers in a run of phone characters: the whole run, or else the longest
/// groups of consecutive space-separated pieces that are numbers.
fn extract_phones(run: &str, phones: &PhoneReader, out: &mut Vec<String>) {
    // Separators at the edges belong to the surrounding text.
    let run = run
        .trim_start_matches(|c| {
            !phone_char(c).is_some_and(|m| m.is_ascii_digit() || m == '+' || m == '(')
        })
        .trim_end_matches(|c| !phone_char(c).is_some_and(|m| m.is_ascii_digit() || m == ')'));
    let digits = digit_count(run);
    if digits < 7 {
        return;
    }
    if digits <= 17
        && let Some(p) = phones.normalize(run)
    {
        out.push(p);
        return;
    }
    // Spreadsheets turn phone columns into numbers: "13800138000.0".
    if let Some(int) = run.trim_end_matches('0').strip_suffix('.')
        && int.bytes().all(|b| b.is_ascii_digit())
        && let Some(p) = phones.normalize(int)
    {
        out.push(p);
        return;
    }
    let pieces = runs(run, |c| phone_char(c) != Some(' '));
    let mut i = 0;
    while i < pieces.len() {
        let last = (i + MAX_PHONE_PIECES).min(pieces.len());
        let hit = (i..last).rev().find_map(|j| {
            let candidate = &run[pieces[i].0..pieces[j].1];
            let d = digit_count(candidate);
            if (7..=17).contains(&d) {
                phones.normalize(candidate).map(|p| (j, p))
            } else {
                None
            }
        });
        match hit {
            Some((j, p)) => {
                out.push(p);
                i = j + 1;
            }
            None => i += 1,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Phone numbers

/// Normalises phone numbers like `normalize_phone`, with a fast path for Chinese
/// mobile numbers: `normalize_phone` parses about 200,000 numbers a second, and a leak
/// can hold millions.
struct PhoneReader {
    region: String,
    region_is_cn: bool,
}

/// Per 5-digit mobile prefix `1[3-9]xxx`: whether `normalize_phone` accepts every
/// 11-digit number with it, as `+86` and the digits. CN mobile validity is decided by
/// the first 5 digits (libphonenumber's pattern is `1740[0-5]\d{6}|1(?:[38]\d|4[57]|…)\d{8}`);
/// a unit test checks many numbers of every prefix against `normalize_phone`. Filled
/// on first use by asking `normalize_phone`, so it follows the metadata.
static MOBILE_PREFIXES: [AtomicU8; 7000] = [const { AtomicU8::new(PREFIX_UNKNOWN) }; 7000];
const PREFIX_UNKNOWN: u8 = 0;
const PREFIX_FAST: u8 = 1;
const PREFIX_SLOW: u8 = 2;

impl PhoneReader {
    fn new(default_region: &str) -> Result<Self, InputError> {
        match normalize_phone("0", default_region) {
            Err(e) if e.code() == "invalid_region" => return Err(InputError::BadRegion),
            _ => {}
        }
        let region = default_region.trim().to_ascii_uppercase();
        Ok(PhoneReader {
            region_is_cn: region == "CN",
            region,
        })
    }

    /// The E.164 form of `input`, exactly as `normalize_phone` would return it.
    fn normalize(&self, input: &str) -> Option<String> {
        if let Some(national) = cn_mobile(input).filter(|_| self.region_is_cn) {
            let mut e164 = String::with_capacity(14);
            e164.push_str("+86");
            e164.extend(national.iter().map(|&d| char::from(d)));
            return Some(e164);
        }
        normalize_phone(input, &self.region).ok()
    }
}

/// The 11 national digits of a Chinese mobile number written in a common form (digits,
/// optionally after `+86`, `86` or `0086`; separated by spaces, dashes or dots;
/// full-width allowed) whose prefix `normalize_phone` is known to accept with region
/// CN. Only for region CN: with some regions (e.g. US) `normalize_phone` refuses even
/// `+86` numbers. `None` means "ask `normalize_phone`", not "invalid".
fn cn_mobile(input: &str) -> Option<[u8; 11]> {
    let input = input.trim();
    let mut digits = [0u8; 15];
    let mut n = 0;
    let mut plus = false;
    let mut last_is_digit = false;
    // The parser refuses `+86` glued to the national number when `-` or `.` appear
    // later ("+86138-0013-8000"): such input goes the slow way.
    let mut dash_or_dot = false;
    let mut glued_country_code = false;
    for (i, c) in input.chars().enumerate() {
        // normalize_phone's length bound is 40 characters.
        if i >= 40 {
            return None;
        }
        let m = phone_char(c)?;
        match m {
            '0'..='9' => {
                glued_country_code |= n == 2 && last_is_digit;
                *digits.get_mut(n)? = m as u8;
                n += 1;
            }
            '+' if i == 0 => plus = true,
            ' ' if i > 0 => {}
            '-' | '.' if i > 0 => dash_or_dot = true,
            _ => return None,
        }
        last_is_digit = m.is_ascii_digit();
    }
    if !last_is_digit || (plus && glued_country_code && dash_or_dot) {
        return None;
    }
    let national = match (plus, n, &digits[..n.min(4)]) {
        (false, 11, _) => &digits[..11],
        (false, 13, [b'8', b'6', ..]) | (true, 13, [b'8', b'6', ..]) => &digits[2..13],
        (false, 15, [b'0', b'0', b'8', b'6']) => &digits[4..15],
        _ => return None,
    };
    let national: [u8; 11] = national.try_into().ok()?;
    if mobile_prefix_fast(&national) {
        Some(national)
    } else {
        None
    }
}

fn mobile_prefix_fast(national: &[u8; 11]) -> bool {
    let d = |i: usize| usize::from(national[i] - b'0');
    if national[0] != b'1' || !(b'3'..=b'9').contains(&national[1]) {
        return false;
    }
    let index = (d(1) - 3) * 1000 + d(2) * 100 + d(3) * 10 + d(4);
    let Some(slot) = MOBILE_PREFIXES.get(index) else {
        return false;
    };
    match slot.load(Ordering::Relaxed) {
        PREFIX_FAST => true,
        PREFIX_SLOW => false,
        _ => {
            let prefix: String = national[..5].iter().map(|&b| char::from(b)).collect();
            // Two numbers per prefix, so that a future pattern deeper than five digits
            // is likely to show as a disagreement (and fall back to the slow path).
            let fast = ["000000", "987654"].iter().all(|suffix| {
                let number = format!("{prefix}{suffix}");
                normalize_phone(&number, "CN").is_ok_and(|e| e == format!("+86{number}"))
            });
            slot.store(
                if fast { PREFIX_FAST } else { PREFIX_SLOW },
                Ordering::Relaxed,
            );
            fast
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (no dependency needed for test data).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    fn slow(input: &str, region: &str) -> Option<String> {
        normalize_phone(input, region).ok()
    }

    #[test]
    fn fast_path_agrees_with_normalize_phone_on_every_prefix() {
        let cn = PhoneReader::new("CN").unwrap();
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut fast_hits = 0;
        for prefix in 130..200 {
            for _ in 0..40 {
                let number = format!("{prefix}{:08}", rng.next() % 100_000_000);
                let expect = slow(&number, "CN");
                if cn_mobile(&number).is_some() {
                    fast_hits += 1;
                }
                assert_eq!(cn.normalize(&number), expect, "{number}");
            }
            // Every 5-digit prefix at least once.
            for d in 0..100 {
                let number = format!("{prefix}{d:02}{:06}", rng.next() % 1_000_000);
                assert_eq!(cn.normalize(&number), slow(&number, "CN"), "{number}");
            }
        }
        assert!(
            fast_hits > 2000,
            "the fast path is hardly used: {fast_hits}"
        );
    }

    /// 5,000 spellings here (debug builds parse slowly); the same test passed with
    /// 1,000,000 in a release build.
    #[test]
    fn fast_path_agrees_on_written_forms() {
        let cn = PhoneReader::new("CN").unwrap();
        let us = PhoneReader::new("us").unwrap();
        let mut rng = Rng(42);
        let seps = [
            " ", "-", ".", "  ", "\u{3000}", "\t", "\u{FF0D}", "\u{2014}", "- ", "",
        ];
        let prefixes = [
            "",
            "+86",
            "86",
            "0086",
            "+",
            "+0086",
            "(+86)",
            "＋８６",
            "+ 86",
        ];
        for _ in 0..5_000 {
            let prefix = prefixes[rng.below(prefixes.len())];
            let national = format!("1{}{:09}", 3 + rng.below(7), rng.next() % 1_000_000_000);
            let mut input = String::from(prefix);
            if !prefix.is_empty() {
                input.push_str(seps[rng.below(seps.len())]);
            }
            for (i, c) in national.chars().enumerate() {
                if i > 0 && rng.below(4) == 0 {
                    input.push_str(seps[rng.below(seps.len())]);
                }
                if rng.below(5) == 0 {
                    // Full-width digit.
                    input.push(char::from_u32(0xFF10 + c.to_digit(10).unwrap()).unwrap());
                } else {
                    input.push(c);
                }
            }
            if rng.below(10) == 0 {
                input.push_str(seps[rng.below(seps.len())]);
            }
            assert_eq!(cn.normalize(&input), slow(&input, "CN"), "{input:?}");
            assert_eq!(us.normalize(&input), slow(&input, "US"), "{input:?}");
        }
    }

    #[test]
    fn fast_path_covers_the_common_forms() {
        for input in [
            "13800138000",
            "+86 138 0013 8000",
            "0086-138-0013-8000",
            "8613800138000",
            "138 0013 8000",
            "138.0013.8000",
            "１３８００１３８０００",
        ] {
            assert!(cn_mobile(input).is_some(), "{input}");
            assert_eq!(
                PhoneReader::new("CN").unwrap().normalize(input).as_deref(),
                Some("+8613800138000")
            );
        }
        // Not the fast path: other regions go through normalize_phone.
        let us = PhoneReader::new("US").unwrap();
        assert_eq!(us.normalize("13800138000"), None);
        assert_eq!(
            us.normalize("(201) 555-0123").as_deref(),
            Some("+12015550123")
        );
    }

    #[test]
    fn delimiter_detection() {
        assert_eq!(detect_delimiter("a,b\nc,d\n"), Some(b','));
        assert_eq!(detect_delimiter("a\tb,c\nd\te\n"), Some(b'\t'));
        assert_eq!(detect_delimiter("\"x,y\";b\nc;d\n"), Some(b';'));
        assert_eq!(detect_delimiter("a|b|c\nd|e|f"), Some(b'|'));
        assert_eq!(detect_delimiter("13800138000\n13900139000\n"), None);
        assert_eq!(
            detect_delimiter("张三 138 0013 8000, hi\n李四 139\n王五\n"),
            None
        );
    }

    #[test]
    fn header_names() {
        assert_eq!(header_kind("手机号"), Some(ColumnKind::Phone));
        assert_eq!(header_kind("Mobile Phone"), Some(ColumnKind::Phone));
        assert_eq!(header_kind("TEL"), Some(ColumnKind::Phone));
        assert_eq!(header_kind("E-Mail"), Some(ColumnKind::Email));
        assert_eq!(header_kind("邮箱"), Some(ColumnKind::Email));
        assert_eq!(header_kind("account_id"), Some(ColumnKind::AccountId));
        assert_eq!(header_kind("账号"), Some(ColumnKind::AccountId));
        assert_eq!(header_kind("客户账户"), Some(ColumnKind::AccountId));
        assert_eq!(header_kind("客户手机"), Some(ColumnKind::Phone));
        assert_eq!(header_kind("姓名"), Some(ColumnKind::Name));
        assert_eq!(header_kind("客户"), Some(ColumnKind::Name));
        assert_eq!(header_kind("province"), None);
        assert_eq!(header_kind("13800138000"), None);
    }

    #[test]
    fn account_shapes() {
        assert!(account_shaped("ACC-0012345678", true));
        assert!(account_shaped("acc_0012", true));
        assert!(!account_shaped("tel13800138000", true));
        assert!(account_shaped("U12345", false));
        assert!(!account_shaped("13800138000", false));
        assert!(!account_shaped("zhang", false));
        assert!(!account_shaped("ACC-12", false));
    }

    #[test]
    fn leak_row_debug_shows_no_values() {
        let row = LeakRow {
            line: 3,
            phones: vec!["+8613800138000".into()],
            emails: vec!["zhang@example.com".into()],
            account_ids: vec!["ACC-0012345678".into()],
            has_name: true,
        };
        let shown = format!("{row:?}");
        assert!(!shown.contains("138"), "{shown}");
        assert!(!shown.contains("zhang"), "{shown}");
        assert!(!shown.contains("ACC"), "{shown}");
    }
}

//! Matching: each row of a leaked file to the customers it names, through the blind
//! indexes only (the vault is never decrypted). The normalised values live only until
//! their keyed hashes are computed.

use std::collections::{BTreeSet, HashSet};

use custos_crypto::{IndexKind, Keyring};
use custos_store::{IndexColumn, Store, StoreError};

use crate::input::LeakRow;
use crate::interner::Interner;

/// What the rows of a leaked file matched.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Matched {
    /// The distinct customers named, in order of first appearance in the file.
    pub customers: Vec<String>,
    /// Rows that named exactly one customer.
    pub rows_matched: u64,
    /// Rows that named no customer of the vault.
    pub rows_unmatched: u64,
    /// Rows whose identifiers named more than one customer (a shared phone number, or a
    /// phone and an email of different customers): all of them are kept, and counted.
    pub rows_ambiguous: u64,
}

/// The identifiers of one kind, and for each row which of them it holds.
struct Column {
    kind: IndexKind,
    store: IndexColumn,
    /// Distinct blind indexes (hex), numbered in first-seen order.
    indexes: Interner,
    /// Per row, numbers of `indexes`.
    rows: Vec<Vec<u32>>,
}

impl Column {
    fn new(kind: IndexKind, store: IndexColumn, rows: usize) -> Column {
        Column {
            kind,
            store,
            indexes: Interner::default(),
            rows: vec![Vec::new(); rows],
        }
    }

    fn add(&mut self, keyring: &Keyring, row: usize, normalized: &str) {
        let hex = keyring.blind_index(self.kind, normalized).to_hex();
        let number = self.indexes.intern(&hex);
        self.rows[row].push(number);
    }
}

/// Matches `rows` against the vault's blind indexes.
///
/// # Errors
///
/// A [`StoreError`] from the lookups.
pub async fn match_rows(
    store: &Store,
    keyring: &Keyring,
    rows: &[LeakRow],
) -> Result<Matched, StoreError> {
    let mut columns = [
        Column::new(IndexKind::Phone, IndexColumn::Phone, rows.len()),
        Column::new(IndexKind::Email, IndexColumn::Email, rows.len()),
        Column::new(IndexKind::AccountId, IndexColumn::AccountId, rows.len()),
    ];
    for (i, row) in rows.iter().enumerate() {
        for phone in &row.phones {
            columns[0].add(keyring, i, phone);
        }
        for email in &row.emails {
            columns[1].add(keyring, i, email);
        }
        for account in &row.account_ids {
            columns[2].add(keyring, i, account);
        }
    }
    // Per column, per distinct index: the customers stored under it.
    let mut found: Vec<Vec<Vec<String>>> = Vec::with_capacity(columns.len());
    for column in &columns {
        let mut by_index = vec![Vec::new(); column.indexes.names().len()];
        for (index, customer) in store
            .customers_by_indexes(column.store, column.indexes.names())
            .await?
        {
            if let Some(p) = column.indexes.get(&index) {
                by_index[p as usize].push(customer);
            }
        }
        found.push(by_index);
    }

    let mut matched = Matched::default();
    let mut seen: HashSet<&str> = HashSet::new();
    for i in 0..rows.len() {
        let named: BTreeSet<&str> = columns
            .iter()
            .zip(&found)
            .flat_map(|(column, by_index)| {
                column.rows[i]
                    .iter()
                    .flat_map(move |&p| by_index[p as usize].iter().map(String::as_str))
            })
            .collect();
        match named.len() {
            0 => matched.rows_unmatched += 1,
            1 => matched.rows_matched += 1,
            _ => matched.rows_ambiguous += 1,
        }
        for customer in named {
            if seen.insert(customer) {
                matched.customers.push(customer.to_owned());
            }
        }
    }
    Ok(matched)
}

//! Matching: each row of a leaked file to the customers it names, through the blind
//! indexes only (the vault is never decrypted). The normalised values live only until
//! their keyed hashes are computed.

use std::collections::HashSet;

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
    store: IndexColumn,
    /// Distinct blind indexes (hex), numbered in first-seen order.
    indexes: Interner,
    /// Per row, numbers of `indexes`.
    rows: Vec<Vec<u32>>,
}

/// One row's blind indexes (hex): its phones', emails' and account ids'.
pub type RowIndexes = [Vec<String>; 3];

/// The kinds of identifier matched, with the store column of each.
const KINDS: [(IndexKind, IndexColumn); 3] = [
    (IndexKind::Phone, IndexColumn::Phone),
    (IndexKind::Email, IndexColumn::Email),
    (IndexKind::AccountId, IndexColumn::AccountId),
];

/// The blind indexes of each row's identifiers, in row order (while the index key
/// rotates, each value's under both keys: a stored customer is under one). The keyed hashes dominate
/// matching's own work (one HMAC per identifier), so the rows are split over the
/// available cores.
pub fn hash_rows(keyring: &Keyring, rows: &[LeakRow]) -> Vec<RowIndexes> {
    let hash = |rows: &[LeakRow]| -> Vec<RowIndexes> {
        rows.iter()
            .map(|row| {
                let of = |kind: IndexKind, values: &[String]| -> Vec<String> {
                    values
                        .iter()
                        .flat_map(|v| keyring.lookup_indexes(kind, v))
                        .map(|index| index.to_hex())
                        .collect()
                };
                [
                    of(KINDS[0].0, &row.phones),
                    of(KINDS[1].0, &row.emails),
                    of(KINDS[2].0, &row.account_ids),
                ]
            })
            .collect()
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per_thread = rows.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let parts: Vec<_> = rows
            .chunks(per_thread)
            .map(|part| scope.spawn(move || hash(part)))
            .collect();
        // Hashing has no failure on any input; a panic there is a bug, raised again here
        // as it would be on one thread.
        parts
            .into_iter()
            .flat_map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
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
    let mut columns = KINDS.map(|(_, store)| Column {
        store,
        indexes: Interner::default(),
        rows: vec![Vec::new(); rows.len()],
    });
    for (i, hashed) in hash_rows(keyring, rows).into_iter().enumerate() {
        for (column, hexes) in columns.iter_mut().zip(hashed) {
            for hex in hexes {
                let number = column.indexes.intern(&hex);
                column.rows[i].push(number);
            }
        }
    }
    // Per column, per distinct index: the customers stored under it.
    let mut found: Vec<Vec<Vec<String>>> = Vec::with_capacity(columns.len());
    for column in &columns {
        let mut by_index = vec![Vec::new(); column.indexes.names().len()];
        if !by_index.is_empty() {
            for (index, customer) in store
                .customers_by_indexes(column.store, column.indexes.names())
                .await?
            {
                if let Some(p) = column.indexes.get(&index) {
                    by_index[p as usize].push(customer);
                }
            }
        }
        found.push(by_index);
    }

    let mut matched = Matched::default();
    let mut seen: HashSet<&str> = HashSet::new();
    // Reused for every row: most rows name one customer, so a sorted vector beats a set.
    let mut named: Vec<&str> = Vec::new();
    for i in 0..rows.len() {
        named.clear();
        for (column, by_index) in columns.iter().zip(&found) {
            for &p in &column.rows[i] {
                named.extend(by_index[p as usize].iter().map(String::as_str));
            }
        }
        named.sort_unstable();
        named.dedup();
        match named.len() {
            0 => matched.rows_unmatched += 1,
            1 => matched.rows_matched += 1,
            _ => matched.rows_ambiguous += 1,
        }
        for &customer in &named {
            if seen.insert(customer) {
                matched.customers.push(customer.to_owned());
            }
        }
    }
    Ok(matched)
}

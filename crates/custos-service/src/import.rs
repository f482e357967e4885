//! Bulk import of customers: NDJSON parsed and sealed on every core, off the async
//! workers, and stored all or nothing per batch. A batch sent with an idempotency key is
//! stored at most once: a resend (after a lost answer, or by a resumed `custos import`)
//! is answered from the receipt the first one left, with the same ids.

use std::num::NonZeroUsize;

use custos_crypto::Keyring;
use custos_store::{CustomerRecord, ImportReceipt};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::App;
use crate::error::{Code, ErrorKind, ServiceError};
use crate::input::{MAX_IMPORT, json_error};
use crate::record::{Recorded, RequestMeta};
use crate::vault::{self, NewCustomer};

/// Header carrying the client's name for one import batch.
pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";

/// Header carrying the number, in the client's file, of the batch's first line, so that
/// an error names the line of the file rather than of the batch.
pub const FIRST_LINE_HEADER: &str = "x-custos-first-line";

/// Longest idempotency key.
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 128;

/// The customers an import (or a planting of canaries) stored.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Imported {
    imported: usize,
    /// The new customers' ids, in input order.
    #[schema(value_type = Vec<crate::schema::CustomerId>)]
    ids: Vec<String>,
    /// True when the batch had been stored before under the same idempotency key, and
    /// this answer repeats that one's ids (nothing new was stored).
    replayed: bool,
}

/// A client's name for one import batch: 1–128 of `[A-Za-z0-9_.:-]`. Keys are the
/// sending staff member's own; another's batch under the same key is a different batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// The key, or `invalid_header`.
    pub fn parse(value: &[u8]) -> Result<IdempotencyKey, ServiceError> {
        let ok = !value.is_empty()
            && value.len() <= MAX_IDEMPOTENCY_KEY_CHARS
            && value
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'));
        match std::str::from_utf8(value) {
            Ok(key) if ok => Ok(IdempotencyKey(key.to_owned())),
            _ => Err(ServiceError::bad_request(
                Code::InvalidHeader,
                format!(
                    "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} characters of A-Z, a-z, 0-9, _ . : -"
                ),
            )),
        }
    }

    /// The key as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How an import batch was sent, beside its body.
#[derive(Clone, Debug)]
pub struct ImportBatch {
    /// Makes a resend safe; without one, every send stores the batch anew.
    pub key: Option<IdempotencyKey>,
    /// The number of the batch's first line in the client's file (1 for a whole file).
    pub first_line: NonZeroUsize,
}

impl Default for ImportBatch {
    fn default() -> ImportBatch {
        ImportBatch {
            key: None,
            first_line: NonZeroUsize::MIN,
        }
    }
}

impl ImportBatch {
    /// The batch as described by the values of [`IDEMPOTENCY_KEY_HEADER`] and
    /// [`FIRST_LINE_HEADER`], each absent or as sent; `invalid_header` if one is not
    /// valid.
    pub fn from_headers(
        key: Option<&[u8]>,
        first_line: Option<&[u8]>,
    ) -> Result<ImportBatch, ServiceError> {
        let key = key.map(IdempotencyKey::parse).transpose()?;
        let first_line = match first_line {
            None => NonZeroUsize::MIN,
            Some(value) => std::str::from_utf8(value)
                .ok()
                .filter(|v| v.len() <= 12 && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| {
                    ServiceError::bad_request(
                        Code::InvalidHeader,
                        "X-Custos-First-Line must be a line number from 1 to 999999999999",
                    )
                })?,
        };
        Ok(ImportBatch { key, first_line })
    }
}

impl App {
    /// Imports customers, all or nothing (`import_customers`: admins); `ndjson` is the
    /// body as read by the transport, one new customer per line, and `batch` how it was
    /// sent (as decoded by the transport).
    pub async fn import_customers(
        &self,
        meta: &RequestMeta,
        ndjson: Result<Vec<u8>, ServiceError>,
        batch: Result<ImportBatch, ServiceError>,
    ) -> Recorded<Imported> {
        let mut ex = self.begin(meta, custos_types::Action::ImportCustomers);
        let result = async {
            let caller = self
                .authorize_vault(meta, &mut ex, custos_policy::Action::ImportCustomers)
                .await?;
            let batch = batch?;
            let ndjson = ndjson?;
            let Some(key) = batch.key else {
                let records = self.seal_ndjson(ndjson, batch.first_line).await?;
                self.record_intent(&mut ex).await?;
                return self.insert_all(records).await;
            };
            let receipt = ImportReceipt {
                staff_id: caller.staff.id.clone(),
                key: key.0,
                body_hash: hex::encode(Sha256::digest(&ndjson)),
                ids: Vec::new(),
                created_at: ex.at(),
            };
            // A resend is answered before any sealing: it stores nothing.
            if let Some(first) = self
                .store
                .import_receipt(&receipt.staff_id, &receipt.key)
                .await?
            {
                return replay(first, &receipt.body_hash);
            }
            let records = self.seal_ndjson(ndjson, batch.first_line).await?;
            let receipt = ImportReceipt {
                ids: records.iter().map(|r| r.id.clone()).collect(),
                ..receipt
            };
            self.record_intent(&mut ex).await?;
            if self
                .store
                .insert_customers_with_receipt(&records, &receipt)
                .await?
            {
                return Ok(Imported {
                    imported: receipt.ids.len(),
                    ids: receipt.ids,
                    replayed: false,
                });
            }
            // The same key's batch was stored while this one was being sealed.
            let first = self
                .store
                .import_receipt(&receipt.staff_id, &receipt.key)
                .await?
                .ok_or_else(ServiceError::internal)?;
            replay(first, &receipt.body_hash)
        }
        .await;
        self.finish(ex, result).await
    }

    /// Stores sealed customers in one transaction and says which.
    pub(crate) async fn insert_all(
        &self,
        records: Vec<CustomerRecord>,
    ) -> Result<Imported, ServiceError> {
        self.store.insert_customers(&records).await?;
        let ids: Vec<String> = records.into_iter().map(|r| r.id).collect();
        Ok(Imported {
            imported: ids.len(),
            ids,
            replayed: false,
        })
    }

    /// Reads new customers from NDJSON and seals each, all or nothing; errors name the
    /// line, counted from `first_line`. The work runs on blocking threads, one part of
    /// the lines per core, so a large import neither waits on one core nor holds up the
    /// async workers serving other requests.
    pub(crate) async fn seal_ndjson(
        &self,
        ndjson: Vec<u8>,
        first_line: NonZeroUsize,
    ) -> Result<Vec<CustomerRecord>, ServiceError> {
        let keyring = self.keyring.clone();
        let region = self.config.default_region.clone();
        tokio::task::spawn_blocking(move || seal_lines(&keyring, &region, &ndjson, first_line))
            .await
            .map_err(|_| ServiceError::internal())?
    }
}

/// Answers a resent batch from the receipt of the first: the same body gets the same
/// ids; another body under the same key is refused.
fn replay(first: ImportReceipt, body_hash: &str) -> Result<Imported, ServiceError> {
    if first.body_hash != body_hash {
        return Err(ServiceError::new(
            ErrorKind::Conflict,
            Code::IdempotencyKeyReused,
            "this Idempotency-Key was used for a different batch; send each batch under its own key",
        ));
    }
    Ok(Imported {
        imported: first.ids.len(),
        ids: first.ids,
        replayed: true,
    })
}

/// The lines of `ndjson` that hold something, with their numbers counted from
/// `first_line`; `too_many_records` past [`MAX_IMPORT`], `empty_import` if none.
fn numbered_lines(
    ndjson: &[u8],
    first_line: NonZeroUsize,
) -> Result<Vec<(usize, &[u8])>, ServiceError> {
    let mut lines = Vec::new();
    for (n, line) in ndjson.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if lines.len() == MAX_IMPORT {
            return Err(ServiceError::bad_request(
                Code::TooManyRecords,
                format!("at most {MAX_IMPORT} customers per import"),
            ));
        }
        lines.push((first_line.get().saturating_add(n), line));
    }
    if lines.is_empty() {
        return Err(ServiceError::bad_request(
            Code::EmptyImport,
            "the body holds no customer: send one JSON object per line",
        ));
    }
    Ok(lines)
}

/// Parses and seals every line of an NDJSON import (one new customer per line that holds
/// something), split over the machine's cores, all or nothing: line numbers count from
/// `first_line`, and the error of the earliest failing line wins, so the answer does not
/// depend on the split. `default_region` reads phone numbers without a country code. The
/// parser behind `POST /v1/customers/import` and `custos import`, public for the fuzz
/// target (fuzz/README.md).
pub fn seal_lines(
    keyring: &Keyring,
    default_region: &str,
    ndjson: &[u8],
    first_line: NonZeroUsize,
) -> Result<Vec<CustomerRecord>, ServiceError> {
    let lines = numbered_lines(ndjson, first_line)?;
    let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    // Small batches are not worth a thread each.
    let part = lines.len().div_ceil(cores).max(256);
    let parts: Vec<Result<Vec<CustomerRecord>, ServiceError>> = std::thread::scope(|scope| {
        let workers: Vec<_> = lines
            .chunks(part)
            .map(|chunk| scope.spawn(move || seal_part(keyring, default_region, chunk)))
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|_| Err(ServiceError::internal())))
            .collect()
    });
    let mut records = Vec::with_capacity(lines.len());
    for part in parts {
        records.extend(part?);
    }
    Ok(records)
}

fn seal_part(
    keyring: &Keyring,
    region: &str,
    lines: &[(usize, &[u8])],
) -> Result<Vec<CustomerRecord>, ServiceError> {
    lines
        .iter()
        .map(|(n, line)| {
            let input: NewCustomer =
                serde_json::from_slice(line).map_err(|e| json_error(&e, Some(*n)))?;
            let id = crate::ids::new_customer_id();
            vault::seal_customer(keyring, region, &id, &input).map_err(|e| ServiceError {
                message: format!("line {n}: {}", e.message),
                ..e
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_outside_the_alphabet_or_length_are_refused_with_invalid_header() {
        for bad in [
            &b""[..],
            b"has space",
            b"semi;colon",
            &[b'k'; 129],
            "é".as_bytes(),
        ] {
            let err = IdempotencyKey::parse(bad).unwrap_err();
            assert_eq!(err.code, Code::InvalidHeader);
        }
        let key = IdempotencyKey::parse(&[b'k'; 128]).unwrap();
        assert_eq!(key.as_str().len(), 128);
        assert!(IdempotencyKey::parse(b"file-1a2b:0042_x.y").is_ok());
    }

    #[test]
    fn first_line_headers_must_be_positive_numbers() {
        for bad in [&b"0"[..], b"-3", b"+3", b"3.0", b"", b"x", b"9999999999999"] {
            let err = ImportBatch::from_headers(None, Some(bad)).unwrap_err();
            assert_eq!(err.code, Code::InvalidHeader, "{bad:?}");
        }
        let batch = ImportBatch::from_headers(None, Some(b"20001")).unwrap();
        assert_eq!(batch.first_line.get(), 20001);
        assert_eq!(
            ImportBatch::from_headers(None, None)
                .unwrap()
                .first_line
                .get(),
            1
        );
    }

    #[test]
    fn lines_are_numbered_from_the_first_line_and_blank_ones_skipped() {
        let body = b"{\"a\":1}\n\n  \n{\"b\":2}\n";
        let lines = numbered_lines(body, NonZeroUsize::new(41).unwrap()).unwrap();
        let numbers: Vec<usize> = lines.iter().map(|(n, _)| *n).collect();
        assert_eq!(numbers, [41, 44]);
        let err = numbered_lines(b"\n \n", NonZeroUsize::MIN).unwrap_err();
        assert_eq!(err.code, Code::EmptyImport);
    }

    #[test]
    fn the_earliest_bad_line_is_named_whatever_the_split() {
        let keyring = Keyring::new(&custos_crypto::MasterKey::from_bytes([7; 32]));
        let mut body = Vec::new();
        for i in 0..2000 {
            if i == 1500 || i == 1900 {
                body.extend_from_slice(b"{\"name\": 7}\n");
            } else {
                body.extend_from_slice(format!("{{\"name\":\"P {i}\"}}\n").as_bytes());
            }
        }
        let err = seal_lines(&keyring, "US", &body, NonZeroUsize::new(10).unwrap()).unwrap_err();
        assert!(err.message.contains("line 1510"), "{}", err.message);
        let good: Vec<u8> = (0..600)
            .flat_map(|i| format!("{{\"name\":\"P {i}\"}}\n").into_bytes())
            .collect();
        let records = seal_lines(&keyring, "US", &good, NonZeroUsize::MIN).unwrap();
        assert_eq!(records.len(), 600);
        let ids: std::collections::HashSet<&str> = records.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids.len(), 600);
    }
}

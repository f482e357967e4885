//! Receipts of imports sent with an idempotency key: what a resent batch is answered
//! from. Written with the batch's customers (`Store::insert_customers_with_receipt`).

use crate::error::db_err;
use crate::{Pools, Store, StoreError};

/// What one keyed import stored, per staff member and key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportReceipt {
    /// The staff member who sent the import; keys are theirs alone.
    pub staff_id: String,
    /// The idempotency key as the client sent it.
    pub key: String,
    /// SHA-256 of the request body, hex: a resend must carry the same body.
    pub body_hash: String,
    /// The customer ids the import assigned, in input order.
    pub ids: Vec<String>,
    /// When the import was stored, unix milliseconds.
    pub created_at: i64,
}

// `DO NOTHING`: a second import under a key already used is told apart by the number of
// rows written, and the caller answers it from the first receipt.
pub(crate) const INSERT_RECEIPT: &str = "INSERT INTO import_receipts \
     (staff_id, key, body_hash, ids, created_at) VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (staff_id, key) DO NOTHING";
const SELECT_RECEIPT: &str = "SELECT staff_id, key, body_hash, ids, created_at \
     FROM import_receipts WHERE staff_id = $1 AND key = $2";

#[derive(sqlx::FromRow)]
struct ReceiptRow {
    staff_id: String,
    key: String,
    body_hash: String,
    ids: String,
    created_at: i64,
}

impl Store {
    /// The receipt of `staff_id`'s import under `key`, if there is one.
    pub async fn import_receipt(
        &self,
        staff_id: &str,
        key: &str,
    ) -> Result<Option<ImportReceipt>, StoreError> {
        let row: Option<ReceiptRow> = with_pool!(self, |pool| {
            sqlx::query_as(SELECT_RECEIPT)
                .bind(staff_id)
                .bind(key)
                .fetch_optional(pool)
                .await
                .map_err(db_err)?
        });
        Ok(row.map(|r| ImportReceipt {
            staff_id: r.staff_id,
            key: r.key,
            body_hash: r.body_hash,
            ids: r
                .ids
                .split(',')
                .filter(|id| !id.is_empty())
                .map(str::to_owned)
                .collect(),
            created_at: r.created_at,
        }))
    }
}

//! Storage for privacy-number calls: which number of the pool leads which agent to
//! which customer, for the life of a case. Ids and pool numbers only.

use crate::error::db_err;
use crate::{Pools, Store, StoreError};

/// A pool number bound to an agent and a customer under a case.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct CallBinding {
    /// The case it was made under; it ends when that case closes.
    pub case_id: String,
    /// The agent it serves.
    pub staff_id: String,
    /// The customer it leads to.
    pub customer_id: String,
    /// The pool number (E.164): the company's, not the customer's.
    pub number: String,
    /// When it was made, unix milliseconds.
    pub created_at: i64,
}

macro_rules! binding_cols {
    () => {
        "b.case_id, b.staff_id, b.customer_id, b.number, b.created_at"
    };
}

const INSERT_BINDING: &str = "INSERT INTO call_bindings \
     (case_id, staff_id, customer_id, number, created_at, ended_at) VALUES ($1, $2, $3, $4, $5, NULL)";
// A binding is in force while it has not ended and its case is open: a case closed by a
// path that did not end its bindings still closes them.
const SELECT_FOR_CUSTOMER: &str = concat!(
    "SELECT ",
    binding_cols!(),
    " FROM call_bindings b JOIN cases c ON c.id = b.case_id \
     WHERE b.staff_id = $1 AND b.customer_id = $2 AND b.ended_at IS NULL AND c.status = 'open'"
);
const SELECT_BY_NUMBER: &str = concat!(
    "SELECT ",
    binding_cols!(),
    " FROM call_bindings b JOIN cases c ON c.id = b.case_id \
     WHERE b.staff_id = $1 AND b.number = $2 AND b.ended_at IS NULL AND c.status = 'open'"
);
// Numbers held by unended bindings, whatever their case: the unique index counts them.
const SELECT_NUMBERS: &str =
    "SELECT number FROM call_bindings WHERE staff_id = $1 AND ended_at IS NULL";

impl crate::reader::FromReadRow for CallBinding {
    fn from_read_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(CallBinding {
            case_id: row.get(0)?,
            staff_id: row.get(1)?,
            customer_id: row.get(2)?,
            number: row.get(3)?,
            created_at: row.get(4)?,
        })
    }
}

impl Store {
    /// Stores a new binding, in force until its case closes
    /// ([`Store::close_case`]).
    /// [`StoreError::Conflict`] (and nothing stored) if the agent already holds that
    /// number or a binding to that customer, or the case has one;
    /// [`StoreError::NotFound`] if the case does not exist.
    pub async fn insert_call_binding(&self, b: &CallBinding) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(INSERT_BINDING)
                .bind(b.case_id.as_str())
                .bind(b.staff_id.as_str())
                .bind(b.customer_id.as_str())
                .bind(b.number.as_str())
                .bind(b.created_at)
                .execute(pool)
                .await
                .map_err(db_err)?;
        });
        Ok(())
    }

    /// The binding in force that leads `staff` to `customer`, if any.
    pub async fn call_binding_to(
        &self,
        staff: &str,
        customer: &str,
    ) -> Result<Option<CallBinding>, StoreError> {
        if let Some(reader) = &self.reader {
            return reader.row(SELECT_FOR_CUSTOMER, [staff, customer]);
        }
        Ok(with_pool!(self, |pool| {
            sqlx::query_as::<_, CallBinding>(SELECT_FOR_CUSTOMER)
                .bind(staff)
                .bind(customer)
                .fetch_optional(pool)
                .await
                .map_err(db_err)?
        }))
    }

    /// The binding in force through which `number` leads `staff`, if any.
    pub async fn call_binding_of(
        &self,
        staff: &str,
        number: &str,
    ) -> Result<Option<CallBinding>, StoreError> {
        if let Some(reader) = &self.reader {
            return reader.row(SELECT_BY_NUMBER, [staff, number]);
        }
        Ok(with_pool!(self, |pool| {
            sqlx::query_as::<_, CallBinding>(SELECT_BY_NUMBER)
                .bind(staff)
                .bind(number)
                .fetch_optional(pool)
                .await
                .map_err(db_err)?
        }))
    }

    /// The pool numbers `staff` holds in bindings not yet ended.
    pub async fn call_numbers_of(&self, staff: &str) -> Result<Vec<String>, StoreError> {
        if let Some(reader) = &self.reader {
            return reader.rows(SELECT_NUMBERS, [staff]);
        }
        Ok(with_pool!(self, |pool| {
            sqlx::query_scalar(SELECT_NUMBERS)
                .bind(staff)
                .fetch_all(pool)
                .await
                .map_err(db_err)?
        }))
    }
}

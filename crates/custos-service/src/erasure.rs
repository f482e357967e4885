//! Erasure at a customer's request (crypto-shredding): the privacy officer's
//! `DELETE /v1/customers/{id}` destroys the customer's wrapped data key, every sealed
//! field and their blind indexes, so nothing of them can be opened or found again (410
//! `erased` from then on). What stays is their id: cases, the access index and the
//! ledger name customers by id only, so the ledger still verifies and evidence bundles
//! that cite the customer still check offline. The erasure itself is a ledger entry,
//! recorded before it is made.
//!
//! Canaries are not erased: they are no one, and erasing one would end its watch.

use custos_policy::Action;
use serde::Serialize;

use crate::App;
use crate::error::{Code, ErrorKind, ServiceError};
use crate::record::{Recorded, RequestMeta};

/// An erased customer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Erased {
    /// The customer's id, which is all that stays.
    #[schema(value_type = crate::schema::CustomerId)]
    id: String,
    /// Always true.
    erased: bool,
}

impl App {
    /// Erases customer `id` (`EraseCustomer`: the privacy officer).
    pub async fn erase_customer(&self, meta: &RequestMeta, id: &str) -> Recorded<Erased> {
        let mut ex = self.begin(meta, custos_types::Action::EraseCustomer);
        let result = async {
            self.authorize_vault(meta, &mut ex, Action::EraseCustomer)
                .await?;
            ex.name_customer(id)?;
            let customer = self
                .store
                .customer(id)
                .await?
                .ok_or_else(|| ServiceError::not_found("customer"))?;
            if customer.is_erased() {
                return Err(ServiceError::erased());
            }
            let mark = self.keyring.canary_mark(id);
            if self.store.is_canary_mark(&mark).await? {
                return Err(ServiceError::new(
                    ErrorKind::Conflict,
                    Code::CanaryNotErasable,
                    "this customer cannot be erased",
                ));
            }
            self.record_intent(&mut ex).await?;
            if !self.store.erase_customer(id).await? {
                // Erased by another request between the read and the write.
                return Err(ServiceError::erased());
            }
            // The key is destroyed in the store; no copy stays in this process either.
            self.keyring.forget_data_key(id);
            Ok(Erased {
                id: id.to_owned(),
                erased: true,
            })
        }
        .await;
        self.finish(ex, result).await
    }
}

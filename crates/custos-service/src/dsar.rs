//! The customer's own copy (a data subject access request: PIPL art. 45, GDPR art. 15):
//! signed in with their customer access link, a customer downloads their data in full
//! and every access to it (the transparency list), as JSON and as a printable page. Only
//! the customer themselves gets it: no staff role, not even the company's portal, which
//! sees the accesses but never the values. The download is a ledger entry naming the
//! customer and the fields it held, made durable before the copy leaves.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::App;
use crate::auth::SessionCredential;
use crate::error::{Code, ErrorKind, ServiceError};
use crate::record::{Recorded, RequestMeta};
use crate::transparency::CustomerAccess;
use crate::vault::Opened;

/// What Custos holds of a customer, in full.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct CustomerData {
    /// The name.
    pub name: String,
    /// The phone number, if held.
    pub phone: Option<String>,
    /// The email address, if held.
    pub email: Option<String>,
    /// The account id, if held.
    pub account_id: Option<String>,
    /// The free-form attributes, if any.
    #[schema(value_type = Object)]
    pub attributes: BTreeMap<String, serde_json::Value>,
}

/// A customer's own copy.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct CustomerCopy {
    /// The customer.
    #[schema(value_type = crate::schema::CustomerId)]
    pub customer: String,
    /// When the copy was made, unix milliseconds.
    pub made_at: i64,
    /// Their data.
    pub data: CustomerData,
    /// Every access to their record, newest first, as the transparency list shows it.
    pub accesses: Vec<CustomerAccess>,
    /// Whether older accesses were left out (more than 10,000).
    pub truncated: bool,
}

impl App {
    /// Customer `id`'s own copy, for the customer themselves (a console session opened
    /// with their access link).
    pub async fn customer_copy(&self, meta: &RequestMeta, id: &str) -> Recorded<CustomerCopy> {
        let mut ex = self.begin(meta, custos_types::Action::CustomerCopy);
        let result = async {
            match &meta.session {
                Some(SessionCredential::Customer { customer_id }) => {
                    ex.set_customer_principal();
                    if customer_id != id {
                        return Err(ServiceError::new(
                            ErrorKind::Forbidden,
                            Code::NotYourRecord,
                            "a customer access link gives only its own customer's copy",
                        ));
                    }
                }
                _ => {
                    // Staff are authenticated (and so recorded as who asked), then refused.
                    self.authenticate(meta, &mut ex).await?;
                    return Err(ServiceError::new(
                        ErrorKind::Forbidden,
                        Code::Forbidden,
                        "only the customer themselves downloads their copy, signed in with their access link",
                    ));
                }
            }
            ex.name_customer(id)?;
            let record = self
                .store
                .customer(id)
                .await?
                .ok_or_else(|| ServiceError::not_found("customer"))?;
            let opened = Opened::new(&self.keyring, &record)?;
            let text = |field: &str| -> Result<Option<String>, ServiceError> {
                Ok(opened.field(field)?.map(|v| v.as_str().to_owned()))
            };
            let data = CustomerData {
                name: text("name")?.unwrap_or_default(),
                phone: text("phone")?,
                email: text("email")?,
                account_id: text("account_id")?,
                attributes: opened.attributes()?,
            };
            let held = [
                ("name", true),
                ("phone", data.phone.is_some()),
                ("email", data.email.is_some()),
                ("account_id", data.account_id.is_some()),
                ("attributes", !data.attributes.is_empty()),
            ];
            ex.fields = held
                .into_iter()
                .filter(|(_, held)| *held)
                .map(|(field, _)| field.to_owned())
                .collect();
            let list = self.read_customer_accesses(id).await?;
            Ok(CustomerCopy {
                customer: id.to_owned(),
                made_at: ex.at(),
                data,
                accesses: list.accesses,
                truncated: list.truncated,
            })
        }
        .await;
        self.finish(ex, result).await
    }
}

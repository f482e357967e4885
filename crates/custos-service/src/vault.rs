//! The vault's view of a customer: sealing new records field by field under a fresh
//! per-customer data key, and opening them again for one response only.

use crate::error::Code;
use std::collections::BTreeMap;

use custos_crypto::{CryptoError, DataKey, IndexKind, Keyring};
use custos_store::CustomerRecord;
use custos_types::clock::now_millis;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::ServiceError;
use crate::mask;

/// A customer as submitted by an integration or an import.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCustomer {
    /// Full name.
    #[schema(value_type = crate::schema::CustomerName)]
    pub name: String,
    /// Phone number in any common notation; read with the configured default region.
    #[schema(value_type = Option<crate::schema::Phone>)]
    pub phone: Option<String>,
    /// Email address.
    #[schema(value_type = Option<crate::schema::Email>)]
    pub email: Option<String>,
    /// The company's own account id.
    #[schema(value_type = Option<crate::schema::AccountId>)]
    pub account_id: Option<String>,
    /// Free attributes (sealed like every other field).
    #[serde(default)]
    #[schema(value_type = crate::schema::Attributes)]
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

impl Drop for NewCustomer {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.name.zeroize();
        self.phone.zeroize();
        self.email.zeroize();
        self.account_id.zeroize();
    }
}

/// A customer as an agent sees it by default.
#[derive(Serialize, utoipa::ToSchema)]
pub struct MaskedCustomer {
    /// Customer id.
    #[schema(value_type = crate::schema::CustomerId)]
    pub id: String,
    /// Masked name, e.g. `Z** W**`.
    pub name: String,
    /// Masked phone, e.g. `138****8000`.
    pub phone: Option<String>,
    /// Masked email, e.g. `z***@example.com`.
    pub email: Option<String>,
    /// Masked account id, e.g. `****5678`.
    pub account_id: Option<String>,
    /// Names of the free attributes. Their values stay sealed: no Cedar action reveals
    /// them (a reveal names only [`crate::input::FIELDS`]), so they never leave the vault.
    pub attributes: Vec<String>,
}

fn invalid(e: CryptoError) -> ServiceError {
    ServiceError::bad_request(Code::Part(e.code()), e.to_string())
}

fn crypto_failure(e: CryptoError) -> ServiceError {
    if matches!(e, CryptoError::KeyProvider { .. }) {
        return ServiceError::key_provider(&e);
    }
    tracing::error!(code = e.code(), "vault record failed to unseal");
    ServiceError::internal()
}

/// Refuses control characters in attribute names and in every string inside their values.
fn valid_attributes(
    attributes: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), ServiceError> {
    fn walk(value: &serde_json::Value) -> Result<(), ServiceError> {
        match value {
            serde_json::Value::String(s) => {
                crate::input::no_control_characters("attribute values", s)
            }
            serde_json::Value::Array(items) => items.iter().try_for_each(walk),
            serde_json::Value::Object(map) => valid_attributes(map),
            _ => Ok(()),
        }
    }
    for (name, value) in attributes {
        crate::input::no_control_characters("attribute names", name)?;
        walk(value)?;
    }
    Ok(())
}

/// Validates, normalises and seals `input` as customer `id`.
pub fn seal_customer(
    keyring: &Keyring,
    default_region: &str,
    id: &str,
    input: &NewCustomer,
) -> Result<CustomerRecord, ServiceError> {
    crate::input::valid_text("name", &input.name, crate::input::MAX_CUSTOMER_NAME_CHARS)?;
    valid_attributes(&input.attributes)?;
    let phone = input
        .phone
        .as_deref()
        .map(|p| custos_crypto::normalize_phone(p, default_region).map(Zeroizing::new))
        .transpose()
        .map_err(invalid)?;
    let email = input
        .email
        .as_deref()
        .map(|e| custos_crypto::normalize_email(e).map(Zeroizing::new))
        .transpose()
        .map_err(invalid)?;
    let account = input
        .account_id
        .as_deref()
        .map(|a| custos_crypto::normalize_account_id(a).map(Zeroizing::new))
        .transpose()
        .map_err(invalid)?;
    let attributes = Zeroizing::new(
        serde_json::to_vec(&input.attributes).map_err(|_| ServiceError::internal())?,
    );
    let (key, wrapped_key) = keyring.new_data_key(id).map_err(crypto_failure)?;
    let seal = |field: &str, value: &[u8]| key.seal(id, field, value).map_err(crypto_failure);
    // One version for all three indexes, even if a rotation starts meanwhile.
    let index_version = keyring.index_version();
    let index = |kind, value: &Option<Zeroizing<String>>| {
        value
            .as_ref()
            .map(|v| keyring.blind_index_under(index_version, kind, v).to_hex())
    };
    Ok(CustomerRecord {
        id: id.to_owned(),
        wrapped_key,
        name: seal("name", input.name.trim().as_bytes())?,
        phone: phone
            .as_ref()
            .map(|v| seal("phone", v.as_bytes()))
            .transpose()?,
        email: email
            .as_ref()
            .map(|v| seal("email", v.as_bytes()))
            .transpose()?,
        account_id: account
            .as_ref()
            .map(|v| seal("account_id", v.as_bytes()))
            .transpose()?,
        attributes: if input.attributes.is_empty() {
            None
        } else {
            Some(seal("attributes", &attributes)?)
        },
        phone_idx: index(IndexKind::Phone, &phone),
        email_idx: index(IndexKind::Email, &email),
        account_idx: index(IndexKind::AccountId, &account),
        created_at: now_millis(),
        index_version: index_version.0,
    })
}

/// Blind indexes as the store keeps them (hex).
pub(crate) fn hexes(indexes: Vec<custos_crypto::BlindIndex>) -> Vec<String> {
    indexes
        .iter()
        .map(custos_crypto::BlindIndex::to_hex)
        .collect()
}

/// A customer record with its data key unwrapped, for the length of one response.
pub struct Opened<'a> {
    record: &'a CustomerRecord,
    key: DataKey,
}

impl<'a> Opened<'a> {
    /// Unwraps the record's data key; an erased customer has none (410 `erased`).
    pub fn new(keyring: &Keyring, record: &'a CustomerRecord) -> Result<Self, ServiceError> {
        if record.is_erased() {
            return Err(ServiceError::erased());
        }
        let key = keyring
            .unwrap_data_key(&record.id, &record.wrapped_key)
            .map_err(crypto_failure)?;
        Ok(Opened { record, key })
    }

    /// Seals free text about this customer (a case's reason, a request's purpose, a
    /// decision's reason) under their data key, bound to `context`, which names what the
    /// text is: it opens only with this customer's key and only as that.
    pub fn seal_text(&self, context: &str, text: &str) -> Result<Vec<u8>, ServiceError> {
        self.key
            .seal(&self.record.id, context, text.as_bytes())
            .map_err(|_| ServiceError::internal())
    }

    /// Opens text sealed by [`Opened::seal_text`] under the same `context`.
    pub fn open_text(
        &self,
        context: &str,
        sealed: &[u8],
    ) -> Result<Zeroizing<String>, ServiceError> {
        self.key
            .open_string(&self.record.id, context, sealed)
            .map_err(crypto_failure)
    }

    /// The plaintext of one personal field, if the customer has it.
    pub fn field(&self, field: &str) -> Result<Option<Zeroizing<String>>, ServiceError> {
        let sealed = match field {
            "name" => Some(&self.record.name),
            "phone" => self.record.phone.as_ref(),
            "email" => self.record.email.as_ref(),
            "account_id" => self.record.account_id.as_ref(),
            _ => {
                return Err(ServiceError::bad_request(
                    Code::InvalidField,
                    "unknown field name",
                ));
            }
        };
        sealed
            .map(|s| self.key.open_string(&self.record.id, field, s))
            .transpose()
            .map_err(crypto_failure)
    }

    /// The free-form attributes, in full (none: empty).
    pub fn attributes(&self) -> Result<BTreeMap<String, serde_json::Value>, ServiceError> {
        match &self.record.attributes {
            Some(sealed) => {
                let plain = self
                    .key
                    .open(&self.record.id, "attributes", sealed)
                    .map_err(crypto_failure)?;
                serde_json::from_slice(&plain).map_err(|_| ServiceError::internal())
            }
            None => Ok(BTreeMap::new()),
        }
    }

    /// The masked view of the whole record.
    pub fn masked(&self) -> Result<MaskedCustomer, ServiceError> {
        let attributes = self.attributes()?.into_keys().collect();
        Ok(MaskedCustomer {
            id: self.record.id.clone(),
            name: mask::name(&self.field("name")?.unwrap_or_default()),
            phone: self.field("phone")?.map(|v| mask::phone(&v)),
            email: self.field("email")?.map(|v| mask::email(&v)),
            account_id: self.field("account_id")?.map(|v| mask::account_id(&v)),
            attributes,
        })
    }
}

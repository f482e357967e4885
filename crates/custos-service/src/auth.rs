//! Bearer tokens: issued once, stored only as SHA-256 hashes, revocable. A console
//! session holds the hash of the token it was opened with, so revoking the token ends
//! the session too.

use base64::Engine;
use custos_store::{StaffRecord, Store, TokenRecord};
use custos_types::clock::now_millis;

use crate::error::ServiceError;

/// Prefix of every token, so leaked tokens are easy to find with secret scanners.
const TOKEN_PREFIX: &str = "cst_";

/// The authenticated caller of one request.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The staff entry the token belongs to.
    pub staff: StaffRecord,
    /// Whether the caller's org is a partner company rather than the company itself.
    pub partner: bool,
}

impl Caller {
    /// The caller for a staff entry; `company_org` tells the company from partners.
    pub fn of(staff: StaffRecord, company_org: &str) -> Caller {
        let partner = staff.org != company_org;
        Caller { staff, partner }
    }

    /// The Cedar principal for this caller.
    pub fn principal(&self) -> custos_policy::Principal<'_> {
        custos_policy::Principal {
            id: &self.staff.id,
            role: self.staff.role.as_str(),
            org: &self.staff.org,
            partner: self.partner,
            suspended: self.staff.status == custos_store::StaffStatus::Suspended,
        }
    }
}

/// Creates a token for `staff_id`; returns its id and the only copy of its secret.
pub async fn issue_token(store: &Store, staff_id: &str) -> Result<(String, String), ServiceError> {
    let secret = custos_crypto::random_bytes::<32>();
    let token = format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
    );
    let id = format!("tok_{}", hex::encode(custos_crypto::random_bytes::<8>()));
    store
        .insert_token(&TokenRecord {
            id: id.clone(),
            staff_id: staff_id.to_owned(),
            hash: custos_crypto::sha256_hex(token.as_bytes()),
            created_at: now_millis(),
            revoked_at: None,
        })
        .await?;
    Ok((id, token))
}

/// Who a console session speaks for on the console's internal calls to the API. It
/// travels as a request extension, which only the server itself can set: the API never
/// reads a cookie, so no other site can make a browser call it.
#[derive(Clone, Debug)]
pub enum SessionCredential {
    /// A staff session, opened with the token whose hash this is.
    Staff {
        /// SHA-256 hex of the token the session was opened with.
        token_hash: String,
    },
    /// A customer signed in with a customer access link.
    Customer {
        /// The customer the link was issued for.
        customer_id: String,
    },
}

/// The hash under which a well-formed token is stored, or `None` if `token` cannot be one.
pub fn token_hash(token: &str) -> Option<String> {
    let token = token.trim();
    (token.starts_with(TOKEN_PREFIX) && token.len() < 128)
        .then(|| custos_crypto::sha256_hex(token.as_bytes()))
}

/// Finds the staff entry behind the request's bearer credential (`Bearer <token>`), or behind the console
/// session it was made for.
pub async fn authenticate(
    store: &Store,
    company_org: &str,
    authorization: Option<&str>,
    session: Option<&SessionCredential>,
) -> Result<Caller, ServiceError> {
    let hash = match session {
        Some(SessionCredential::Staff { token_hash }) => token_hash.clone(),
        // A customer is no staff member: staff routes refuse them.
        Some(SessionCredential::Customer { .. }) => return Err(ServiceError::unauthenticated()),
        None => authorization
            .and_then(|v| v.strip_prefix("Bearer "))
            .and_then(token_hash)
            .ok_or_else(ServiceError::unauthenticated)?,
    };
    let (staff, _) = store
        .staff_by_token_hash(&hash)
        .await?
        .ok_or_else(ServiceError::unauthenticated)?;
    Ok(Caller::of(staff, company_org))
}

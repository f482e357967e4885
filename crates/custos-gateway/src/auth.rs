//! Bearer tokens: issued once, stored only as SHA-256 hashes, revocable.

use axum::http::{HeaderMap, header};
use base64::Engine;
use custos_store::{StaffRecord, Store, TokenRecord, now_millis};

use crate::error::ApiError;

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
    /// The Cedar principal for this caller.
    pub fn principal(&self) -> custos_policy::Principal<'_> {
        custos_policy::Principal {
            id: &self.staff.id,
            role: &self.staff.role,
            org: &self.staff.org,
            partner: self.partner,
            suspended: self.staff.status == custos_store::StaffStatus::Suspended,
        }
    }
}

/// Creates a token for `staff_id`; returns its id and the only copy of its secret.
pub async fn issue_token(store: &Store, staff_id: &str) -> Result<(String, String), ApiError> {
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

/// Finds the staff entry behind the request's bearer token.
pub async fn authenticate(
    store: &Store,
    company_org: &str,
    headers: &HeaderMap,
) -> Result<Caller, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| t.starts_with(TOKEN_PREFIX) && t.len() < 128)
        .ok_or_else(ApiError::unauthenticated)?;
    let (staff, _) = store
        .staff_by_token_hash(&custos_crypto::sha256_hex(token.as_bytes()))
        .await?
        .ok_or_else(ApiError::unauthenticated)?;
    let partner = staff.org != company_org;
    Ok(Caller { staff, partner })
}

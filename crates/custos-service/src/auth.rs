//! Bearer tokens: issued once, stored only as SHA-256 hashes, revocable. A console
//! session opened with a token holds the token's hash, so revoking the token ends the
//! session too. A console session opened by single sign-on (`[idp.console]`,
//! [`crate::oidc`]) holds the staff id the provider vouched for, with the role and
//! organisation it had then: every call loads that staff entry again (a suspended
//! person is refused by policy, one removed or given another role or organisation is
//! unauthenticated), and ending a person's credentials closes their sessions.

use base64::Engine;
use custos_store::{StaffRecord, Store, TokenRecord};
use custos_types::clock::now_millis;

use crate::client_certificate::ClientCertificate;
use crate::config::Config;
use crate::error::{Code, ErrorKind, ServiceError};
use crate::idp::{Identity, IdpTokens};

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
    /// A staff session opened by single sign-on with the identity provider
    /// (`[idp.console]`). No secret of the person's is kept: the session is bound to the
    /// staff entry itself, read again on every call, so that Custos's own status decides
    /// (a suspended person is refused by policy from the next request on), and a
    /// deprovisioning that ends the person's credentials deletes the session.
    SingleSignOn {
        /// The staff id the provider's ID token named.
        staff_id: String,
        /// The role the staff entry must have: the provider's role claim at sign-in (if
        /// `[idp] role_claim` names one), the entry's role at sign-in afterwards. A
        /// change of role ends the session (401).
        role: Option<String>,
        /// The organisation the staff entry must have, likewise.
        org: Option<String>,
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

/// A bearer credential, by who vouches for it.
enum Bearer {
    /// A local token (or the console session opened with one): the hash it is stored
    /// under.
    Local(String),
    /// The identity provider's access token, verified.
    Idp(Identity),
}

/// Finds the staff entry behind the request's credential: the console session it was
/// made for, else its bearer token (`Bearer <token>`: a local token, or an access token
/// of the identity provider, `[idp]`), else its client certificate (pinned to one
/// principal in `[mtls]`). A session opened by single sign-on (`sso`: whether
/// `[idp.console]` is configured; without it such a session speaks for no one) names
/// its staff entry. A principal with pinned certificates is
/// served only over a connection that presented one of them: a stolen token alone does
/// not speak for it (`client_certificate_required`).
pub(crate) async fn authenticate(
    store: &Store,
    config: &Config,
    authorization: Option<&str>,
    session: Option<&SessionCredential>,
    certificate: Option<&ClientCertificate>,
    idp: Option<&IdpTokens>,
    sso: bool,
) -> Result<Caller, ServiceError> {
    let credential = match session {
        Some(SessionCredential::Staff { token_hash }) => Some(Bearer::Local(token_hash.clone())),
        Some(SessionCredential::SingleSignOn {
            staff_id,
            role,
            org,
        }) => {
            if !sso {
                return Err(ServiceError::unauthenticated());
            }
            Some(Bearer::Idp(Identity::new(
                staff_id.clone(),
                role.clone(),
                org.clone(),
            )))
        }
        // A customer is no staff member: staff routes refuse them.
        Some(SessionCredential::Customer { .. }) => return Err(ServiceError::unauthenticated()),
        None => match authorization {
            Some(value) => {
                let bearer = value
                    .strip_prefix("Bearer ")
                    .ok_or_else(ServiceError::unauthenticated)?;
                Some(match (token_hash(bearer), idp) {
                    (Some(hash), _) => Bearer::Local(hash),
                    (None, Some(idp)) => Bearer::Idp(idp.identify(bearer.trim()).await?),
                    (None, None) => return Err(ServiceError::unauthenticated()),
                })
            }
            None => None,
        },
    };
    let staff = match credential {
        Some(Bearer::Local(hash)) => {
            store
                .staff_by_token_hash(&hash)
                .await?
                .ok_or_else(ServiceError::unauthenticated)?
                .0
        }
        Some(Bearer::Idp(identity)) => {
            let staff = store
                .staff(&identity.staff)
                .await?
                .ok_or_else(ServiceError::unauthenticated)?;
            identity.check(&staff)?;
            staff
        }
        None => {
            let pinned = certificate.and_then(|c| {
                config
                    .mtls
                    .iter()
                    .find(|(_, pins)| c.pinned_by(pins))
                    .map(|(staff, _)| staff)
            });
            let Some(id) = pinned else {
                return Err(ServiceError::unauthenticated());
            };
            store
                .staff(id)
                .await?
                .ok_or_else(ServiceError::unauthenticated)?
        }
    };
    if let Some(pins) = config.mtls.get(&staff.id)
        && !certificate.is_some_and(|c| c.pinned_by(pins))
    {
        return Err(ServiceError::new(
            ErrorKind::Unauthenticated,
            Code::ClientCertificateRequired,
            "this principal is served only over mutual TLS with its client certificate",
        ));
    }
    Ok(Caller::of(staff, &config.company_org))
}

#[cfg(test)]
mod tests {
    use super::*;
    use custos_store::StaffStatus;
    use custos_types::Role;

    fn signed_on(staff: &str, role: Option<&str>, org: Option<&str>) -> SessionCredential {
        SessionCredential::SingleSignOn {
            staff_id: staff.to_owned(),
            role: role.map(str::to_owned),
            org: org.map(str::to_owned),
        }
    }

    #[tokio::test]
    async fn a_single_sign_on_session_speaks_for_its_entry_while_it_is_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("custos.db"))
            .await
            .unwrap();
        store
            .insert_staff(&StaffRecord {
                id: "alice".into(),
                name: "Alice".into(),
                role: Role::Support,
                org: "custos".into(),
                status: StaffStatus::Active,
                created_at: 0,
            })
            .await
            .unwrap();
        let config = Config::default();
        let auth = |credential: SessionCredential, sso: bool| {
            let (store, config) = (store.clone(), config.clone());
            async move { authenticate(&store, &config, None, Some(&credential), None, None, sso).await }
        };
        let caller = auth(signed_on("alice", Some("support"), Some("custos")), true)
            .await
            .unwrap();
        assert_eq!(caller.staff.id, "alice");
        assert!(!caller.principal().suspended);
        // Without claims to compare (no role_claim or org_claim), the entry alone decides.
        assert!(auth(signed_on("alice", None, None), true).await.is_ok());
        // Without [idp.console], such a session speaks for no one.
        let e = auth(signed_on("alice", Some("support"), Some("custos")), false)
            .await
            .unwrap_err();
        assert_eq!(e.code.as_str(), "unauthenticated");
        // Someone not provisioned.
        let e = auth(signed_on("mallory", None, None), true)
            .await
            .unwrap_err();
        assert_eq!(e.code.as_str(), "unauthenticated");
        // A session opened as support, after the entry became an admin: over.
        let e = auth(signed_on("alice", Some("admin"), Some("custos")), true)
            .await
            .unwrap_err();
        assert_eq!(e.code.as_str(), "identity_mismatch");
        let e = auth(signed_on("alice", Some("support"), Some("partner")), true)
            .await
            .unwrap_err();
        assert_eq!(e.code.as_str(), "identity_mismatch");
        // Suspended: the caller is found, and is the suspended principal policy refuses.
        store
            .set_staff_status("alice", StaffStatus::Suspended)
            .await
            .unwrap();
        let caller = auth(signed_on("alice", Some("support"), Some("custos")), true)
            .await
            .unwrap();
        assert!(caller.principal().suspended);
    }
}

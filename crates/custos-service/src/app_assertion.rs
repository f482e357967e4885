//! The customer app's signed assertions (configuration `[contacts.app_assertion]`): a
//! JWT the company's identity provider issues to a customer signed in to the app, which
//! the contact centre hands on with an `app` contact (`caller.app_assertion`). The
//! assertion is checked against the provider's key set ([`custos_jwt`]); the claim
//! named `account_claim` is the customer's account id, matched through the blind index
//! like a calling number.
//!
//! An assertion vouches for one contact: it must be at most `max_age_seconds` old (its
//! `iat` is required), and it is used once. Every refusal carries the verifier's code
//! (`token_expired`, `token_bad_signature`, …, `jwks_unavailable`) and never a claim.

use std::collections::{BTreeSet, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use custos_jwt::{Algorithm, KeySource, Verifier, VerifierConfig, VerifyError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Code, ErrorKind, ServiceError};

/// The configuration's path to this section, as its messages name it.
const SECTION: &str = "contacts.app_assertion";

/// How the customer app's assertions are checked (section `[contacts.app_assertion]`);
/// without it, `app_assertion` callers are refused (`app_assertion_not_configured`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AppAssertionConfig {
    /// The identity provider's JSON Web Key Set: `https://…`, or `http://…` to a loopback
    /// host only.
    pub jwks_url: Option<String>,
    /// A file holding the key set instead of a URL (exactly one of the two).
    pub jwks_file: Option<PathBuf>,
    /// The one accepted `iss`.
    pub issuer: String,
    /// The one accepted `aud`: what the provider names Custos's contact intake.
    pub audience: String,
    /// The claim holding the customer's account id (default `sub`).
    pub account_claim: String,
    /// How old an assertion may be, from its `iat` (seconds; default 300, 1 to 3600).
    pub max_age_seconds: u32,
    /// How far the provider's clock and ours may disagree (seconds; default 60, at most
    /// 300).
    pub clock_skew_seconds: u32,
    /// The accepted signing algorithms (default `["RS256", "ES256", "EdDSA"]`); never
    /// `none` or HMAC.
    pub algorithms: Vec<Algorithm>,
}

impl Default for AppAssertionConfig {
    fn default() -> Self {
        AppAssertionConfig {
            jwks_url: None,
            jwks_file: None,
            issuer: String::new(),
            audience: String::new(),
            account_claim: "sub".to_owned(),
            max_age_seconds: 300,
            clock_skew_seconds: 60,
            algorithms: Algorithm::DEFAULT.to_vec(),
        }
    }
}

impl AppAssertionConfig {
    /// The verifier's configuration; an error names the setting that is wrong. Checks
    /// what can be checked without the network or the disk.
    pub fn verifier_config(&self) -> Result<VerifierConfig, String> {
        let keys = key_source(SECTION, self.jwks_url.as_deref(), self.jwks_file.as_ref())?;
        if self.account_claim.trim().is_empty() {
            return Err(format!("{SECTION}.account_claim must name a claim"));
        }
        if !(1..=3600).contains(&self.max_age_seconds) {
            return Err(format!("{SECTION}.max_age_seconds must be from 1 to 3600"));
        }
        let mut config = VerifierConfig::new(keys, &self.issuer, &self.audience);
        config.algorithms = self.algorithms.clone();
        config.clock_skew = Duration::from_secs(self.clock_skew_seconds.into());
        config.max_age = Some(Duration::from_secs(self.max_age_seconds.into()));
        config.validate().map_err(|e| {
            format!("{SECTION} (issuer, audience, algorithms, clock_skew_seconds): {e}")
        })?;
        Ok(config)
    }
}

/// Where an issuer's key set comes from, as section `section` configures it: exactly
/// one of a URL (`https://…`, or `http://…` to a loopback host) and a file.
pub(crate) fn key_source(
    section: &str,
    jwks_url: Option<&str>,
    jwks_file: Option<&PathBuf>,
) -> Result<KeySource, String> {
    match (jwks_url, jwks_file) {
        (Some(url), None) => Ok(KeySource::Url(custos_detector::webhook::https_or_loopback(
            &format!("{section}.jwks_url"),
            url,
        )?)),
        (None, Some(path)) => Ok(KeySource::File(path.clone())),
        _ => Err(format!(
            "{section} needs exactly one of jwks_url and jwks_file"
        )),
    }
}

/// The app's assertions as configured, ready to check.
///
/// An assertion is used once: its fingerprint is kept until the verifier would refuse it
/// anyway (`max_age_seconds` and the skew after its `iat`, or its `exp` if sooner): in
/// this process's memory on SQLite, in the database on PostgreSQL, where every gateway
/// node sees what the others accepted.
pub(crate) struct AppAssertions {
    verifier: Arc<Verifier>,
    account_claim: String,
    used: Used,
}

/// Where the fingerprints of used assertions are kept.
enum Used {
    /// One process owns the store (SQLite).
    Here(Mutex<UsedAssertions>),
    /// Shared by the nodes of one PostgreSQL database.
    Shared(custos_store::UsedTokens),
}

/// Fingerprints of the assertions used, until each would be refused anyway.
#[derive(Default)]
struct UsedAssertions {
    fingerprints: HashSet<[u8; 32]>,
    by_expiry: BTreeSet<(u64, [u8; 32])>,
}

impl UsedAssertions {
    /// Remembers `fingerprint` until `until`; `false` if it is remembered already.
    fn first_use(&mut self, fingerprint: [u8; 32], until: u64, now: u64) -> bool {
        while let Some(&(expiry, old)) = self.by_expiry.first() {
            if expiry >= now {
                break;
            }
            self.by_expiry.pop_first();
            self.fingerprints.remove(&old);
        }
        if !self.fingerprints.insert(fingerprint) {
            return false;
        }
        self.by_expiry.insert((until, fingerprint));
        true
    }
}

/// The refusal of an assertion the verifier refused: its code, and 503 for a key set
/// never read (the provider is unreachable; nothing about the assertion is known).
fn refusal(e: &VerifyError) -> ServiceError {
    let kind = match e {
        VerifyError::JwksUnavailable => ErrorKind::Unavailable,
        _ => ErrorKind::BadRequest,
    };
    ServiceError::new(kind, Code::Part(e.code()), format!("app_assertion: {e}"))
}

impl AppAssertions {
    /// Starts the verifier: it reads the key set now, and a provider that cannot be
    /// reached is logged, not fatal (assertions are refused with `jwks_unavailable`
    /// until a read succeeds).
    /// `shared` is the store's set of used tokens, when the store is shared by nodes.
    pub(crate) async fn start(
        config: &AppAssertionConfig,
        shared: Option<custos_store::UsedTokens>,
    ) -> Result<AppAssertions, String> {
        let verifier = Verifier::start(config.verifier_config()?)
            .await
            .map_err(|e| format!("{SECTION}: {e}"))?;
        Ok(AppAssertions {
            verifier,
            account_claim: config.account_claim.trim().to_owned(),
            used: match shared {
                Some(shared) => Used::Shared(shared),
                None => Used::Here(Mutex::new(UsedAssertions::default())),
            },
        })
    }

    /// Verifies `assertion`, marks it used and returns the customer's account id as its
    /// account claim gives it (not yet normalised). Refused with the verifier's code, as
    /// `token_missing_claim` without a string account claim, and as
    /// `app_assertion_replayed` when it was used before.
    pub(crate) async fn accept(&self, assertion: &str) -> Result<String, ServiceError> {
        let verified = self
            .verifier
            .verify::<serde_json::Value>(assertion)
            .await
            .map_err(|e| refusal(&e))?;
        let Some(account_id) = verified
            .claims
            .get(&self.account_claim)
            .and_then(|v| v.as_str())
        else {
            return Err(refusal(&VerifyError::MissingClaim(
                self.account_claim.clone(),
            )));
        };
        // The signed part: anyone can make a second valid ECDSA signature over the same
        // header and claims, which must count as the same assertion.
        let signed = assertion
            .rsplit_once('.')
            .map_or(assertion, |(signed, _)| signed);
        let now = u64::try_from(custos_types::clock::now_millis() / 1000).unwrap_or(0);
        let fingerprint: [u8; 32] = Sha256::digest(signed.as_bytes()).into();
        let first = match &self.used {
            Used::Here(used) => used.lock().unwrap_or_else(|p| p.into_inner()).first_use(
                fingerprint,
                verified.accepted_until,
                now,
            ),
            Used::Shared(used) => {
                used.first_use(&fingerprint, verified.accepted_until, now)
                    .await?
            }
        };
        if !first {
            return Err(ServiceError::bad_request(
                Code::AppAssertionReplayed,
                "app_assertion was used for a contact already; the app issues one per contact",
            ));
        }
        Ok(account_id.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> AppAssertionConfig {
        AppAssertionConfig {
            jwks_url: Some("https://id.example.com/.well-known/jwks.json".into()),
            issuer: "https://id.example.com".into(),
            audience: "custos-contacts".into(),
            ..AppAssertionConfig::default()
        }
    }

    #[test]
    fn the_section_is_checked_before_anything_is_fetched() {
        let good = config().verifier_config().unwrap();
        assert_eq!(good.max_age, Some(Duration::from_secs(300)));
        assert_eq!(good.clock_skew, Duration::from_secs(60));
        let wrong = [
            (
                AppAssertionConfig {
                    jwks_url: Some("http://id.example.com/jwks".into()),
                    ..config()
                },
                "jwks_url must use https",
            ),
            (
                AppAssertionConfig {
                    jwks_file: Some("/etc/custos/jwks.json".into()),
                    ..config()
                },
                "exactly one of jwks_url and jwks_file",
            ),
            (
                AppAssertionConfig {
                    jwks_url: None,
                    ..config()
                },
                "exactly one of jwks_url and jwks_file",
            ),
            (
                AppAssertionConfig {
                    issuer: String::new(),
                    ..config()
                },
                "issuer",
            ),
            (
                AppAssertionConfig {
                    clock_skew_seconds: 301,
                    ..config()
                },
                "clock skew",
            ),
            (
                AppAssertionConfig {
                    max_age_seconds: 0,
                    ..config()
                },
                "max_age_seconds",
            ),
            (
                AppAssertionConfig {
                    account_claim: " ".into(),
                    ..config()
                },
                "account_claim",
            ),
            (
                AppAssertionConfig {
                    algorithms: Vec::new(),
                    ..config()
                },
                "algorithm",
            ),
        ];
        for (config, words) in wrong {
            let e = config.verifier_config().unwrap_err();
            assert!(e.contains(words), "{e}");
            assert!(e.contains(SECTION), "{e}");
        }
        let loopback = AppAssertionConfig {
            jwks_url: Some("http://127.0.0.1:8080/jwks".into()),
            ..config()
        };
        assert!(loopback.verifier_config().is_ok());
    }

    #[test]
    fn an_assertion_is_used_once_while_it_could_pass() {
        let mut used = UsedAssertions::default();
        let (a, b) = ([1; 32], [2; 32]);
        assert!(used.first_use(a, 1_000, 900));
        assert!(!used.first_use(a, 1_000, 950));
        assert!(used.first_use(b, 1_200, 950));
        // Past its last second, a is forgotten (the verifier refuses it by then); b not.
        assert!(used.first_use(a, 1_300, 1_001));
        assert!(!used.first_use(b, 1_200, 1_001));
        assert_eq!(used.fingerprints.len(), 2);
        assert!(used.first_use([3; 32], 2_000, 1_500));
        assert_eq!(used.fingerprints.len(), 1, "a and b expired");
        assert_eq!(used.by_expiry.len(), 1);
    }
}

//! Signed JWTs (compact JWS) checked against a JSON Web Key Set: the customer app's
//! assertions on inbound contacts, and the shape an identity provider's access tokens
//! take too.
//!
//! A token passes [`Verifier::verify`] only if, in the order checked:
//!
//! 1. it is at most [`MAX_TOKEN_BYTES`] of base64url in three parts;
//! 2. its header's `alg` is one of the configured [`Algorithm`]s. Those are asymmetric
//!    only, so `none` and every HMAC algorithm are refused whatever the configuration:
//!    an HMAC keyed with the provider's *public* key (which anyone can fetch) would
//!    otherwise verify against it;
//! 3. its `kid` names a key of the set (without a `kid`, the set holds exactly one key
//!    for that algorithm), and that key's type — and its own `alg`, if the set pins one —
//!    fit the header's algorithm;
//! 4. the signature verifies with that key;
//! 5. `iss` and `aud` are the configured issuer and audience;
//! 6. `exp` is present and not past, `nbf` and `iat` (when present) not ahead of now, each
//!    within the clock skew; with a maximum age, `iat` is required and not older.
//!
//! Every refusal is a [`VerifyError`] with a stable [`VerifyError::code`], and none
//! carries a value of the token: claims may name a person.
//!
//! The key set comes from a URL or a file ([`KeySource`]). It is read at start, read again
//! when a token names a key the set lacks (so a provider's key rotation is followed) but
//! at most once per [`VerifierConfig::min_refetch_interval`] (so a flood of made-up key
//! ids cannot hammer the provider), and every [`VerifierConfig::refresh_every`]. A read
//! that fails keeps the last good set; with none at all, verification fails closed
//! ([`VerifyError::JwksUnavailable`]).

mod keys;
mod source;

use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use keys::{KeySet, Lookup};
pub use source::KeySource;

/// The longest token accepted, in bytes: far above any real assertion or access token,
/// and a bound on the work an anonymous string can cause.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The largest clock skew a verifier may be configured with.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(300);

/// The shortest [`VerifierConfig::min_refetch_interval`]: below it a stream of unknown
/// key ids would become a stream of requests to the provider.
pub const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(1);

/// An asymmetric JWS algorithm a verifier may accept. HMAC and `none` are not among
/// them, so no configuration can accept them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    Rs384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    Rs512,
    /// RSASSA-PSS with SHA-256.
    Ps256,
    /// RSASSA-PSS with SHA-384.
    Ps384,
    /// RSASSA-PSS with SHA-512.
    Ps512,
    /// ECDSA on P-256 with SHA-256.
    Es256,
    /// ECDSA on P-384 with SHA-384.
    Es384,
    /// Ed25519.
    EdDsa,
}

impl Algorithm {
    /// Every algorithm a verifier can accept.
    pub const ALL: [Algorithm; 9] = [
        Algorithm::Rs256,
        Algorithm::Rs384,
        Algorithm::Rs512,
        Algorithm::Ps256,
        Algorithm::Ps384,
        Algorithm::Ps512,
        Algorithm::Es256,
        Algorithm::Es384,
        Algorithm::EdDsa,
    ];

    /// The accepted algorithms when a configuration names none: the ones identity
    /// providers sign with by default.
    pub const DEFAULT: [Algorithm; 3] = [Algorithm::Rs256, Algorithm::Es256, Algorithm::EdDsa];

    /// The name a JWS header and a JWK write (`RS256`, `ES256`, `EdDSA`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Rs256 => "RS256",
            Algorithm::Rs384 => "RS384",
            Algorithm::Rs512 => "RS512",
            Algorithm::Ps256 => "PS256",
            Algorithm::Ps384 => "PS384",
            Algorithm::Ps512 => "PS512",
            Algorithm::Es256 => "ES256",
            Algorithm::Es384 => "ES384",
            Algorithm::EdDsa => "EdDSA",
        }
    }

    /// The algorithm of that name; `None` for `none`, HMAC and anything else.
    pub fn from_name(name: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.as_str() == name)
    }

    /// The same algorithm in `jsonwebtoken`'s terms.
    fn to_jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            Algorithm::Rs256 => jsonwebtoken::Algorithm::RS256,
            Algorithm::Rs384 => jsonwebtoken::Algorithm::RS384,
            Algorithm::Rs512 => jsonwebtoken::Algorithm::RS512,
            Algorithm::Ps256 => jsonwebtoken::Algorithm::PS256,
            Algorithm::Ps384 => jsonwebtoken::Algorithm::PS384,
            Algorithm::Ps512 => jsonwebtoken::Algorithm::PS512,
            Algorithm::Es256 => jsonwebtoken::Algorithm::ES256,
            Algorithm::Es384 => jsonwebtoken::Algorithm::ES384,
            Algorithm::EdDsa => jsonwebtoken::Algorithm::EdDSA,
        }
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for Algorithm {
    type Error = String;

    fn try_from(name: String) -> Result<Self, Self::Error> {
        Algorithm::from_name(&name).ok_or_else(|| {
            format!(
                "{name:?} is not an accepted algorithm (one of {}; never none or HMAC)",
                Algorithm::ALL.map(Algorithm::as_str).join(", ")
            )
        })
    }
}

impl From<Algorithm> for String {
    fn from(alg: Algorithm) -> String {
        alg.as_str().to_owned()
    }
}

/// What a [`Verifier`] accepts, and how it keeps its key set.
#[derive(Clone, Debug)]
pub struct VerifierConfig {
    /// Where the key set comes from.
    pub keys: KeySource,
    /// The one accepted `iss`.
    pub issuer: String,
    /// The one accepted `aud` (a token may name several; this must be among them).
    pub audience: String,
    /// The accepted algorithms (default [`Algorithm::DEFAULT`]).
    pub algorithms: Vec<Algorithm>,
    /// How far the issuer's clock and ours may disagree (default 60 s, at most
    /// [`MAX_CLOCK_SKEW`]).
    pub clock_skew: Duration,
    /// With a value, `iat` is required and a token older than this (plus the skew) is
    /// refused, whatever its `exp` says (default none).
    pub max_age: Option<Duration>,
    /// How often the key set is read again in any case (default 10 minutes).
    pub refresh_every: Duration,
    /// The least time between two reads of the key set that tokens cause, by naming a
    /// key the set lacks or arriving while there is none (default 30 s, at least
    /// [`MIN_REFETCH_INTERVAL`]).
    pub min_refetch_interval: Duration,
}

impl VerifierConfig {
    /// A configuration with the defaults for everything but the key source, the issuer
    /// and the audience.
    pub fn new(keys: KeySource, issuer: &str, audience: &str) -> VerifierConfig {
        VerifierConfig {
            keys,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            algorithms: Algorithm::DEFAULT.to_vec(),
            clock_skew: Duration::from_secs(60),
            max_age: None,
            refresh_every: Duration::from_secs(600),
            min_refetch_interval: Duration::from_secs(30),
        }
    }

    /// Refuses a configuration a verifier cannot keep its promises under.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.issuer.trim().is_empty() || self.audience.trim().is_empty() {
            return Err(ConfigError(
                "the issuer and the audience must not be empty".into(),
            ));
        }
        if self.algorithms.is_empty() {
            return Err(ConfigError(
                "at least one algorithm must be accepted".into(),
            ));
        }
        if self.clock_skew > MAX_CLOCK_SKEW {
            return Err(ConfigError(format!(
                "the clock skew must be at most {} seconds",
                MAX_CLOCK_SKEW.as_secs()
            )));
        }
        if self.max_age.is_some_and(|age| age.as_secs() == 0) {
            return Err(ConfigError(
                "the maximum age must be at least one second".into(),
            ));
        }
        if self.min_refetch_interval < MIN_REFETCH_INTERVAL
            || self.refresh_every < self.min_refetch_interval
        {
            return Err(ConfigError(format!(
                "the key set may be read again at most once a {:?}, and the periodic refresh must not be more frequent",
                MIN_REFETCH_INTERVAL
            )));
        }
        Ok(())
    }
}

/// A configuration a [`Verifier`] refuses; the message says which setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

/// Why a token was refused. Messages never carry a value of the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Not a compact JWS of at most [`MAX_TOKEN_BYTES`], or its header or claims are not
    /// the JSON they must be (a claim of the wrong type included).
    #[error("the token is not a well-formed signed JWT")]
    Malformed,
    /// The header's algorithm is `none`, HMAC, not configured, or does not fit the key
    /// its `kid` names.
    #[error("the token's signing algorithm is not accepted for its key")]
    AlgorithmRefused,
    /// No key of the set, even read again, is the one the token names.
    #[error("the token names no key of the issuer's key set")]
    UnknownKey,
    /// The signature does not verify with the key.
    #[error("the token's signature does not verify")]
    BadSignature,
    /// `exp` is past, beyond the clock skew.
    #[error("the token has expired")]
    Expired,
    /// `nbf` or `iat` is ahead of now, beyond the clock skew.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// `iat` is older than the maximum age.
    #[error("the token was issued longer ago than the accepted age")]
    TooOld,
    /// `iss` is not the configured issuer.
    #[error("the token is from another issuer")]
    WrongIssuer,
    /// `aud` does not name the configured audience.
    #[error("the token is for another audience")]
    WrongAudience,
    /// A claim the verifier or its caller requires is absent (the claim's name).
    #[error("the token lacks the {0} claim")]
    MissingClaim(String),
    /// No key set has been read yet, from the start on: nothing can be verified.
    #[error("the issuer's key set could not be read; nothing can be verified until it is")]
    JwksUnavailable,
}

impl VerifyError {
    /// Stable, machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            VerifyError::Malformed => "token_malformed",
            VerifyError::AlgorithmRefused => "token_algorithm_refused",
            VerifyError::UnknownKey => "token_unknown_key",
            VerifyError::BadSignature => "token_bad_signature",
            VerifyError::Expired => "token_expired",
            VerifyError::NotYetValid => "token_not_yet_valid",
            VerifyError::TooOld => "token_too_old",
            VerifyError::WrongIssuer => "token_wrong_issuer",
            VerifyError::WrongAudience => "token_wrong_audience",
            VerifyError::MissingClaim(_) => "token_missing_claim",
            VerifyError::JwksUnavailable => "jwks_unavailable",
        }
    }

    /// The refusal `jsonwebtoken` gave, in this crate's terms. Its own errors may quote
    /// the token's JSON, so only their kind is kept.
    fn from_jwt(e: &jsonwebtoken::errors::Error) -> VerifyError {
        use jsonwebtoken::errors::ErrorKind;
        match e.kind() {
            ErrorKind::InvalidSignature => VerifyError::BadSignature,
            ErrorKind::InvalidIssuer => VerifyError::WrongIssuer,
            ErrorKind::InvalidAudience => VerifyError::WrongAudience,
            ErrorKind::InvalidAlgorithm => VerifyError::AlgorithmRefused,
            ErrorKind::MissingRequiredClaim(claim) => VerifyError::MissingClaim(claim.clone()),
            // A key of the set that its algorithm cannot use: nothing shows the token
            // was signed by the issuer.
            ErrorKind::InvalidEcdsaKey
            | ErrorKind::InvalidEddsaKey
            | ErrorKind::InvalidRsaKey(_)
            | ErrorKind::InvalidKeyFormat => VerifyError::BadSignature,
            _ => VerifyError::Malformed,
        }
    }
}

/// A token that passed, with its claims.
#[derive(Debug, Clone)]
pub struct Verified<T> {
    /// The claims, as the caller's type.
    pub claims: T,
    /// The last second (unix time) at which this verifier would still accept the token:
    /// its `exp`, or `iat` plus the maximum age if sooner, plus the clock skew. What a
    /// caller remembering used tokens must remember them until.
    pub accepted_until: u64,
}

/// Checks tokens against one issuer's key set, which it keeps current.
pub struct Verifier {
    config: VerifierConfig,
    client: reqwest::Client,
    /// The last good key set; `None` until one has been read.
    keys: RwLock<Option<Arc<KeySet>>>,
    /// When the key set was last read or tried; held across a read, so that tokens
    /// arriving during it wait for it instead of starting their own.
    last_read: tokio::sync::Mutex<Option<Instant>>,
}

impl Verifier {
    /// Checks `config`, reads the key set once (a failure is logged, not returned: the
    /// verifier then refuses with [`VerifyError::JwksUnavailable`] until a read succeeds)
    /// and starts the periodic refresh, which ends when the verifier is dropped. Must be
    /// called within a Tokio runtime.
    pub async fn start(config: VerifierConfig) -> Result<Arc<Verifier>, ConfigError> {
        config.validate()?;
        // `jsonwebtoken` verifies through a process-wide provider. This build enables
        // aws-lc-rs alone, but a second backend enabled by another crate would leave none
        // chosen, and verification would panic: choose it explicitly. An error means one
        // is installed already.
        let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
        let client = source::client()?;
        let verifier = Arc::new(Verifier {
            config,
            client,
            keys: RwLock::new(None),
            last_read: tokio::sync::Mutex::new(None),
        });
        verifier.read_keys(true).await;
        tokio::spawn(refresh_periodically(Arc::downgrade(&verifier)));
        Ok(verifier)
    }

    /// Verifies `token` and returns its claims as `T`; see the crate's docs for what is
    /// checked, in which order.
    pub async fn verify<T: DeserializeOwned>(
        &self,
        token: &str,
    ) -> Result<Verified<T>, VerifyError> {
        let header = TokenHeader::parse(token)?;
        let alg = Algorithm::from_name(&header.alg)
            .filter(|alg| self.config.algorithms.contains(alg))
            .ok_or(VerifyError::AlgorithmRefused)?;
        let kid = header.kid.as_deref();
        let mut keys = self.key_set().await?;
        if matches!(keys.select(kid, alg), Lookup::Unknown) {
            // Perhaps the provider has rotated its keys since the set was read.
            self.read_keys(false).await;
            keys = self.current().ok_or(VerifyError::JwksUnavailable)?;
        }
        let key = match keys.select(kid, alg) {
            Lookup::Found(key) => key,
            Lookup::Unfit => return Err(VerifyError::AlgorithmRefused),
            Lookup::Unknown => return Err(VerifyError::UnknownKey),
        };
        let mut validation = jsonwebtoken::Validation::new(alg.to_jwt());
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.audience]);
        validation.set_required_spec_claims(&["iss", "aud"]);
        // The times are checked below, against one clock with one skew, `iat` included.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        let data = jsonwebtoken::decode::<serde_json::Value>(token, key.decoding(), &validation)
            .map_err(|e| VerifyError::from_jwt(&e))?;
        let rules = TimeRules {
            skew: self.config.clock_skew.as_secs(),
            max_age: self.config.max_age.map(|age| age.as_secs()),
        };
        let accepted_until = rules.check(&data.claims, unix_now())?;
        let claims = serde_json::from_value(data.claims).map_err(|_| VerifyError::Malformed)?;
        Ok(Verified {
            claims,
            accepted_until,
        })
    }

    /// The current key set; with none, one read (within the rate limit) first.
    async fn key_set(&self) -> Result<Arc<KeySet>, VerifyError> {
        if let Some(keys) = self.current() {
            return Ok(keys);
        }
        self.read_keys(false).await;
        self.current().ok_or(VerifyError::JwksUnavailable)
    }

    fn current(&self) -> Option<Arc<KeySet>> {
        self.keys.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Reads the key set and keeps it if it holds a usable key; a failure keeps the last
    /// good set. Unless `scheduled` (the start and the periodic refresh), nothing is read
    /// within `min_refetch_interval` of the last read.
    async fn read_keys(&self, scheduled: bool) {
        let mut last_read = self.last_read.lock().await;
        if !scheduled && last_read.is_some_and(|at| at.elapsed() < self.config.min_refetch_interval)
        {
            return;
        }
        *last_read = Some(Instant::now());
        let source = &self.config.keys;
        let read = source
            .read(&self.client)
            .await
            .and_then(|bytes| KeySet::parse(&bytes));
        match read {
            Ok(keys) => {
                tracing::info!(source = %source, keys = keys.len(), skipped = keys.skipped(), "key set read");
                *self.keys.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(keys));
            }
            Err(why) => {
                let kept = self.current().is_some();
                tracing::warn!(source = %source, %why, kept_last_good_set = kept, "key set could not be read");
            }
        }
    }
}

/// Reads the key set every `refresh_every` (every `min_refetch_interval` while there is
/// none), until the verifier is dropped.
async fn refresh_periodically(verifier: Weak<Verifier>) {
    loop {
        let wait = match verifier.upgrade() {
            Some(v) if v.current().is_some() => v.config.refresh_every,
            Some(v) => v.config.min_refetch_interval,
            None => return,
        };
        tokio::time::sleep(wait).await;
        let Some(v) = verifier.upgrade() else {
            return;
        };
        v.read_keys(true).await;
    }
}

/// The header fields the key is chosen by, read before anything is verified.
#[derive(Deserialize)]
struct TokenHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

impl TokenHeader {
    /// The header of a compact JWS. The signature may be empty here, so that an
    /// `alg: none` token is refused for its algorithm rather than its shape.
    fn parse(token: &str) -> Result<TokenHeader, VerifyError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(VerifyError::Malformed);
        }
        let base64url = |part: &str| {
            part.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(VerifyError::Malformed);
        };
        if header.is_empty()
            || payload.is_empty()
            || ![header, payload, signature].into_iter().all(base64url)
        {
            return Err(VerifyError::Malformed);
        }
        let json = URL_SAFE_NO_PAD
            .decode(header)
            .map_err(|_| VerifyError::Malformed)?;
        serde_json::from_slice(&json).map_err(|_| VerifyError::Malformed)
    }
}

/// The time claims' rules, in whole seconds.
struct TimeRules {
    skew: u64,
    max_age: Option<u64>,
}

impl TimeRules {
    /// Checks `exp` (required), `nbf`, `iat` (required with a maximum age) against
    /// `now`; the last second the token is accepted, if it passes.
    fn check(&self, claims: &serde_json::Value, now: u64) -> Result<u64, VerifyError> {
        let exp =
            numeric_date(claims, "exp")?.ok_or_else(|| VerifyError::MissingClaim("exp".into()))?;
        let nbf = numeric_date(claims, "nbf")?;
        let iat = numeric_date(claims, "iat")?;
        let latest_start = now.saturating_add(self.skew);
        if nbf.is_some_and(|nbf| nbf > latest_start) || iat.is_some_and(|iat| iat > latest_start) {
            return Err(VerifyError::NotYetValid);
        }
        let mut until = exp.saturating_add(self.skew);
        if now > until {
            return Err(VerifyError::Expired);
        }
        if let Some(max_age) = self.max_age {
            let iat = iat.ok_or_else(|| VerifyError::MissingClaim("iat".into()))?;
            let aged = iat.saturating_add(max_age).saturating_add(self.skew);
            if now > aged {
                return Err(VerifyError::TooOld);
            }
            until = until.min(aged);
        }
        Ok(until)
    }
}

/// The NumericDate claim `name` in whole seconds (a fraction is dropped); `None` when
/// absent, [`VerifyError::Malformed`] when it is not a non-negative number.
fn numeric_date(claims: &serde_json::Value, name: &str) -> Result<Option<u64>, VerifyError> {
    let Some(value) = claims.get(name) else {
        return Ok(None);
    };
    if let Some(seconds) = value.as_u64() {
        return Ok(Some(seconds));
    }
    match value.as_f64() {
        // Below 2^53 every whole second is exact; far beyond any date anyone means.
        Some(seconds) if seconds.is_finite() && (0.0..9.0e15).contains(&seconds) => {
            Ok(Some(seconds.trunc() as u64))
        }
        _ => Err(VerifyError::Malformed),
    }
}

/// Seconds since the Unix epoch (0 for a clock set before it, which then accepts
/// nothing that expires).
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: u64 = 1_800_000_000;

    fn rules(max_age: Option<u64>) -> TimeRules {
        TimeRules { skew: 60, max_age }
    }

    #[test]
    fn expiry_is_required_and_judged_within_the_skew() {
        let r = rules(None);
        assert_eq!(
            r.check(&json!({}), NOW),
            Err(VerifyError::MissingClaim("exp".into()))
        );
        assert_eq!(r.check(&json!({"exp": NOW - 60}), NOW), Ok(NOW));
        assert_eq!(
            r.check(&json!({"exp": NOW - 61}), NOW),
            Err(VerifyError::Expired)
        );
        assert_eq!(
            r.check(&json!({"exp": (NOW + 10) as f64 + 0.9}), NOW),
            Ok(NOW + 70)
        );
        for bad in [json!("soon"), json!(-1), json!(null), json!(1e300)] {
            assert_eq!(
                r.check(&json!({"exp": bad}), NOW),
                Err(VerifyError::Malformed),
                "{bad}"
            );
        }
        assert_eq!(r.check(&json!({"exp": u64::MAX}), NOW), Ok(u64::MAX));
    }

    #[test]
    fn not_before_and_issued_at_may_not_be_ahead_beyond_the_skew() {
        let r = rules(None);
        let exp = NOW + 600;
        assert!(
            r.check(&json!({"exp": exp, "nbf": NOW + 60, "iat": NOW + 60}), NOW)
                .is_ok()
        );
        assert_eq!(
            r.check(&json!({"exp": exp, "nbf": NOW + 61}), NOW),
            Err(VerifyError::NotYetValid)
        );
        assert_eq!(
            r.check(&json!({"exp": exp, "iat": NOW + 61}), NOW),
            Err(VerifyError::NotYetValid)
        );
        assert_eq!(
            r.check(&json!({"exp": exp, "iat": "now"}), NOW),
            Err(VerifyError::Malformed)
        );
    }

    #[test]
    fn a_maximum_age_requires_issued_at_and_shortens_acceptance() {
        let r = rules(Some(300));
        let exp = NOW + 3_600;
        assert_eq!(
            r.check(&json!({"exp": exp}), NOW),
            Err(VerifyError::MissingClaim("iat".into()))
        );
        assert_eq!(
            r.check(&json!({"exp": exp, "iat": NOW - 360}), NOW),
            Ok(NOW)
        );
        assert_eq!(
            r.check(&json!({"exp": exp, "iat": NOW - 361}), NOW),
            Err(VerifyError::TooOld)
        );
        assert_eq!(
            r.check(&json!({"exp": exp, "iat": NOW}), NOW),
            Ok(NOW + 360)
        );
        assert_eq!(
            r.check(&json!({"exp": NOW + 5, "iat": NOW}), NOW),
            Ok(NOW + 65)
        );
    }

    #[test]
    fn headers_are_read_before_anything_else_and_refuse_other_shapes() {
        let header = |json: &str| URL_SAFE_NO_PAD.encode(json);
        let good = format!("{}.e30.c2ln", header(r#"{"alg":"ES256","kid":"k1"}"#));
        let parsed = TokenHeader::parse(&good).unwrap();
        assert_eq!(
            (parsed.alg.as_str(), parsed.kid.as_deref()),
            ("ES256", Some("k1"))
        );
        let none = format!("{}.e30.", header(r#"{"alg":"none"}"#));
        assert_eq!(TokenHeader::parse(&none).unwrap().alg, "none");
        for bad in [
            String::new(),
            "a.b".to_owned(),
            "a.b.c.d".to_owned(),
            format!(".e30.{}", "c2ln"),
            format!("{}.e30.c2l+", header(r#"{"alg":"ES256"}"#)),
            format!("{}.e30.c2ln", header(r#"{"kid":"k1"}"#)),
            format!("{}.e30.c2ln", header(r#"{"alg":7}"#)),
            format!(
                "{}.e30.{}",
                header(r#"{"alg":"ES256"}"#),
                "A".repeat(MAX_TOKEN_BYTES)
            ),
        ] {
            assert!(TokenHeader::parse(&bad).is_err(), "{bad:.40}");
        }
    }

    #[test]
    fn configurations_are_bounded() {
        let source = KeySource::File("/nonexistent".into());
        let good = VerifierConfig::new(source, "https://id.example.com", "custos");
        assert_eq!(good.validate(), Ok(()));
        let mut c = good.clone();
        c.clock_skew = Duration::from_secs(301);
        assert!(c.validate().unwrap_err().to_string().contains("clock skew"));
        let mut c = good.clone();
        c.algorithms.clear();
        assert!(c.validate().is_err());
        let mut c = good.clone();
        c.audience = " ".into();
        assert!(c.validate().is_err());
        let mut c = good.clone();
        c.min_refetch_interval = Duration::from_millis(10);
        assert!(c.validate().is_err());
        let mut c = good;
        c.max_age = Some(Duration::ZERO);
        assert!(c.validate().is_err());
        assert!(serde_json::from_str::<Algorithm>(r#""HS256""#).is_err());
        assert!(serde_json::from_str::<Algorithm>(r#""none""#).is_err());
        assert_eq!(
            serde_json::from_str::<Algorithm>(r#""EdDSA""#).unwrap(),
            Algorithm::EdDsa
        );
    }
}

//! Access tokens the company's identity provider issues (section `[idp]`): a JWT sent as
//! `Authorization: Bearer …` in place of a local token, checked against the provider's
//! key set ([`custos_jwt`]: signature, issuer, audience, expiry, not-before, a bounded
//! clock skew; keys read again when the provider rotates them; `none` and HMAC refused).
//! A claim names the staff entry; optional claims must agree with its role and
//! organisation. The entry itself, its status and its grants stay Custos's: a token for
//! someone not provisioned, or suspended, gets nothing. Local tokens (`cst_…`) keep
//! working beside it, for integrations and set-ups without a provider.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use custos_jwt::{Algorithm, Verifier, VerifierConfig, VerifyError};
use custos_store::StaffRecord;
use serde::{Deserialize, Serialize};

use crate::app_assertion::key_source;
use crate::error::{Code, ErrorKind, ServiceError};

/// The configuration's path to this section, as its messages name it.
const SECTION: &str = "idp";

/// How the identity provider's access tokens are checked and mapped (section `[idp]`);
/// without it, only local tokens authenticate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdpConfig {
    /// The provider's JSON Web Key Set: `https://…`, or `http://…` to a loopback host.
    pub jwks_url: Option<String>,
    /// A file holding the key set instead of a URL (exactly one of the two).
    pub jwks_file: Option<PathBuf>,
    /// The one accepted `iss`.
    pub issuer: String,
    /// The one accepted `aud`: what the provider names the Custos API.
    pub audience: String,
    /// The claim holding the staff id (default `sub`).
    pub staff_claim: String,
    /// A claim that must equal the staff entry's role, if named.
    pub role_claim: Option<String>,
    /// A claim that must equal the staff entry's organisation, if named.
    pub org_claim: Option<String>,
    /// How far the provider's clock and ours may disagree (seconds; default 60, at most
    /// 300).
    pub clock_skew_seconds: u32,
    /// The accepted signing algorithms (default `["RS256", "ES256", "EdDSA"]`); never
    /// `none` or HMAC.
    pub algorithms: Vec<Algorithm>,
    /// The least time between two reads of the key set that tokens cause by naming a
    /// key it lacks (after the provider rotated its keys); seconds, default 30, 1 to
    /// 600. The set is also read again every 10 minutes.
    pub key_refetch_seconds: u32,
    /// Single sign-on to the web console with this provider (`[idp.console]`); without
    /// it, staff sign in to the console with a token.
    pub console: Option<ConsoleSsoConfig>,
}

impl Default for IdpConfig {
    fn default() -> Self {
        IdpConfig {
            jwks_url: None,
            jwks_file: None,
            issuer: String::new(),
            audience: String::new(),
            staff_claim: "sub".to_owned(),
            role_claim: None,
            org_claim: None,
            clock_skew_seconds: 60,
            algorithms: Algorithm::DEFAULT.to_vec(),
            key_refetch_seconds: 30,
            console: None,
        }
    }
}

impl IdpConfig {
    /// The verifier's configuration; an error names the setting that is wrong.
    pub fn verifier_config(&self) -> Result<VerifierConfig, String> {
        let keys = key_source(SECTION, self.jwks_url.as_deref(), self.jwks_file.as_ref())?;
        let claims = [
            Some(&self.staff_claim),
            self.role_claim.as_ref(),
            self.org_claim.as_ref(),
        ];
        if claims.into_iter().flatten().any(|c| c.trim().is_empty()) {
            return Err(format!(
                "{SECTION}: staff_claim, role_claim and org_claim must name claims"
            ));
        }
        let mut config = VerifierConfig::new(keys, &self.issuer, &self.audience);
        config.algorithms = self.algorithms.clone();
        config.clock_skew = Duration::from_secs(self.clock_skew_seconds.into());
        if !(1..=600).contains(&self.key_refetch_seconds) {
            return Err(format!(
                "{SECTION}.key_refetch_seconds must be from 1 to 600"
            ));
        }
        config.min_refetch_interval = Duration::from_secs(self.key_refetch_seconds.into());
        config.validate().map_err(|e| {
            format!("{SECTION} (issuer, audience, algorithms, clock_skew_seconds): {e}")
        })?;
        if let Some(console) = &self.console {
            console.validate(&self.issuer)?;
        }
        Ok(config)
    }
}

/// The provider's access tokens as configured, ready to check.
pub(crate) struct IdpTokens {
    verifier: Arc<Verifier>,
    staff_claim: String,
    role_claim: Option<String>,
    org_claim: Option<String>,
}

/// Who a verified access token names, and what it says of them.
pub(crate) struct Identity {
    /// The staff id.
    pub(crate) staff: String,
    role: Option<String>,
    org: Option<String>,
}

impl Identity {
    /// Who a console session opened by single sign-on speaks for: the staff id, and the
    /// role and organisation the staff entry must still have.
    pub(crate) fn new(staff: String, role: Option<String>, org: Option<String>) -> Identity {
        Identity { staff, role, org }
    }

    /// The staff id, role claim and organisation claim.
    pub(crate) fn into_parts(self) -> (String, Option<String>, Option<String>) {
        (self.staff, self.role, self.org)
    }

    /// Refuses a token whose role or organisation claim disagrees with the staff entry:
    /// the provider and Custos must agree on who someone is before Custos serves them.
    pub(crate) fn check(&self, staff: &StaffRecord) -> Result<(), ServiceError> {
        let role_differs = self
            .role
            .as_deref()
            .is_some_and(|r| r != staff.role.as_str());
        let org_differs = self.org.as_deref().is_some_and(|o| o != staff.org);
        if role_differs || org_differs {
            return Err(ServiceError::new(
                ErrorKind::Unauthenticated,
                Code::IdentityMismatch,
                "the role or organisation the identity provider vouched for differs from the staff entry's",
            ));
        }
        Ok(())
    }
}

/// The refusal of a token the verifier refused: 401 with its code, and 503 for a key
/// set never read (the provider is unreachable; nothing about the token is known).
fn refusal(e: &VerifyError) -> ServiceError {
    let kind = match e {
        VerifyError::JwksUnavailable => ErrorKind::Unavailable,
        _ => ErrorKind::Unauthenticated,
    };
    ServiceError::new(kind, Code::Part(e.code()), format!("access token: {e}"))
}

impl IdpTokens {
    /// Starts the verifier: it reads the key set now; a provider that cannot be reached
    /// is logged, not fatal (tokens are refused with `jwks_unavailable` until it answers).
    pub(crate) async fn start(config: &IdpConfig) -> Result<IdpTokens, String> {
        IdpTokens::start_for(config, &config.audience).await
    }

    /// [`IdpTokens::start`] for tokens of another `audience` from the same provider:
    /// the console's ID tokens, whose audience is its client id.
    pub(crate) async fn start_for(config: &IdpConfig, audience: &str) -> Result<IdpTokens, String> {
        let mut verifier_config = config.verifier_config()?;
        verifier_config.audience = audience.trim().to_owned();
        let verifier = Verifier::start(verifier_config)
            .await
            .map_err(|e| format!("{SECTION}: {e}"))?;
        let name = |c: &Option<String>| c.as_deref().map(|c| c.trim().to_owned());
        Ok(IdpTokens {
            verifier,
            staff_claim: config.staff_claim.trim().to_owned(),
            role_claim: name(&config.role_claim),
            org_claim: name(&config.org_claim),
        })
    }

    /// Verifies `token` and reads who it names. A claim the mapping needs must be a
    /// string (`token_missing_claim` otherwise).
    pub(crate) async fn identify(&self, token: &str) -> Result<Identity, ServiceError> {
        Ok(self.identify_claims(token).await?.0)
    }

    /// [`IdpTokens::identify`], with all the token's claims.
    pub(crate) async fn identify_claims(
        &self,
        token: &str,
    ) -> Result<(Identity, serde_json::Value), ServiceError> {
        let verified = self
            .verifier
            .verify::<serde_json::Value>(token)
            .await
            .map_err(|e| refusal(&e))?;
        let claim = |name: &str| -> Result<String, ServiceError> {
            verified
                .claims
                .get(name)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
                .ok_or_else(|| refusal(&VerifyError::MissingClaim(name.to_owned())))
        };
        let identity = Identity {
            staff: claim(&self.staff_claim)?,
            role: self.role_claim.as_deref().map(claim).transpose()?,
            org: self.org_claim.as_deref().map(claim).transpose()?,
        };
        Ok((identity, verified.claims))
    }
}

// ----- [idp.console]: its settings here, beside [idp]; what they do is `crate::oidc`'s -----

/// How the client authenticates at the token endpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// HTTP Basic with the client id and secret (RFC 6749 §2.3.1).
    #[default]
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
}

/// Single sign-on to the console (section `[idp.console]`, beside `[idp]`, whose issuer,
/// key set, algorithms, clock skew and claim mapping it uses).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleSsoConfig {
    /// The console's client id at the provider: the ID token's audience.
    pub client_id: String,
    /// A file holding the client secret (exactly one of this and `client_secret_env`).
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// The name of an environment variable holding the client secret.
    #[serde(default)]
    pub client_secret_env: Option<String>,
    /// Where the provider sends the browser back: the console's address followed by
    /// `/signin/oidc/callback`, exactly as registered at the provider (`https://`, or
    /// `http://` to a loopback host).
    pub redirect_url: String,
    /// The provider's name on the sign-in button ("Sign in with …").
    #[serde(default = "default_provider_name")]
    pub provider_name: String,
    /// The authorization endpoint; with `token_endpoint`, in place of discovery from
    /// `{issuer}/.well-known/openid-configuration`.
    #[serde(default)]
    pub authorization_endpoint: Option<String>,
    /// The token endpoint (with `authorization_endpoint`).
    #[serde(default)]
    pub token_endpoint: Option<String>,
    /// `client_secret_basic` (default) or `client_secret_post`.
    #[serde(default)]
    pub client_auth: ClientAuth,
    /// The scopes asked for (default `["openid"]`; `openid` must be among them).
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
}

pub(crate) fn default_provider_name() -> String {
    "your identity provider".to_owned()
}

pub(crate) fn default_scopes() -> Vec<String> {
    vec!["openid".to_owned()]
}

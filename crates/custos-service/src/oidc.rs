//! Single sign-on to the web console with the company's identity provider (section
//! `[idp.console]`): OpenID Connect's authorization code flow with PKCE (S256), `state`
//! and `nonce`. This module is the relying party's half that needs no browser: the
//! configuration, the provider's endpoints (discovery, or named in the configuration),
//! the authorization request, the code exchange at the token endpoint and the ID
//! token's check. The console (`custos-console/src/sso.rs`) owns the cookies and pages.
//!
//! The ID token is checked by the verifier of `[idp]` (`idp::IdpTokens`, `custos_jwt`):
//! signature against the provider's key set, `iss` the `[idp]` issuer, `aud` the
//! `client_id` (and `azp` the `client_id` when it names several), `exp`/`nbf`/`iat`
//! within `[idp]`'s clock skew; then the `nonce` of this sign-in, and `[idp]`'s claim
//! mapping names the staff entry. The entry, its role and its status stay Custos's.
//!
//! One sign-in is one random secret ([`Flow`]), which the console keeps in a short-lived
//! cookie; `state`, `nonce` and the PKCE `code_verifier` are each a SHA-256 of it under
//! its own label, so nothing of a sign-in is stored before it completes, and a `state`
//! that arrives with another browser's cookie (or none) matches nothing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::idp::{ClientAuth, ConsoleSsoConfig, IdpConfig, IdpTokens};

/// The configuration's path to this section, as its messages name it.
const SECTION: &str = "idp.console";

/// The console's route the provider sends the browser back to.
pub const CALLBACK_PATH: &str = "/signin/oidc/callback";

/// How long one request to the provider may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest answer read from the provider (discovery, token endpoint).
const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// The least time between two discovery attempts that sign-ins cause.
const DISCOVERY_RETRY: Duration = Duration::from_secs(5);

/// `raw` as a URL Custos may talk to (`https://`, or `http://` to a loopback host).
fn url(key: &str, raw: &str) -> Result<reqwest::Url, String> {
    custos_detector::webhook::https_or_loopback(&format!("{SECTION}.{key}"), raw)
}

fn printable(s: &str) -> bool {
    !s.trim().is_empty() && !s.chars().any(char::is_control)
}

impl ConsoleSsoConfig {
    /// Checks the section without reading the secret; an error names the setting.
    pub fn validate(&self, issuer: &str) -> Result<(), String> {
        if !printable(&self.client_id) || self.client_id.len() > 255 {
            return Err(format!(
                "{SECTION}.client_id must be 1 to 255 printable characters"
            ));
        }
        match (&self.client_secret_file, &self.client_secret_env) {
            (Some(_), None) => {}
            (None, Some(name))
                if !name.is_empty()
                    && !name.to_ascii_uppercase().starts_with("CUSTOS_")
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') => {}
            (None, Some(_)) => {
                return Err(format!(
                    "{SECTION}.client_secret_env must name an environment variable (letters, digits, _) not starting with CUSTOS_ (those are read as configuration)"
                ));
            }
            _ => {
                return Err(format!(
                    "{SECTION} needs exactly one of client_secret_file and client_secret_env (the secret itself is never written in the configuration)"
                ));
            }
        }
        let redirect = url("redirect_url", &self.redirect_url)?;
        if redirect.path() != CALLBACK_PATH
            || redirect.query().is_some()
            || redirect.fragment().is_some()
        {
            return Err(format!(
                "{SECTION}.redirect_url must be the console's address followed by {CALLBACK_PATH}, without query or fragment"
            ));
        }
        if !printable(&self.provider_name) || self.provider_name.chars().count() > 64 {
            return Err(format!(
                "{SECTION}.provider_name must be 1 to 64 printable characters"
            ));
        }
        match (&self.authorization_endpoint, &self.token_endpoint) {
            (Some(a), Some(t)) => {
                url("authorization_endpoint", a)?;
                url("token_endpoint", t)?;
            }
            (None, None) => {
                discovery_url(issuer)?;
            }
            _ => {
                return Err(format!(
                    "{SECTION}: give both authorization_endpoint and token_endpoint, or neither (discovery)"
                ));
            }
        }
        if !self.scopes.iter().any(|s| s == "openid")
            || self.scopes.iter().any(|s| {
                s.is_empty()
                    || !s
                        .bytes()
                        .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
            })
        {
            return Err(format!(
                "{SECTION}.scopes must include \"openid\", each a scope token without spaces"
            ));
        }
        Ok(())
    }

    /// The client secret, from its file or environment variable; an error names where
    /// it was looked for, never a value.
    fn read_secret(&self) -> Result<Zeroizing<String>, String> {
        let secret = match (&self.client_secret_file, &self.client_secret_env) {
            (Some(path), _) => std::fs::read_to_string(path).map_err(|e| {
                format!(
                    "{SECTION}.client_secret_file {} cannot be read ({})",
                    path.display(),
                    e.kind()
                )
            })?,
            (None, Some(name)) => std::env::var(name).map_err(|_| {
                format!("{SECTION}.client_secret_env: the environment variable {name} is not set")
            })?,
            (None, None) => String::new(),
        };
        let secret = Zeroizing::new(secret.trim().to_owned());
        if secret.is_empty() {
            return Err(format!("{SECTION}: the client secret is empty"));
        }
        Ok(secret)
    }
}

/// The discovery document's address for `issuer`.
fn discovery_url(issuer: &str) -> Result<reqwest::Url, String> {
    url(
        "discovery (the [idp] issuer)",
        &format!(
            "{}/.well-known/openid-configuration",
            issuer.trim().trim_end_matches('/')
        ),
    )
}

/// One sign-in's secret, kept by the browser in a short-lived cookie until the provider
/// sends it back; `state`, `nonce` and the PKCE verifier are derived from it.
#[derive(Clone)]
pub struct Flow {
    secret: Zeroizing<String>,
}

impl Flow {
    /// A fresh sign-in.
    pub fn new() -> Flow {
        Flow {
            secret: Zeroizing::new(URL_SAFE_NO_PAD.encode(custos_crypto::random_bytes::<32>())),
        }
    }

    /// The sign-in a cookie's value names, if it has the shape [`Flow::cookie_value`]
    /// gives.
    pub fn from_cookie(value: &str) -> Option<Flow> {
        (value.len() == 43
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        .then(|| Flow {
            secret: Zeroizing::new(value.to_owned()),
        })
    }

    /// What the browser keeps.
    pub fn cookie_value(&self) -> &str {
        &self.secret
    }

    fn derive(&self, label: &str) -> String {
        let mut h = Sha256::new();
        h.update(b"custos console sign-on\n");
        h.update(label.as_bytes());
        h.update(b"\n");
        h.update(self.secret.as_bytes());
        URL_SAFE_NO_PAD.encode(h.finalize())
    }

    /// The `state` the provider sends back.
    pub fn state(&self) -> String {
        self.derive("state")
    }

    /// The `nonce` the ID token must carry.
    pub fn nonce(&self) -> String {
        self.derive("nonce")
    }

    /// The PKCE `code_verifier` (43 characters of base64url, RFC 7636 §4.1).
    fn verifier(&self) -> Zeroizing<String> {
        Zeroizing::new(self.derive("code_verifier"))
    }

    /// Whether `state` from the provider's answer is this sign-in's (constant time).
    pub fn state_matches(&self, state: &str) -> bool {
        custos_crypto::constant_time_eq(self.state().as_bytes(), state.as_bytes())
    }
}

impl Default for Flow {
    fn default() -> Self {
        Flow::new()
    }
}

/// The PKCE S256 `code_challenge` of `verifier` (RFC 7636 §4.2).
pub fn code_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Who a completed sign-in names, as the provider vouched for them: to be checked
/// against the staff entry (it must exist, be active, and have this role and
/// organisation when the mapping names claims for them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignOn {
    /// The staff id.
    pub staff_id: String,
    /// The role claim, if `[idp] role_claim` names one.
    pub role: Option<String>,
    /// The organisation claim, if `[idp] org_claim` names one.
    pub org: Option<String>,
}

/// Why a sign-in failed. Messages never carry a value from the provider or the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SsoError {
    /// The provider's endpoints are not known: discovery failed.
    #[error("the identity provider cannot be reached right now")]
    Unavailable,
    /// The token endpoint refused the code or could not be reached.
    #[error("the identity provider did not exchange the sign-in code ({0})")]
    Exchange(&'static str),
    /// The ID token did not pass (the verifier's code).
    #[error("the identity provider's ID token was refused ({0})")]
    IdToken(&'static str),
}

impl SsoError {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            SsoError::Unavailable => "sso_unavailable",
            SsoError::Exchange(_) => "sso_exchange_failed",
            SsoError::IdToken(_) => "sso_id_token_refused",
        }
    }
}

/// The provider's endpoints.
#[derive(Clone, Debug)]
struct Endpoints {
    authorization: reqwest::Url,
    token: reqwest::Url,
}

/// The discovery document, as far as it is read.
#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    #[serde(default)]
    code_challenge_methods_supported: Option<Vec<String>>,
}

/// What discovery found, or when it last failed.
enum Known {
    Endpoints(Endpoints),
    Failed(Option<Instant>),
}

/// The console's single sign-on, as configured, ready to use.
pub struct ConsoleSso {
    id_tokens: IdpTokens,
    client_id: String,
    secret: Zeroizing<String>,
    client_auth: ClientAuth,
    redirect_url: reqwest::Url,
    scope: String,
    provider_name: String,
    issuer: String,
    known: tokio::sync::Mutex<Known>,
    http: reqwest::Client,
}

impl ConsoleSso {
    /// Reads the secret and starts the ID tokens' verifier (the key set is read now) and
    /// discovery; a provider that cannot be reached is logged, not fatal.
    pub(crate) async fn start(
        idp: &IdpConfig,
        config: &ConsoleSsoConfig,
    ) -> Result<Arc<ConsoleSso>, String> {
        config.validate(&idp.issuer)?;
        let secret = config.read_secret()?;
        let id_tokens = IdpTokens::start_for(idp, &config.client_id).await?;
        let known = match (&config.authorization_endpoint, &config.token_endpoint) {
            (Some(a), Some(t)) => Known::Endpoints(Endpoints {
                authorization: url("authorization_endpoint", a)?,
                token: url("token_endpoint", t)?,
            }),
            _ => Known::Failed(None),
        };
        let http = reqwest::Client::builder()
            .timeout(HTTP_TIMEOUT)
            // A redirect could lead from https to plain http elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|_| format!("{SECTION}: the HTTP client cannot be built"))?;
        let sso = Arc::new(ConsoleSso {
            id_tokens,
            client_id: config.client_id.trim().to_owned(),
            secret,
            client_auth: config.client_auth,
            redirect_url: url("redirect_url", &config.redirect_url)?,
            scope: config.scopes.join(" "),
            provider_name: config.provider_name.trim().to_owned(),
            issuer: idp.issuer.clone(),
            known: tokio::sync::Mutex::new(known),
            http,
        });
        if let Err(e) = sso.endpoints().await {
            tracing::warn!(error = %e, "console sign-on: the provider's discovery document could not be read; retried at the next sign-in");
        }
        Ok(sso)
    }

    /// The provider's name, for the sign-in button.
    pub fn provider_name(&self) -> &str {
        &self.provider_name
    }

    /// The issuer (an `iss` parameter on the callback must equal it, RFC 9207).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The endpoints: as configured, else from discovery (read again after a failure,
    /// at most every [`DISCOVERY_RETRY`]).
    async fn endpoints(&self) -> Result<Endpoints, SsoError> {
        let mut known = self.known.lock().await;
        match &*known {
            Known::Endpoints(e) => return Ok(e.clone()),
            Known::Failed(Some(at)) if at.elapsed() < DISCOVERY_RETRY => {
                return Err(SsoError::Unavailable);
            }
            Known::Failed(_) => {}
        }
        match self.discover().await {
            Ok(e) => {
                *known = Known::Endpoints(e.clone());
                Ok(e)
            }
            Err(why) => {
                tracing::warn!(why = %why, "console sign-on: discovery failed");
                *known = Known::Failed(Some(Instant::now()));
                Err(SsoError::Unavailable)
            }
        }
    }

    async fn discover(&self) -> Result<Endpoints, String> {
        let address = discovery_url(&self.issuer)?;
        let body = read_answer(
            self.http
                .get(address)
                .header(reqwest::header::ACCEPT, "application/json"),
        )
        .await?;
        if body.0 != 200 {
            return Err(format!("the provider answered {}", body.0));
        }
        let d: Discovery = serde_json::from_slice(&body.1)
            .map_err(|_| "the discovery document is not the JSON expected".to_owned())?;
        // OpenID Connect Discovery §4.3: the document is the issuer's own.
        if d.issuer != self.issuer {
            return Err("the discovery document names another issuer".to_owned());
        }
        if d.code_challenge_methods_supported
            .is_some_and(|m| !m.iter().any(|m| m == "S256"))
        {
            return Err("the provider does not support PKCE with S256".to_owned());
        }
        Ok(Endpoints {
            authorization: url(
                "authorization_endpoint (discovered)",
                &d.authorization_endpoint,
            )?,
            token: url("token_endpoint (discovered)", &d.token_endpoint)?,
        })
    }

    /// Where to send the browser to sign in with `flow`.
    pub async fn authorization_url(&self, flow: &Flow) -> Result<String, SsoError> {
        let mut address = self.endpoints().await?.authorization;
        address
            .query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", self.redirect_url.as_str())
            .append_pair("scope", &self.scope)
            .append_pair("state", &flow.state())
            .append_pair("nonce", &flow.nonce())
            .append_pair("code_challenge", &code_challenge(&flow.verifier()))
            .append_pair("code_challenge_method", "S256");
        Ok(address.into())
    }

    /// Exchanges `code` for the ID token of `flow` and checks it: who it names.
    pub async fn finish(&self, flow: &Flow, code: &str) -> Result<SignOn, SsoError> {
        if code.is_empty() || code.len() > 2048 {
            return Err(SsoError::Exchange("no code"));
        }
        let endpoint = self.endpoints().await?.token;
        let verifier = flow.verifier();
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.redirect_url.as_str()),
            ("code_verifier", verifier.as_str()),
        ];
        let mut request = self.http.post(endpoint);
        match self.client_auth {
            ClientAuth::ClientSecretBasic => {
                // RFC 6749 §2.3.1: each part form-encoded, then Basic.
                let pair = format!(
                    "{}:{}",
                    form_encode(&self.client_id),
                    form_encode(&self.secret)
                );
                let basic = Zeroizing::new(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair.as_bytes())
                ));
                request = request.header(reqwest::header::AUTHORIZATION, basic.as_str());
            }
            ClientAuth::ClientSecretPost => {
                form.push(("client_id", &self.client_id));
                form.push(("client_secret", &self.secret));
            }
        }
        let body = Zeroizing::new(
            form.iter()
                .map(|(k, v)| format!("{k}={}", form_encode(v)))
                .collect::<Vec<_>>()
                .join("&"),
        );
        let (status, answer) = read_answer(
            request
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .header(reqwest::header::ACCEPT, "application/json")
                .body(body.as_str().to_owned()),
        )
        .await
        .map_err(|why| {
            tracing::warn!(why = %why, "console sign-on: the token endpoint could not be reached");
            SsoError::Exchange("the token endpoint could not be reached")
        })?;
        #[derive(Deserialize)]
        struct TokenAnswer {
            id_token: Option<String>,
            error: Option<String>,
        }
        let answer = serde_json::from_slice::<TokenAnswer>(&answer).ok();
        if status != 200 {
            // The error code alone (RFC 6749 §5.2), when it is one of the standard ones.
            let code = match answer.and_then(|a| a.error).as_deref() {
                Some("invalid_grant") => "invalid_grant",
                Some("invalid_client") => "invalid_client",
                Some("invalid_request") => "invalid_request",
                Some("unauthorized_client") => "unauthorized_client",
                _ => "refused",
            };
            tracing::info!(
                status,
                code,
                "console sign-on: the token endpoint refused the code"
            );
            return Err(SsoError::Exchange(code));
        }
        let Some(answer) = answer else {
            return Err(SsoError::Exchange(
                "the token endpoint's answer is not JSON",
            ));
        };
        let Some(id_token) = answer.id_token else {
            return Err(SsoError::Exchange("no id_token in the answer"));
        };
        self.check_id_token(&id_token, &flow.nonce()).await
    }

    /// Checks an ID token with `[idp]`'s verifier (audience: the client id), its nonce
    /// and authorized party, and reads who it names with `[idp]`'s mapping.
    async fn check_id_token(&self, id_token: &str, nonce: &str) -> Result<SignOn, SsoError> {
        let (identity, claims) = self
            .id_tokens
            .identify_claims(id_token)
            .await
            .map_err(|e| SsoError::IdToken(e.code.as_str()))?;
        check_nonce_and_azp(&claims, nonce, &self.client_id)?;
        let (staff_id, role, org) = identity.into_parts();
        Ok(SignOn {
            staff_id,
            role,
            org,
        })
    }
}

/// OpenID Connect Core §3.1.3.7: the `nonce` is this sign-in's; an `azp`, required when
/// `aud` names several audiences, is the client.
fn check_nonce_and_azp(
    claims: &serde_json::Value,
    nonce: &str,
    client_id: &str,
) -> Result<(), SsoError> {
    let nonce_ok = claims
        .get("nonce")
        .and_then(|n| n.as_str())
        .is_some_and(|n| custos_crypto::constant_time_eq(n.as_bytes(), nonce.as_bytes()));
    if !nonce_ok {
        return Err(SsoError::IdToken("nonce_mismatch"));
    }
    let several = claims
        .get("aud")
        .and_then(|a| a.as_array())
        .is_some_and(|a| a.len() > 1);
    match claims.get("azp") {
        Some(azp) if azp.as_str() != Some(client_id) => Err(SsoError::IdToken("azp_mismatch")),
        None if several => Err(SsoError::IdToken("azp_missing")),
        _ => Ok(()),
    }
}

/// `value` form-encoded (every byte but letters and digits as `%XX`).
fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Sends `request` and reads the answer's status and at most [`MAX_ANSWER_BYTES`] of its
/// body; an error says what failed, never with the provider's text.
async fn read_answer(request: reqwest::RequestBuilder) -> Result<(u16, Vec<u8>), String> {
    let failure = |e: reqwest::Error| {
        if e.is_timeout() {
            "the request timed out".to_owned()
        } else if e.is_connect() {
            "the request could not connect".to_owned()
        } else {
            "the request failed".to_owned()
        }
    };
    let mut response = request.send().await.map_err(failure)?;
    let status = response.status().as_u16();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(failure)? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err("the answer is too large".to_owned());
        }
        body.extend_from_slice(&chunk);
    }
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::idp::{default_provider_name, default_scopes};

    fn config() -> ConsoleSsoConfig {
        ConsoleSsoConfig {
            client_id: "custos-console".into(),
            client_secret_file: None,
            client_secret_env: Some("TEST_OIDC_SECRET".into()),
            redirect_url: "https://custos.example.com/signin/oidc/callback".into(),
            provider_name: default_provider_name(),
            authorization_endpoint: None,
            token_endpoint: None,
            client_auth: ClientAuth::default(),
            scopes: default_scopes(),
        }
    }

    const ISSUER: &str = "https://login.example.com";

    #[test]
    fn the_pkce_challenge_is_rfc_7636_appendix_b() {
        // The verifier of Appendix B is these 32 octets in base64url.
        let octets: [u8; 32] = [
            116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186, 22, 212,
            37, 77, 105, 214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121,
        ];
        let verifier = URL_SAFE_NO_PAD.encode(octets);
        assert_eq!(verifier, "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        assert_eq!(
            code_challenge(&verifier),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn a_flow_derives_distinct_values_and_matches_only_its_own_state() {
        let flow = Flow::new();
        let (state, nonce, verifier) = (flow.state(), flow.nonce(), flow.verifier());
        assert_eq!(verifier.len(), 43, "RFC 7636: 43 to 128 characters");
        assert!(state != nonce && state != *verifier && nonce != *verifier);
        assert!(
            ![state.as_str(), nonce.as_str(), verifier.as_str()].contains(&flow.cookie_value()),
            "nothing sent to the provider is the cookie's secret"
        );
        assert!(flow.state_matches(&state));
        assert!(!flow.state_matches(&nonce));
        assert!(!flow.state_matches(""));
        assert!(
            !Flow::new().state_matches(&state),
            "another browser's sign-in"
        );
        // The cookie brings the same sign-in back; a malformed one none.
        let back = Flow::from_cookie(flow.cookie_value()).expect("well-formed");
        assert!(back.state_matches(&state));
        assert_eq!(back.nonce(), nonce);
        assert!(Flow::from_cookie("short").is_none());
        assert!(Flow::from_cookie(&format!("{}=", &flow.cookie_value()[..42])).is_none());
    }

    #[test]
    fn the_nonce_must_be_this_sign_ins_and_azp_the_client() {
        let ok = serde_json::json!({"nonce": "n1", "aud": "custos-console"});
        assert_eq!(check_nonce_and_azp(&ok, "n1", "custos-console"), Ok(()));
        assert_eq!(
            check_nonce_and_azp(&ok, "n2", "custos-console"),
            Err(SsoError::IdToken("nonce_mismatch"))
        );
        let none = serde_json::json!({"aud": "custos-console"});
        assert_eq!(
            check_nonce_and_azp(&none, "n1", "custos-console"),
            Err(SsoError::IdToken("nonce_mismatch"))
        );
        let several = serde_json::json!({"nonce": "n1", "aud": ["custos-console", "other"]});
        assert_eq!(
            check_nonce_and_azp(&several, "n1", "custos-console"),
            Err(SsoError::IdToken("azp_missing"))
        );
        let other_azp =
            serde_json::json!({"nonce": "n1", "aud": ["custos-console", "other"], "azp": "other"});
        assert_eq!(
            check_nonce_and_azp(&other_azp, "n1", "custos-console"),
            Err(SsoError::IdToken("azp_mismatch"))
        );
    }

    #[test]
    fn the_section_is_checked_with_messages_naming_the_setting() {
        assert_eq!(config().validate(ISSUER), Ok(()));
        let refused = |c: ConsoleSsoConfig, issuer: &str, needle: &str| {
            let e = c.validate(issuer).expect_err(needle);
            assert!(e.contains(needle), "{e} should name {needle}");
        };
        let mut c = config();
        c.client_secret_file = Some("/etc/custos/oidc.secret".into());
        refused(
            c,
            ISSUER,
            "exactly one of client_secret_file and client_secret_env",
        );
        let mut c = config();
        c.client_secret_env = None;
        refused(
            c,
            ISSUER,
            "exactly one of client_secret_file and client_secret_env",
        );
        let mut c = config();
        c.client_secret_env = Some("NOT A NAME".into());
        refused(c, ISSUER, "client_secret_env");
        let mut c = config();
        c.client_secret_env = Some("CUSTOS_OIDC_SECRET".into());
        refused(c, ISSUER, "not starting with CUSTOS_");
        let mut c = config();
        c.redirect_url = "http://custos.example.com/signin/oidc/callback".into();
        refused(c, ISSUER, "redirect_url must use https");
        let mut c = config();
        c.redirect_url = "https://custos.example.com/elsewhere".into();
        refused(c, ISSUER, "/signin/oidc/callback");
        let mut c = config();
        c.redirect_url = "http://127.0.0.1:8700/signin/oidc/callback".into();
        assert_eq!(c.validate(ISSUER), Ok(()), "loopback http is allowed");
        let mut c = config();
        c.client_id = " ".into();
        refused(c, ISSUER, "client_id");
        let mut c = config();
        c.scopes = vec!["profile".into()];
        refused(c, ISSUER, "openid");
        let mut c = config();
        c.token_endpoint = Some("https://login.example.com/token".into());
        refused(c, ISSUER, "both authorization_endpoint and token_endpoint");
        let mut c = config();
        c.authorization_endpoint = Some("https://login.example.com/auth".into());
        c.token_endpoint = Some("http://login.example.com/token".into());
        refused(c, ISSUER, "token_endpoint must use https");
        // Discovery reads the issuer's document: not over plain http to another host.
        refused(config(), "http://login.example.com", "discovery");
        assert_eq!(config().validate("http://127.0.0.1:9000"), Ok(()));
    }

    #[test]
    fn the_secret_comes_from_its_file_and_never_appears_in_messages() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "s3cret-value\n").unwrap();
        let mut c = config();
        c.client_secret_env = None;
        c.client_secret_file = Some(path.clone());
        assert_eq!(c.read_secret().unwrap().as_str(), "s3cret-value");
        std::fs::write(&path, "\n").unwrap();
        assert!(c.read_secret().unwrap_err().contains("empty"));
        c.client_secret_file = Some(dir.path().join("absent"));
        assert!(c.read_secret().unwrap_err().contains("cannot be read"));
        let mut c = config();
        c.client_secret_env = Some("TEST_OIDC_SECRET_SURELY_UNSET".into());
        assert!(c.read_secret().unwrap_err().contains("is not set"));
    }

    #[test]
    fn the_section_reads_from_toml_and_refuses_unknown_keys() {
        let c: ConsoleSsoConfig = toml_from(
            r#"
            client_id = "custos-console"
            client_secret_env = "OIDC_SECRET"
            redirect_url = "https://custos.example.com/signin/oidc/callback"
            client_auth = "client_secret_post"
            "#,
        )
        .unwrap();
        assert_eq!(c.client_auth, ClientAuth::ClientSecretPost);
        assert_eq!(c.scopes, ["openid"]);
        let e = toml_from(
            r#"
            client_id = "custos-console"
            client_secret = "inline"
            redirect_url = "https://custos.example.com/signin/oidc/callback"
            "#,
        )
        .unwrap_err();
        assert!(e.contains("client_secret"), "{e}");
    }

    fn toml_from(text: &str) -> Result<ConsoleSsoConfig, String> {
        use figment::providers::Format as _;
        figment::Figment::from(figment::providers::Toml::string(text))
            .extract()
            .map_err(|e| e.to_string())
    }

    #[test]
    fn form_encoding_leaves_only_letters_and_digits() {
        assert_eq!(form_encode("a b:c/d+é"), "a%20b%3Ac%2Fd%2B%C3%A9");
    }
}

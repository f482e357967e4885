//! Console sessions: a random id in an HttpOnly, SameSite=Strict cookie (Secure when
//! the console is served over TLS), the session itself in the store
//! (`custos_store::ConsoleSessions`), so that any gateway node serves any browser and a
//! restart signs no one out.
//!
//! * A session ends at sign-out, after `idle_minutes` without a request, after
//!   `max_hours` in all, and when the token it was opened with is revoked (the session
//!   keeps only the token's hash and every call is authenticated with it again). A
//!   session opened by single sign-on keeps the staff id instead (see `sso.rs`): every
//!   call loads that staff entry again.
//! * A single sign-on in progress has its own cookie (`custos_oidc`): SameSite=Lax, as
//!   the provider sends the browser back with a cross-site top-level GET, limited to
//!   `/signin/oidc` and ten minutes. The session cookie stays Strict.
//! * Every form that changes something carries the session's CSRF token, compared in
//!   constant time. The token is derived from the session id (a SHA-256 under its own
//!   label), so it is stored nowhere; the sign-in form, before any session, carries a
//!   one-time token bound to a short-lived cookie (double submit).
//! * Only the SHA-256 of a session id is stored, so the store holds nothing a browser
//!   could present.
//! * When a session was used is written at most every fifteenth of the idle limit (a
//!   minute for the default 15), so a busy browser does not cost a write per page; a
//!   session may therefore end up to that much early.
//!
//! A customer access link opens one session only: the links that opened one are stored
//! (their SHA-256, until they expire).

use std::time::Duration;

use axum::http::HeaderMap;
use axum::http::header::COOKIE;
use base64::Engine as _;
use custos_store::{ConsoleSession, ConsoleSessions, SessionSubject, StoreError};
use custos_types::Role;
use custos_types::clock::now_millis;

use custos_service::auth::SessionCredential;

/// The session cookie's name.
pub(super) const SESSION_COOKIE: &str = "custos_session";
/// The sign-in form's cookie (double-submit CSRF before a session exists).
pub(super) const SIGNIN_COOKIE: &str = "custos_signin";
/// The cookie of a single sign-on in progress (the flow's secret, `oidc::Flow`).
pub(super) const SSO_COOKIE: &str = "custos_oidc";
/// The path the single sign-on cookie is sent to: the start and the callback.
const SSO_PATH: &str = "/signin/oidc";
/// How long a single sign-on may take at the provider, in seconds.
pub(super) const SSO_SECONDS: u64 = 600;
/// Most sessions held at once: beyond it, the least recently used one is dropped.
const MAX_SESSIONS: i64 = 10_000;
/// Most used customer links remembered at once. Only genuine links get here (their
/// signature was checked), so the cap is against an issuer gone wild, not an attacker;
/// beyond it no new customer session opens until some expire (refusing is safe,
/// forgetting a used link would not be).
const MAX_USED_LINKS: i64 = 100_000;

/// One signed-in browser.
#[derive(Clone, Debug)]
pub(super) struct Session {
    /// Who the session speaks for.
    pub credential: SessionCredential,
    /// The token every form of this session must carry.
    pub csrf: String,
    /// For a staff session: id, role and org at sign-in (for the page frame; every
    /// decision uses the live staff entry).
    pub who: Who,
}

/// Who a session is, as shown on every page.
#[derive(Clone, Debug)]
pub(super) enum Who {
    /// A staff member.
    Staff {
        /// Staff id.
        id: String,
        /// Role.
        role: Role,
        /// Organisation.
        org: String,
    },
    /// A customer signed in with their access link.
    Customer {
        /// Their customer id.
        id: String,
        /// When their link (and so the session) ends, unix ms.
        until: i64,
    },
}

impl Session {
    /// The session a stored subject speaks for, with the CSRF token of session id `id`.
    fn of(subject: SessionSubject, id: &str) -> Session {
        let csrf = csrf_of(id);
        match subject {
            SessionSubject::Staff {
                token_hash,
                staff_id,
                role,
                org,
            } => Session {
                credential: SessionCredential::Staff { token_hash },
                csrf,
                who: Who::Staff {
                    id: staff_id,
                    role,
                    org,
                },
            },
            SessionSubject::SingleSignOn {
                staff_id,
                role,
                org,
            } => Session {
                credential: SessionCredential::SingleSignOn {
                    staff_id: staff_id.clone(),
                    role: Some(role.as_str().to_owned()),
                    org: Some(org.clone()),
                },
                csrf,
                who: Who::Staff {
                    id: staff_id,
                    role,
                    org,
                },
            },
            SessionSubject::Customer { customer_id, until } => Session {
                credential: SessionCredential::Customer {
                    customer_id: customer_id.clone(),
                },
                csrf,
                who: Who::Customer {
                    id: customer_id,
                    until,
                },
            },
        }
    }
}

/// The console's sessions, kept in the store.
pub(super) struct Sessions {
    rows: ConsoleSessions,
    idle: Duration,
    max_age: Duration,
    secure: bool,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Sessions {
    /// Sessions kept in `rows` that end after `idle` without use or `max_age` in all;
    /// `secure` adds the cookie's `Secure` attribute (the console is served over TLS).
    pub(super) fn new(
        rows: ConsoleSessions,
        idle: Duration,
        max_age: Duration,
        secure: bool,
    ) -> Sessions {
        Sessions {
            rows,
            idle,
            max_age,
            secure,
        }
    }

    /// Opens a session for `subject`; returns its `Set-Cookie` header value.
    pub(super) async fn open(&self, subject: SessionSubject) -> Result<String, StoreError> {
        let id = random_token();
        let now = now_millis();
        let session = ConsoleSession {
            key: key(&id),
            subject,
            created_at: now,
            last_seen: now,
        };
        self.rows
            .open(
                &session,
                now.saturating_sub(millis(self.idle)),
                now.saturating_sub(millis(self.max_age)),
                MAX_SESSIONS,
            )
            .await?;
        Ok(self.cookie(SESSION_COOKIE, &id, None))
    }

    /// The live session the request's cookie names, touched; `None` when there is none
    /// or it has ended.
    pub(super) async fn get(
        &self,
        headers: &HeaderMap,
    ) -> Result<Option<(String, Session)>, StoreError> {
        let Some(id) = cookie(headers, SESSION_COOKIE) else {
            return Ok(None);
        };
        let key = key(&id);
        let Some(stored) = self.rows.get(&key).await? else {
            return Ok(None);
        };
        let now = now_millis();
        if !self.alive(&stored, now) {
            self.rows.close(&key).await?;
            return Ok(None);
        }
        if now - stored.last_seen >= millis(self.idle / 15) {
            self.rows.touch(&key, now).await?;
        }
        Ok(Some((key, Session::of(stored.subject, &id))))
    }

    /// Marks the customer link `token`, valid until `expires_at` (unix ms), as used at
    /// `now`; false when it was used before (or too many links are in use, see
    /// [`MAX_USED_LINKS`]). Call only for a link whose signature was checked, with its
    /// one canonical spelling.
    pub(super) async fn claim_link(
        &self,
        token: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.rows
            .claim_link(&key(token), expires_at, now, MAX_USED_LINKS)
            .await
    }

    /// Keeps `evidence` with the session `key` (its last trace).
    pub(super) async fn set_evidence(
        &self,
        key: &str,
        evidence: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        self.rows.set_evidence(key, evidence).await
    }

    /// The evidence bundle of session `key`'s last trace, if any.
    pub(super) async fn evidence(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.rows.evidence(key).await
    }

    /// Ends the session the request's cookie names; returns the cookie that clears it.
    pub(super) async fn close(&self, headers: &HeaderMap) -> Result<String, StoreError> {
        if let Some(id) = cookie(headers, SESSION_COOKIE) {
            self.rows.close(&key(&id)).await?;
        }
        Ok(self.clear(SESSION_COOKIE))
    }

    /// A fresh sign-in form token and the cookie that binds it to the browser.
    pub(super) fn signin_token(&self) -> (String, String) {
        let token = random_token();
        let cookie = self.cookie(SIGNIN_COOKIE, &token, Some(600));
        (token, cookie)
    }

    /// Whether `form_token` matches the sign-in cookie of the request.
    pub(super) fn signin_token_ok(&self, headers: &HeaderMap, form_token: &str) -> bool {
        cookie(headers, SIGNIN_COOKIE)
            .is_some_and(|c| custos_crypto::constant_time_eq(c.as_bytes(), form_token.as_bytes()))
    }

    /// The `Set-Cookie` value that removes cookie `name`.
    pub(super) fn clear(&self, name: &str) -> String {
        self.cookie(name, "", Some(0))
    }

    /// The cookie that keeps a single sign-on's secret until the provider sends the
    /// browser back (`value` empty: the one that removes it).
    pub(super) fn sso_cookie(&self, value: &str) -> String {
        let age = if value.is_empty() { 0 } else { SSO_SECONDS };
        let mut c =
            format!("{SSO_COOKIE}={value}; Path={SSO_PATH}; HttpOnly; SameSite=Lax; Max-Age={age}");
        if self.secure {
            c.push_str("; Secure");
        }
        c
    }

    /// The value of the single sign-on cookie, if the request carries one.
    pub(super) fn sso_flow(&self, headers: &HeaderMap) -> Option<String> {
        cookie(headers, SSO_COOKIE)
    }

    /// Marks a single sign-on's `state` as used until `until` (unix ms); false when it
    /// was used before. With the used customer links, in the store: one use across
    /// every node.
    pub(super) async fn claim_sso_state(
        &self,
        state: &str,
        until: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.rows
            .claim_link(
                &key(&format!("oidc state\n{state}")),
                until,
                now,
                MAX_USED_LINKS,
            )
            .await
    }

    fn cookie(&self, name: &str, value: &str, max_age_secs: Option<u64>) -> String {
        let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
        if let Some(age) = max_age_secs {
            c.push_str(&format!("; Max-Age={age}"));
        }
        if self.secure {
            c.push_str("; Secure");
        }
        c
    }

    fn alive(&self, s: &ConsoleSession, now: i64) -> bool {
        let link_valid = match &s.subject {
            SessionSubject::Customer { until, .. } => now < *until,
            SessionSubject::Staff { .. } | SessionSubject::SingleSignOn { .. } => true,
        };
        link_valid
            && now - s.last_seen < millis(self.idle)
            && now - s.created_at < millis(self.max_age)
    }
}

/// Whether a form's CSRF token is the session's (constant time).
pub(super) fn csrf_ok(session: &Session, form_token: &str) -> bool {
    custos_crypto::constant_time_eq(session.csrf.as_bytes(), form_token.as_bytes())
}

fn key(id: &str) -> String {
    custos_crypto::sha256_hex(id.as_bytes())
}

/// The CSRF token of session id `id`: a hash under its own label, so it is neither the
/// stored key nor derivable from it.
fn csrf_of(id: &str) -> String {
    custos_crypto::sha256_hex(format!("custos console csrf\n{id}").as_bytes())
}

fn random_token() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(custos_crypto::random_bytes::<32>())
}

/// The value of cookie `name` in the request, if it is there once and well-formed.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    let mut found = None;
    for value in headers.get_all(COOKIE) {
        let Ok(value) = value.to_str() else { continue };
        for pair in value.split(';') {
            if let Some((k, v)) = pair.trim().split_once('=')
                && k == name
            {
                if found.is_some() {
                    // Two cookies of one name: one may be planted; trust neither.
                    return None;
                }
                found = Some(v.to_owned());
            }
        }
    }
    found.filter(|v| !v.is_empty() && v.len() <= 64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(cookie: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(COOKIE, HeaderValue::from_str(cookie).unwrap());
        h
    }

    fn staff() -> SessionSubject {
        SessionSubject::Staff {
            token_hash: "h".into(),
            staff_id: "a".into(),
            role: Role::Support,
            org: "acme".into(),
        }
    }

    fn value(set_cookie: &str) -> String {
        set_cookie
            .split(';')
            .next()
            .unwrap()
            .split_once('=')
            .unwrap()
            .1
            .to_owned()
    }

    /// Sessions in a fresh SQLite store (the directory lives as long as the returned
    /// guard).
    async fn sessions(idle: Duration, secure: bool) -> (Sessions, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = custos_store::Store::open_sqlite(&dir.path().join("custos.db"))
            .await
            .unwrap();
        let sessions = Sessions::new(
            store.console_sessions(),
            idle,
            Duration::from_secs(600),
            secure,
        );
        (sessions, dir)
    }

    #[tokio::test]
    async fn a_session_is_found_by_its_cookie_and_ends_at_sign_out() {
        let (sessions, _dir) = sessions(Duration::from_secs(60), false).await;
        let set = sessions.open(staff()).await.unwrap();
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"));
        assert!(!set.contains("Secure"));
        let h = headers(&format!("other=1; {SESSION_COOKIE}={}", value(&set)));
        let (key, s) = sessions.get(&h).await.unwrap().expect("session");
        assert!(matches!(s.who, Who::Staff { ref id, .. } if id == "a"));
        assert!(csrf_ok(&s, &s.csrf));
        assert!(!csrf_ok(&s, "forged"));
        // Neither the cookie's value nor the CSRF token is what the store keys it by.
        assert_ne!(key, value(&set));
        assert_ne!(key, s.csrf);
        sessions.set_evidence(&key, Some(b"{}")).await.unwrap();
        assert_eq!(
            sessions.evidence(&key).await.unwrap().as_deref(),
            Some(&b"{}"[..])
        );
        sessions.close(&h).await.unwrap();
        assert!(sessions.get(&h).await.unwrap().is_none());
        assert_eq!(sessions.evidence(&key).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_single_sign_on_session_speaks_for_its_staff_entry_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let store = custos_store::Store::open_sqlite(&dir.path().join("custos.db"))
            .await
            .unwrap();
        let sessions = Sessions::new(
            store.console_sessions(),
            Duration::from_secs(60),
            Duration::from_secs(600),
            true,
        );
        let set = sessions
            .open(SessionSubject::SingleSignOn {
                staff_id: "a".into(),
                role: Role::Support,
                org: "acme".into(),
            })
            .await
            .unwrap();
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Secure")
        );
        let h = headers(&format!("{SESSION_COOKIE}={}", value(&set)));
        let (_, s) = sessions.get(&h).await.unwrap().expect("session");
        match s.credential {
            SessionCredential::SingleSignOn {
                staff_id,
                role,
                org,
            } => {
                assert_eq!(staff_id, "a");
                assert_eq!(role.as_deref(), Some("support"));
                assert_eq!(org.as_deref(), Some("acme"));
            }
            other => panic!("not a single sign-on credential: {other:?}"),
        }
        assert!(matches!(s.who, Who::Staff { ref id, role: Role::Support, .. } if id == "a"));
        // Ending the person's credentials (what deprovisioning does) ends the session.
        assert!(sessions.get(&h).await.unwrap().is_some());
        store.end_credentials("a", 0).await.unwrap();
        assert!(sessions.get(&h).await.unwrap().is_none());
        // The flow's cookie: Lax (the provider's redirect is cross-site), only for the
        // sign-on's paths, short-lived; its state is used once.
        let flow = sessions.sso_cookie("v");
        assert!(flow.contains("SameSite=Lax") && flow.contains("Path=/signin/oidc"));
        assert!(flow.contains("HttpOnly") && flow.contains("Max-Age=600"));
        assert!(sessions.sso_cookie("").contains("Max-Age=0"));
        assert!(sessions.claim_sso_state("st", 1_000, 0).await.unwrap());
        assert!(!sessions.claim_sso_state("st", 1_000, 10).await.unwrap());
        assert!(sessions.claim_sso_state("other", 1_000, 10).await.unwrap());
    }

    #[tokio::test]
    async fn an_idle_session_ends_and_a_doubled_cookie_is_refused() {
        let (sessions, _dir) = sessions(Duration::ZERO, true).await;
        let set = sessions.open(staff()).await.unwrap();
        assert!(set.contains("Secure"));
        let h = headers(&format!("{SESSION_COOKIE}={}", value(&set)));
        assert!(
            sessions.get(&h).await.unwrap().is_none(),
            "idle timeout of zero"
        );
        let twice = headers(&format!("{SESSION_COOKIE}=a; {SESSION_COOKIE}=b"));
        assert_eq!(cookie(&twice, SESSION_COOKIE), None);
    }

    #[tokio::test]
    async fn a_link_is_claimed_once_and_forgotten_after_it_expires() {
        let (sessions, _dir) = sessions(Duration::from_secs(60), false).await;
        assert!(sessions.claim_link("cl1.a.100.t", 100, 0).await.unwrap());
        assert!(!sessions.claim_link("cl1.a.100.t", 100, 50).await.unwrap());
        assert!(sessions.claim_link("cl1.b.100.t", 100, 50).await.unwrap());
        // Past its expiry the entry goes (the link itself no longer opens anything).
        assert!(sessions.claim_link("cl1.a.100.t", 100, 100).await.unwrap());
    }

    #[tokio::test]
    async fn the_signin_token_must_match_its_cookie() {
        let (sessions, _dir) = sessions(Duration::from_secs(60), false).await;
        let (token, set) = sessions.signin_token();
        let h = headers(&format!("{SIGNIN_COOKIE}={}", value(&set)));
        assert!(sessions.signin_token_ok(&h, &token));
        assert!(!sessions.signin_token_ok(&h, "other"));
        assert!(!sessions.signin_token_ok(&HeaderMap::new(), &token));
    }
}

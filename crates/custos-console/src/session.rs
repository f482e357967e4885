//! Console sessions: a random id in an HttpOnly, SameSite=Strict cookie (Secure when
//! the console is served over TLS), the session itself in this node's memory.
//!
//! * A session ends at sign-out, after `idle_minutes` without a request, after
//!   `max_hours` in all, and when the token it was opened with is revoked (the session
//!   keeps only the token's hash and every call is authenticated with it again).
//! * Every form that changes something carries the session's CSRF token, compared in
//!   constant time; the sign-in form, before any session, carries a one-time token
//!   bound to a short-lived cookie (double submit).
//! * Only the SHA-256 of a session id is kept, so the map (or a memory dump) holds
//!   nothing a browser could present.
//!
//! Sessions live in one node's memory: behind a load balancer, pin a browser to a node
//! (the API itself needs no pinning).
//!
//! A customer access link opens one session only: the links that opened one are kept
//! (their SHA-256, until they expire) in the same memory, so like the sessions they are
//! forgotten when the node restarts.

use custos_types::Role;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use axum::http::header::COOKIE;
use base64::Engine as _;

use custos_service::auth::SessionCredential;

/// The session cookie's name.
pub(super) const SESSION_COOKIE: &str = "custos_session";
/// The sign-in form's cookie (double-submit CSRF before a session exists).
pub(super) const SIGNIN_COOKIE: &str = "custos_signin";
/// Most sessions held at once: beyond it, the oldest idle one is dropped.
const MAX_SESSIONS: usize = 10_000;
/// Most used customer links remembered at once. Only genuine links get here (their
/// signature was checked), so the cap is against an issuer gone wild, not an attacker;
/// beyond it no new customer session opens until some expire (refusing is safe,
/// forgetting a used link would not be).
const MAX_USED_LINKS: usize = 100_000;

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
    created: Instant,
    last_seen: Instant,
    /// The evidence bundle of the session's last leak trace, for download.
    pub evidence: Option<std::sync::Arc<Vec<u8>>>,
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

/// The sessions of this node.
pub(super) struct Sessions {
    map: Mutex<HashMap<String, Session>>,
    /// SHA-256 of the customer links that opened a session, with their expiry (unix ms).
    used_links: Mutex<HashMap<String, i64>>,
    idle: Duration,
    max_age: Duration,
    secure: bool,
}

impl Sessions {
    /// Sessions that end after `idle` without use or `max_age` in all; `secure` adds
    /// the cookie's `Secure` attribute (the console is served over TLS).
    pub(super) fn new(idle: Duration, max_age: Duration, secure: bool) -> Sessions {
        Sessions {
            map: Mutex::new(HashMap::new()),
            used_links: Mutex::new(HashMap::new()),
            idle,
            max_age,
            secure,
        }
    }

    /// Opens a session; returns its `Set-Cookie` header value.
    pub(super) fn open(&self, credential: SessionCredential, who: Who) -> String {
        let id = random_token();
        let now = Instant::now();
        let session = Session {
            credential,
            csrf: random_token(),
            who,
            created: now,
            last_seen: now,
            evidence: None,
        };
        let mut map = self.lock();
        self.expire(&mut map, now);
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.last_seen)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(key(&id), session);
        self.cookie(SESSION_COOKIE, &id, None)
    }

    /// The live session the request's cookie names, touched; `None` when there is none
    /// or it has ended.
    pub(super) fn get(&self, headers: &HeaderMap) -> Option<(String, Session)> {
        let id = cookie(headers, SESSION_COOKIE)?;
        let key = key(&id);
        let now = Instant::now();
        let mut map = self.lock();
        let alive = map.get(&key).is_some_and(|s| self.alive(s, now));
        if !alive {
            map.remove(&key);
            return None;
        }
        let session = map.get_mut(&key)?;
        session.last_seen = now;
        Some((key, session.clone()))
    }

    /// Marks the customer link `token`, valid until `expires_at` (unix ms), as used at
    /// `now`; false when it was used before (or too many links are in use, see
    /// [`MAX_USED_LINKS`]). Call only for a link whose signature was checked, with its
    /// one canonical spelling.
    pub(super) fn claim_link(&self, token: &str, expires_at: i64, now: i64) -> bool {
        let mut used = self.used_links.lock().unwrap_or_else(|e| e.into_inner());
        // An expired link is refused by its signature's time; no need to remember it.
        used.retain(|_, until| *until > now);
        if used.len() >= MAX_USED_LINKS {
            return false;
        }
        used.insert(key(token), expires_at).is_none()
    }

    /// Keeps `evidence` with the session `key` (its last trace).
    pub(super) fn set_evidence(&self, key: &str, evidence: Option<Vec<u8>>) {
        if let Some(s) = self.lock().get_mut(key) {
            s.evidence = evidence.map(std::sync::Arc::new);
        }
    }

    /// Ends the session the request's cookie names; returns the cookie that clears it.
    pub(super) fn close(&self, headers: &HeaderMap) -> String {
        if let Some(id) = cookie(headers, SESSION_COOKIE) {
            self.lock().remove(&key(&id));
        }
        self.clear(SESSION_COOKIE)
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

    fn alive(&self, s: &Session, now: Instant) -> bool {
        let link_valid = match &s.who {
            Who::Customer { until, .. } => custos_types::clock::now_millis() < *until,
            Who::Staff { .. } => true,
        };
        link_valid
            && now.duration_since(s.last_seen) < self.idle
            && now.duration_since(s.created) < self.max_age
    }

    fn expire(&self, map: &mut HashMap<String, Session>, now: Instant) {
        map.retain(|_, s| self.alive(s, now));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        // A panic while holding the lock leaves plain data behind: keep serving.
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Whether a form's CSRF token is the session's (constant time).
pub(super) fn csrf_ok(session: &Session, form_token: &str) -> bool {
    custos_crypto::constant_time_eq(session.csrf.as_bytes(), form_token.as_bytes())
}

fn key(id: &str) -> String {
    custos_crypto::sha256_hex(id.as_bytes())
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

    fn staff() -> (SessionCredential, Who) {
        (
            SessionCredential::Staff {
                token_hash: "h".into(),
            },
            Who::Staff {
                id: "a".into(),
                role: Role::Support,
                org: "acme".into(),
            },
        )
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

    #[test]
    fn a_session_is_found_by_its_cookie_and_ends_at_sign_out() {
        let sessions = Sessions::new(Duration::from_secs(60), Duration::from_secs(600), false);
        let (credential, who) = staff();
        let set = sessions.open(credential, who);
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"));
        assert!(!set.contains("Secure"));
        let h = headers(&format!("other=1; {SESSION_COOKIE}={}", value(&set)));
        let (_, s) = sessions.get(&h).expect("session");
        assert!(csrf_ok(&s, &s.csrf));
        assert!(!csrf_ok(&s, "forged"));
        sessions.close(&h);
        assert!(sessions.get(&h).is_none());
    }

    #[test]
    fn an_idle_session_ends_and_a_doubled_cookie_is_refused() {
        let sessions = Sessions::new(Duration::ZERO, Duration::from_secs(600), true);
        let (credential, who) = staff();
        let set = sessions.open(credential, who);
        assert!(set.contains("Secure"));
        let h = headers(&format!("{SESSION_COOKIE}={}", value(&set)));
        assert!(sessions.get(&h).is_none(), "idle timeout of zero");
        let twice = headers(&format!("{SESSION_COOKIE}=a; {SESSION_COOKIE}=b"));
        assert_eq!(cookie(&twice, SESSION_COOKIE), None);
    }

    #[test]
    fn a_link_is_claimed_once_and_forgotten_after_it_expires() {
        let sessions = Sessions::new(Duration::from_secs(60), Duration::from_secs(600), false);
        assert!(sessions.claim_link("cl1.a.100.t", 100, 0));
        assert!(!sessions.claim_link("cl1.a.100.t", 100, 50));
        assert!(sessions.claim_link("cl1.b.100.t", 100, 50));
        // Past its expiry the entry goes (the link itself no longer opens anything).
        assert!(sessions.claim_link("cl1.a.100.t", 100, 100));
    }

    #[test]
    fn the_signin_token_must_match_its_cookie() {
        let sessions = Sessions::new(Duration::from_secs(60), Duration::from_secs(600), false);
        let (token, set) = sessions.signin_token();
        let h = headers(&format!("{SIGNIN_COOKIE}={}", value(&set)));
        assert!(sessions.signin_token_ok(&h, &token));
        assert!(!sessions.signin_token_ok(&h, "other"));
        assert!(!sessions.signin_token_ok(&HeaderMap::new(), &token));
    }
}

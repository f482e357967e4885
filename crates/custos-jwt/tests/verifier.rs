//! The verifier against a real key set server on a loopback port, with keys made here:
//! Ed25519, ECDSA P-256 and RSA 2048, signed with aws-lc-rs as a provider would.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256,
    RsaKeyPair, RsaPublicKeyComponents,
};
use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use custos_jwt::{Algorithm, KeySource, Verified, Verifier, VerifierConfig, VerifyError};
use serde_json::{Value, json};

const ISSUER: &str = "https://id.example.com";
const AUDIENCE: &str = "custos-contacts";
/// The account the tokens name: no refusal may repeat it.
const SUBJECT: &str = "ACC-0012345678";

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Claims that pass: the right issuer and audience, issued now, valid five minutes.
fn claims() -> Value {
    let now = now();
    json!({"iss": ISSUER, "aud": AUDIENCE, "sub": SUBJECT, "iat": now, "exp": now + 300})
}

/// `claims()` with `changes` merged in (a null removes the claim).
fn claims_with(changes: Value) -> Value {
    let mut claims = claims();
    for (name, value) in changes.as_object().unwrap() {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(name);
        } else {
            claims[name] = value.clone();
        }
    }
    claims
}

enum Pair {
    Ed(Ed25519KeyPair),
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

/// A signing key of the test's "provider".
struct TestKey {
    kid: String,
    pair: Pair,
}

/// One key of each type the verifier accepts: Ed25519, P-256 and RSA.
fn every_key_type() -> [TestKey; 3] {
    [
        TestKey::ed25519("ed"),
        TestKey::es256("ec"),
        TestKey::rs256("rsa"),
    ]
}

impl TestKey {
    fn ed25519(kid: &str) -> TestKey {
        TestKey {
            kid: kid.into(),
            pair: Pair::Ed(Ed25519KeyPair::generate().unwrap()),
        }
    }

    fn es256(kid: &str) -> TestKey {
        TestKey {
            kid: kid.into(),
            pair: Pair::Ec(EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap()),
        }
    }

    fn rs256(kid: &str) -> TestKey {
        let pair = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        TestKey {
            kid: kid.into(),
            pair: Pair::Rsa(pair),
        }
    }

    fn alg(&self) -> &'static str {
        match self.pair {
            Pair::Ed(_) => "EdDSA",
            Pair::Ec(_) => "ES256",
            Pair::Rsa(_) => "RS256",
        }
    }

    /// The public key bytes an attacker could fetch and misuse as an HMAC secret.
    fn public_bytes(&self) -> Vec<u8> {
        match &self.pair {
            Pair::Ed(pair) => pair.public_key().as_ref().to_vec(),
            Pair::Ec(pair) => pair.public_key().as_ref().to_vec(),
            Pair::Rsa(pair) => RsaPublicKeyComponents::<Vec<u8>>::from(pair.public_key()).n,
        }
    }

    /// The key as its JWKS publishes it.
    fn jwk(&self) -> Value {
        match &self.pair {
            Pair::Ed(pair) => {
                json!({"kty": "OKP", "crv": "Ed25519", "use": "sig", "kid": self.kid, "x": b64(pair.public_key().as_ref())})
            }
            Pair::Ec(pair) => {
                let point = pair.public_key().as_ref();
                json!({"kty": "EC", "crv": "P-256", "alg": "ES256", "kid": self.kid, "x": b64(&point[1..33]), "y": b64(&point[33..])})
            }
            Pair::Rsa(pair) => {
                let public = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public_key());
                json!({"kty": "RSA", "alg": "RS256", "kid": self.kid, "n": b64(&public.n), "e": b64(&public.e)})
            }
        }
    }

    fn sign(&self, message: &[u8]) -> Vec<u8> {
        match &self.pair {
            Pair::Ed(pair) => pair.sign(message).as_ref().to_vec(),
            Pair::Ec(pair) => pair
                .sign(&SystemRandom::new(), message)
                .unwrap()
                .as_ref()
                .to_vec(),
            Pair::Rsa(pair) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(
                    &RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    message,
                    &mut signature,
                )
                .unwrap();
                signature
            }
        }
    }

    /// A token of `claims` with this key's algorithm and id in its header.
    fn mint(&self, claims: &Value) -> String {
        self.mint_with(
            &json!({"alg": self.alg(), "kid": self.kid, "typ": "JWT"}),
            claims,
        )
    }

    fn mint_with(&self, header: &Value, claims: &Value) -> String {
        self.mint_raw(header, claims.to_string().as_bytes())
    }

    fn mint_raw(&self, header: &Value, payload: &[u8]) -> String {
        let input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(payload));
        let signature = self.sign(input.as_bytes());
        format!("{input}.{}", b64(&signature))
    }
}

/// HS256 over `header.claims` keyed with `secret`.
fn hs256(header: &Value, claims: &Value, secret: &[u8]) -> String {
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", b64(tag.as_ref()))
}

/// What the provider's JWKS endpoint answers.
#[derive(Clone)]
struct Endpoint {
    answer: Arc<Mutex<(StatusCode, String)>>,
    hits: Arc<AtomicUsize>,
}

/// The "identity provider": its JWKS served over HTTP on a loopback port.
struct Provider {
    url: String,
    endpoint: Endpoint,
}

impl Provider {
    async fn start(keys: &[&TestKey]) -> Provider {
        let endpoint = Endpoint {
            answer: Arc::new(Mutex::new((StatusCode::OK, String::new()))),
            hits: Arc::new(AtomicUsize::new(0)),
        };
        async fn jwks(State(endpoint): State<Endpoint>) -> (StatusCode, String) {
            endpoint.hits.fetch_add(1, Ordering::SeqCst);
            endpoint.answer.lock().unwrap().clone()
        }
        let app = axum::Router::new()
            .route("/.well-known/jwks.json", axum::routing::get(jwks))
            .with_state(endpoint.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/.well-known/jwks.json",
            listener.local_addr().unwrap()
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        let provider = Provider { url, endpoint };
        provider.publish(keys);
        provider
    }

    fn publish(&self, keys: &[&TestKey]) {
        let set = json!({"keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>()});
        self.answer(StatusCode::OK, &set.to_string());
    }

    fn answer(&self, status: StatusCode, body: &str) {
        *self.endpoint.answer.lock().unwrap() = (status, body.to_owned());
    }

    fn hits(&self) -> usize {
        self.endpoint.hits.load(Ordering::SeqCst)
    }

    /// A verifier of this provider's tokens that reads its set again at most once a
    /// second.
    fn config(&self) -> VerifierConfig {
        let mut config =
            VerifierConfig::new(KeySource::Url(self.url.parse().unwrap()), ISSUER, AUDIENCE);
        config.min_refetch_interval = Duration::from_secs(1);
        config
    }

    async fn verifier(&self) -> Arc<Verifier> {
        Verifier::start(self.config()).await.unwrap()
    }
}

/// Waits out a verifier's `min_refetch_interval` of one second.
async fn past_the_refetch_interval() {
    tokio::time::sleep(Duration::from_millis(1_100)).await;
}

/// The refusal of `token`, after checking it repeats nothing of the token's claims.
async fn refusal(verifier: &Verifier, token: &str) -> VerifyError {
    let e = verifier
        .verify::<Value>(token)
        .await
        .err()
        .unwrap_or_else(|| panic!("accepted: {token}"));
    assert!(!format!("{e} {e:?}").contains(SUBJECT), "{e}");
    e
}

async fn subject(verifier: &Verifier, token: &str) -> String {
    let verified: Verified<Value> = verifier.verify(token).await.unwrap();
    verified.claims["sub"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn good_tokens_of_every_key_type_pass_with_their_claims() {
    let keys = every_key_type();
    let provider = Provider::start(&keys.iter().collect::<Vec<_>>()).await;
    let verifier = provider.verifier().await;
    for key in &keys {
        assert_eq!(
            subject(&verifier, &key.mint(&claims())).await,
            SUBJECT,
            "{}",
            key.alg()
        );
    }
    // The caller's own type of claims.
    #[derive(serde::Deserialize)]
    struct AppClaims {
        sub: String,
    }
    let claims = claims();
    let typed: Verified<AppClaims> = verifier.verify(&keys[0].mint(&claims)).await.unwrap();
    assert_eq!(typed.claims.sub, SUBJECT);
    assert_eq!(typed.accepted_until, claims["exp"].as_u64().unwrap() + 60);
    // A claim of another type than the caller's is refused as malformed.
    let numeric = keys[0].mint(&claims_with(json!({"sub": 12345})));
    let e = verifier.verify::<AppClaims>(&numeric).await.err().unwrap();
    assert_eq!(e.code(), "token_malformed");
    // Several audiences, ours among them.
    let several = keys[1].mint(&claims_with(json!({"aud": ["crm", AUDIENCE]})));
    assert_eq!(subject(&verifier, &several).await, SUBJECT);
    assert_eq!(provider.hits(), 1, "one read at start, none per token");
}

#[tokio::test]
async fn tokens_outside_their_time_are_refused() {
    let key = TestKey::ed25519("ed");
    let provider = Provider::start(&[&key]).await;
    let mut config = provider.config();
    config.max_age = Some(Duration::from_secs(300));
    let verifier = Verifier::start(config).await.unwrap();
    let now = now();
    let cases = [
        (json!({"exp": now - 120}), "token_expired"),
        (json!({"nbf": now + 600}), "token_not_yet_valid"),
        (json!({"iat": now + 600}), "token_not_yet_valid"),
        (json!({"exp": null}), "token_missing_claim"),
        (json!({"iat": null}), "token_missing_claim"),
        (
            json!({"iat": now - 1_000, "exp": now + 300}),
            "token_too_old",
        ),
        (json!({"exp": "tomorrow"}), "token_malformed"),
    ];
    for (changes, code) in cases {
        let e = refusal(&verifier, &key.mint(&claims_with(changes.clone()))).await;
        assert_eq!(e.code(), code, "{changes}");
    }
    // Within the default skew of a minute either way.
    let lenient = claims_with(json!({"exp": now - 30, "nbf": now + 30, "iat": now + 30}));
    assert_eq!(subject(&verifier, &key.mint(&lenient)).await, SUBJECT);
    // With a maximum age, acceptance ends at the sooner of exp and iat + age (+ skew).
    let long = claims_with(json!({"iat": now, "exp": now + 86_400}));
    let verified: Verified<Value> = verifier.verify(&key.mint(&long)).await.unwrap();
    assert_eq!(verified.accepted_until, now + 360);
}

#[tokio::test]
async fn tokens_for_another_audience_or_from_another_issuer_are_refused() {
    let key = TestKey::es256("ec");
    let provider = Provider::start(&[&key]).await;
    let verifier = provider.verifier().await;
    let cases = [
        (json!({"aud": "crm"}), "token_wrong_audience"),
        (json!({"aud": ["crm", "billing"]}), "token_wrong_audience"),
        (json!({"aud": null}), "token_missing_claim"),
        (
            json!({"iss": "https://id.example.org"}),
            "token_wrong_issuer",
        ),
        (json!({"iss": null}), "token_missing_claim"),
    ];
    for (changes, code) in cases {
        let e = refusal(&verifier, &key.mint(&claims_with(changes.clone()))).await;
        assert_eq!(e.code(), code, "{changes}");
    }
}

#[tokio::test]
async fn forged_and_altered_tokens_are_refused() {
    let keys = every_key_type();
    let provider = Provider::start(&keys.iter().collect::<Vec<_>>()).await;
    let verifier = provider.verifier().await;
    for key in &keys {
        // A key of the same type and id that the provider never published.
        let impostor = match key.alg() {
            "EdDSA" => TestKey::ed25519(&key.kid),
            "ES256" => TestKey::es256(&key.kid),
            _ => TestKey::rs256(&key.kid),
        };
        let e = refusal(&verifier, &impostor.mint(&claims())).await;
        assert_eq!(e, VerifyError::BadSignature, "{}", key.alg());
        // A genuine signature over other claims.
        let genuine = key.mint(&claims());
        let other = key.mint(&claims_with(json!({"sub": "ACC-0099999999"})));
        let (_, other_payload, _) = split(&other);
        let (header, _, signature) = split(&genuine);
        let spliced = format!("{header}.{other_payload}.{signature}");
        assert_eq!(
            refusal(&verifier, &spliced).await,
            VerifyError::BadSignature
        );
    }
    // A payload that is no JSON, validly signed.
    let header = json!({"alg": "EdDSA", "kid": "ed"});
    let e = refusal(&verifier, &keys[0].mint_raw(&header, b"not json")).await;
    assert_eq!(e, VerifyError::Malformed);
    for shape in [
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "eyJ.eyJ.???",
        &"A".repeat(10_000),
    ] {
        assert_eq!(
            refusal(&verifier, shape).await,
            VerifyError::Malformed,
            "{shape:.20}"
        );
    }
}

fn split(token: &str) -> (&str, &str, &str) {
    let mut parts = token.split('.');
    (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    )
}

#[tokio::test]
async fn alg_none_and_hmac_keyed_with_the_public_key_are_refused() {
    let ed = TestKey::ed25519("ed");
    let rsa = TestKey::rs256("rsa");
    let provider = Provider::start(&[&ed, &rsa]).await;
    // A provider that also lists a shared secret (it should not): still no HMAC.
    let mut published = json!({"keys": [ed.jwk(), rsa.jwk()]});
    published["keys"]
        .as_array_mut()
        .unwrap()
        .push(json!({"kty": "oct", "kid": "shared", "k": b64(b"a shared secret")}));
    provider.answer(StatusCode::OK, &published.to_string());
    let verifier = provider.verifier().await;
    let claims = claims();
    let payload = b64(claims.to_string().as_bytes());
    for alg in ["none", "None", "NONE"] {
        let header = b64(json!({"alg": alg, "kid": "ed"}).to_string().as_bytes());
        let e = refusal(&verifier, &format!("{header}.{payload}.")).await;
        assert_eq!(e, VerifyError::AlgorithmRefused, "{alg}");
    }
    let ed_jwk = ed.jwk().to_string();
    let secrets: [(&str, &[u8]); 5] = [
        ("ed", &ed.public_bytes()),
        ("ed", ed_jwk.as_bytes()),
        ("rsa", &rsa.public_bytes()),
        ("shared", b"a shared secret"),
        ("ed", b""),
    ];
    for (kid, secret) in secrets {
        for alg in ["HS256", "HS384", "HS512"] {
            let token = hs256(&json!({"alg": alg, "kid": kid}), &claims, secret);
            let e = refusal(&verifier, &token).await;
            assert_eq!(e, VerifyError::AlgorithmRefused, "{alg} keyed as {kid}");
        }
    }
    // An algorithm that does not fit the key its kid names.
    let token = ed.mint_with(&json!({"alg": "RS256", "kid": "ed"}), &claims);
    assert_eq!(
        refusal(&verifier, &token).await,
        VerifyError::AlgorithmRefused
    );
    let token = rsa.mint_with(&json!({"alg": "RS256", "kid": "ed"}), &claims);
    assert_eq!(
        refusal(&verifier, &token).await,
        VerifyError::AlgorithmRefused
    );
    // A fitting key, but an algorithm the configuration does not accept.
    let mut config = provider.config();
    config.algorithms = vec![Algorithm::EdDsa];
    let strict = Verifier::start(config).await.unwrap();
    assert_eq!(
        refusal(&strict, &rsa.mint(&claims)).await,
        VerifyError::AlgorithmRefused
    );
    assert_eq!(subject(&strict, &ed.mint(&claims)).await, SUBJECT);
}

#[tokio::test]
async fn an_unknown_kid_reads_the_set_again_and_follows_a_rotation() {
    let old = TestKey::ed25519("2026-11");
    let new = TestKey::es256("2026-12");
    let provider = Provider::start(&[&old]).await;
    let verifier = provider.verifier().await;
    assert_eq!(provider.hits(), 1);
    assert_eq!(subject(&verifier, &old.mint(&claims())).await, SUBJECT);
    // The provider rotates: tokens with the new kid arrive.
    provider.publish(&[&new]);
    past_the_refetch_interval().await;
    assert_eq!(subject(&verifier, &new.mint(&claims())).await, SUBJECT);
    assert_eq!(provider.hits(), 2);
    // The old key is gone from the set now; its kid is unknown, and the set was read
    // too recently to be read again for it.
    let e = refusal(&verifier, &old.mint(&claims())).await;
    assert_eq!(e, VerifyError::UnknownKey);
    assert_eq!(provider.hits(), 2);
}

#[tokio::test]
async fn a_flood_of_unknown_kids_reads_the_set_at_most_once_per_interval() {
    let key = TestKey::ed25519("ed");
    let provider = Provider::start(&[&key]).await;
    // The default interval: 30 s.
    let mut config = provider.config();
    config.min_refetch_interval = Duration::from_secs(30);
    let verifier = Verifier::start(config).await.unwrap();
    let tokens: Vec<String> = (0..50)
        .map(|i| TestKey::ed25519(&format!("bogus-{i}")).mint(&claims()))
        .collect();
    let refusals = refusals_of(&verifier, &tokens).await;
    assert!(refusals.iter().all(|e| *e == VerifyError::UnknownKey));
    assert_eq!(provider.hits(), 1, "only the read at start");
    assert_eq!(subject(&verifier, &key.mint(&claims())).await, SUBJECT);
}

/// The refusals of `tokens`, verified concurrently.
async fn refusals_of(verifier: &Arc<Verifier>, tokens: &[String]) -> Vec<VerifyError> {
    let mut tasks = tokio::task::JoinSet::new();
    for token in tokens {
        let (verifier, token) = (verifier.clone(), token.clone());
        tasks.spawn(async move { verifier.verify::<Value>(&token).await.err() });
    }
    let mut refusals = Vec::new();
    while let Some(result) = tasks.join_next().await {
        refusals.push(result.unwrap().expect("refused"));
    }
    refusals
}

#[tokio::test]
async fn a_failed_read_keeps_the_last_good_set() {
    let key = TestKey::rs256("rsa");
    let provider = Provider::start(&[&key]).await;
    let verifier = provider.verifier().await;
    let unknown = TestKey::ed25519("next").mint(&claims());
    let only_secret = json!({"keys": [{"kty": "oct", "kid": "next", "k": "c2VjcmV0"}]});
    let failures = [
        (StatusCode::INTERNAL_SERVER_ERROR, "{}".to_owned()),
        (StatusCode::OK, "<html>maintenance</html>".to_owned()),
        (StatusCode::OK, only_secret.to_string()),
        (StatusCode::OK, json!({"keys": []}).to_string()),
    ];
    for (round, (status, body)) in failures.into_iter().enumerate() {
        provider.answer(status, &body);
        past_the_refetch_interval().await;
        // The unknown kid makes the verifier read again; the read fails.
        assert_eq!(refusal(&verifier, &unknown).await, VerifyError::UnknownKey);
        assert_eq!(provider.hits(), round + 2, "{body}");
        assert_eq!(
            subject(&verifier, &key.mint(&claims())).await,
            SUBJECT,
            "{body}"
        );
    }
}

#[tokio::test]
async fn without_a_key_set_verification_fails_closed_until_a_read_succeeds() {
    let key = TestKey::ed25519("ed");
    let provider = Provider::start(&[]).await;
    provider.answer(StatusCode::SERVICE_UNAVAILABLE, "");
    // The verifier starts all the same.
    let verifier = provider.verifier().await;
    let token = key.mint(&claims());
    assert_eq!(
        refusal(&verifier, &token).await,
        VerifyError::JwksUnavailable
    );
    assert_eq!(VerifyError::JwksUnavailable.code(), "jwks_unavailable");
    provider.publish(&[&key]);
    // Within the interval nothing is read again; after it, the token's arrival reads.
    assert_eq!(
        refusal(&verifier, &token).await,
        VerifyError::JwksUnavailable
    );
    past_the_refetch_interval().await;
    assert_eq!(subject(&verifier, &token).await, SUBJECT);
    // A listener that is gone: the same refusal, never a hang or a panic.
    let mut config = VerifierConfig::new(
        KeySource::Url("http://127.0.0.1:9/jwks".parse().unwrap()),
        ISSUER,
        AUDIENCE,
    );
    config.min_refetch_interval = Duration::from_secs(1);
    let closed = Verifier::start(config).await.unwrap();
    assert_eq!(refusal(&closed, &token).await, VerifyError::JwksUnavailable);
}

#[tokio::test]
async fn the_set_is_read_again_periodically() {
    let old = TestKey::ed25519("old");
    let new = TestKey::ed25519("new");
    let provider = Provider::start(&[&old]).await;
    let mut config = provider.config();
    config.refresh_every = Duration::from_secs(1);
    let verifier = Verifier::start(config).await.unwrap();
    provider.publish(&[&new]);
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    // No token asked for it: the refresh read the set again by itself.
    assert!(provider.hits() >= 3, "{} reads", provider.hits());
    assert_eq!(subject(&verifier, &new.mint(&claims())).await, SUBJECT);
    // The withdrawn key no longer verifies anything.
    assert_eq!(
        refusal(&verifier, &old.mint(&claims())).await,
        VerifyError::UnknownKey
    );
    // Once the verifier is dropped, its refresh stops.
    drop(verifier);
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let after = provider.hits();
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert_eq!(provider.hits(), after);
}

#[tokio::test]
async fn a_key_set_from_a_file() {
    let key = TestKey::es256("file-1");
    let rotated = TestKey::ed25519("file-2");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, json!({"keys": [key.jwk()]}).to_string()).unwrap();
    let mut config = VerifierConfig::new(KeySource::File(path.clone()), ISSUER, AUDIENCE);
    config.min_refetch_interval = Duration::from_secs(1);
    let verifier = Verifier::start(config).await.unwrap();
    assert_eq!(subject(&verifier, &key.mint(&claims())).await, SUBJECT);
    std::fs::write(&path, json!({"keys": [rotated.jwk()]}).to_string()).unwrap();
    past_the_refetch_interval().await;
    assert_eq!(subject(&verifier, &rotated.mint(&claims())).await, SUBJECT);
    // A missing file keeps the set read before.
    std::fs::remove_file(&path).unwrap();
    past_the_refetch_interval().await;
    let unknown = TestKey::ed25519("file-3").mint(&claims());
    assert_eq!(refusal(&verifier, &unknown).await, VerifyError::UnknownKey);
    assert_eq!(subject(&verifier, &rotated.mint(&claims())).await, SUBJECT);
}

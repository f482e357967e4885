//! Access tokens of the company's identity provider on the API (`[idp]`): a JWT checked
//! against the provider's key set, mapped to a staff entry by its claims, beside the
//! local tokens. The provider here is the tests' own: an Ed25519 key and its key set
//! served over HTTP on a loopback port.

mod common;

use common::*;
use serde_json::{Value, json};

const IDP_ISSUER: &str = "https://idp.example.com";
const IDP_AUDIENCE: &str = "custos-api";

fn idp_config(issuer: &TokenIssuer) -> String {
    format!(
        "[idp]\njwks_url = \"{}\"\nissuer = \"{IDP_ISSUER}\"\naudience = \"{IDP_AUDIENCE}\"\nstaff_claim = \"sub\"\nrole_claim = \"custos_role\"\norg_claim = \"custos_org\"\nkey_refetch_seconds = 1\n",
        issuer.jwks_url
    )
}

/// Claims for alice as the provider knows her, with `changes` merged in.
fn alice(issuer: &TokenIssuer, changes: Value) -> Value {
    let claims = issuer.claims(
        "alice",
        json!({"custos_role": "support", "custos_org": "custos"}),
    );
    merged(claims, &changes)
}

/// The error code of a refused answer.
fn code(a: &Answer) -> (u16, String) {
    (
        a.status,
        a.body["error"]["code"].as_str().unwrap_or("").to_owned(),
    )
}

#[tokio::test]
async fn provider_tokens_authenticate_provisioned_staff_and_every_bad_token_is_refused() {
    for backend in Backend::all() {
        let mut issuer = TokenIssuer::start(IDP_ISSUER, IDP_AUDIENCE);
        let server = Server::start_with(
            backend,
            Options {
                config_toml: Some(idp_config(&issuer)),
                ..Options::default()
            },
        )
        .await;
        let local = server.staff("alice", "support", "custos").await;
        let c = server.client();

        let token = issuer.mint(&alice(&issuer, json!({})));
        let r = c.get(&token, "/v1/me").await;
        assert_served_as(&r, "alice");
        // The local token keeps working beside it.
        let r = c.get(&local, "/v1/me").await;
        assert_served_as(&r, "alice");

        let now = unix_now();
        let impostor = ed25519_dalek::SigningKey::from_bytes(&rand::random::<[u8; 32]>());
        let header = json!({"alg": "EdDSA", "kid": issuer.kid});
        let unsigned = format!(
            "{}.{}.",
            b64url(
                json!({"alg": "none", "kid": issuer.kid})
                    .to_string()
                    .as_bytes()
            ),
            b64url(alice(&issuer, json!({})).to_string().as_bytes())
        );
        let refused = [
            (
                issuer.mint(&alice(&issuer, json!({"iat": now - 900, "exp": now - 600}))),
                "token_expired",
            ),
            (
                issuer.mint(&alice(&issuer, json!({"nbf": now + 900}))),
                "token_not_yet_valid",
            ),
            (
                issuer.mint(&alice(&issuer, json!({"aud": "another-service"}))),
                "token_wrong_audience",
            ),
            (
                issuer.mint(&alice(&issuer, json!({"iss": "https://idp.example.org"}))),
                "token_wrong_issuer",
            ),
            (
                sign_jwt(&impostor, &header, &alice(&issuer, json!({}))),
                "token_bad_signature",
            ),
            (unsigned, "token_algorithm_refused"),
            (
                issuer.mint(&alice(&issuer, json!({"custos_role": "admin"}))),
                "identity_mismatch",
            ),
            (
                issuer.mint(&alice(&issuer, json!({"custos_org": "huaxin-bpo"}))),
                "identity_mismatch",
            ),
            (
                issuer.mint(&alice(&issuer, json!({"custos_org": null}))),
                "token_missing_claim",
            ),
            // Someone the provider knows and Custos was never given.
            (
                issuer.mint(&alice(&issuer, json!({"sub": "mallory"}))),
                "unauthenticated",
            ),
            ("not.a.token".to_owned(), "token_malformed"),
        ];
        for (token, expected) in &refused {
            let r = c.get(token, "/v1/me").await;
            assert_eq!(
                code(&r),
                (401, (*expected).to_owned()),
                "{backend:?}: {}",
                r.body
            );
            // No claim value comes back in a refusal.
            assert!(
                !r.text.contains("mallory") && !r.text.contains("huaxin"),
                "{}",
                r.text
            );
        }

        // The provider rotates its key: tokens of the new key are taken (the key set is
        // read again), and the old key's are refused once the set no longer lists it.
        let old = issuer.mint(&alice(&issuer, json!({})));
        issuer.rotate();
        let fresh = issuer.mint(&alice(&issuer, json!({})));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let r = c.get(&fresh, "/v1/me").await;
            if r.status == 200 {
                break;
            }
            assert_eq!(
                code(&r),
                (401, "token_unknown_key".to_owned()),
                "{}",
                r.body
            );
            assert!(
                std::time::Instant::now() < deadline,
                "the rotated key was not taken"
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        let r = c.get(&old, "/v1/me").await;
        assert_eq!(
            code(&r),
            (401, "token_unknown_key".to_owned()),
            "{}",
            r.body
        );

        // Suspended in Custos: the provider's token gets what the local token gets.
        let r = c.post_empty(&server.admin, "/v1/staff/alice/suspend").await;
        assert_eq!(r.status, 200, "{}", r.body);
        let by_local = c.get(&local, "/v1/me").await;
        let by_idp = c
            .get(&issuer.mint(&alice(&issuer, json!({}))), "/v1/me")
            .await;
        assert_eq!(by_idp.status, by_local.status, "{}", by_idp.body);
        assert_eq!(
            (code(&by_idp), &by_idp.body["error"]["policy"]),
            ((403, "forbidden".to_owned()), &json!("suspended")),
            "{}",
            by_idp.body
        );
    }
}

#[tokio::test]
async fn a_bad_idp_section_is_refused_at_start() {
    for (section, says) in [
        (
            "[idp]\njwks_url = \"http://idp.example.com/jwks\"\nissuer = \"i\"\naudience = \"a\"\n",
            "idp.jwks_url",
        ),
        (
            "[idp]\njwks_url = \"https://idp.example.com/jwks\"\nissuer = \"i\"\naudience = \"a\"\nalgorithms = [\"HS256\"]\n",
            "HS256",
        ),
        (
            "[idp]\njwks_url = \"https://idp.example.com/jwks\"\nissuer = \"i\"\naudience = \"\"\n",
            "idp",
        ),
        // The console's single sign-on: never a secret inline, one that must be found.
        (
            "[idp]\njwks_url = \"https://idp.example.com/jwks\"\nissuer = \"https://idp.example.com\"\naudience = \"a\"\n[idp.console]\nclient_id = \"c\"\nclient_secret = \"inline\"\nredirect_url = \"https://custos.example.com/signin/oidc/callback\"\n",
            "client_secret",
        ),
        (
            "[idp]\njwks_url = \"https://idp.example.com/jwks\"\nissuer = \"https://idp.example.com\"\naudience = \"a\"\n[idp.console]\nclient_id = \"c\"\nclient_secret_env = \"OIDC_SECRET_NOT_SET_IN_THIS_TEST\"\nredirect_url = \"https://custos.example.com/signin/oidc/callback\"\n",
            "the environment variable OIDC_SECRET_NOT_SET_IN_THIS_TEST is not set",
        ),
    ] {
        let said = refused_start(section);
        assert!(said.contains(says), "{section}: {said}");
    }
}

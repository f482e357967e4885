//! A JSON Web Key Set as the verifier holds it: only the public signing keys it can
//! verify with. A set is read whole, key by key; a key it cannot use (a symmetric `oct`
//! key above all, an encryption key, an unknown curve, a weak RSA modulus) is left out and
//! counted, so that one odd key does not cost the others.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::DecodingKey;
use serde::Deserialize;

use crate::Algorithm;

/// The RSA moduli accepted, in bytes: 2048 to 8192 bits, as the verification itself
/// requires.
const RSA_MODULUS_BYTES: std::ops::RangeInclusive<usize> = 256..=1024;

/// What a key can verify, by its type and curve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeyType {
    Rsa,
    P256,
    P384,
    Ed25519,
}

impl KeyType {
    /// The key type an algorithm verifies with.
    fn of(alg: Algorithm) -> KeyType {
        match alg {
            Algorithm::Rs256
            | Algorithm::Rs384
            | Algorithm::Rs512
            | Algorithm::Ps256
            | Algorithm::Ps384
            | Algorithm::Ps512 => KeyType::Rsa,
            Algorithm::Es256 => KeyType::P256,
            Algorithm::Es384 => KeyType::P384,
            Algorithm::EdDsa => KeyType::Ed25519,
        }
    }
}

/// One usable key of the set.
pub(crate) struct Key {
    kid: Option<String>,
    key_type: KeyType,
    /// The one algorithm the set allows the key for (its `alg`), if it names one.
    pinned: Option<Algorithm>,
    decoding: DecodingKey,
}

impl Key {
    /// Whether a token signed with `alg` may be verified with this key.
    fn fits(&self, alg: Algorithm) -> bool {
        self.key_type == KeyType::of(alg) && self.pinned.is_none_or(|pinned| pinned == alg)
    }

    /// The key as `jsonwebtoken` verifies with it.
    pub(crate) fn decoding(&self) -> &DecodingKey {
        &self.decoding
    }
}

/// The key a token names, as far as the set knows.
pub(crate) enum Lookup<'a> {
    /// The key to verify with.
    Found(&'a Key),
    /// The key exists but is not for the token's algorithm.
    Unfit,
    /// No key by that id (or, without one, not exactly one key for the algorithm).
    Unknown,
}

/// The usable keys of one read of the key set.
pub(crate) struct KeySet {
    keys: Vec<Key>,
    skipped: usize,
}

/// A JWK as published, every member optional until its type says what it needs.
#[derive(Deserialize)]
struct Published {
    kty: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default, rename = "use")]
    usage: Option<String>,
    #[serde(default)]
    alg: Option<String>,
    #[serde(default)]
    crv: Option<String>,
    #[serde(default)]
    x: Option<String>,
    #[serde(default)]
    y: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
}

/// The length of a base64url value once decoded; `None` if it is not base64url.
fn decoded_len(value: &str) -> Option<usize> {
    URL_SAFE_NO_PAD.decode(value).ok().map(|bytes| bytes.len())
}

impl Key {
    /// The key `published` describes, if it is a public signing key this crate verifies
    /// with.
    fn from_published(published: Published) -> Option<Key> {
        if published
            .usage
            .as_deref()
            .is_some_and(|usage| usage != "sig")
        {
            return None;
        }
        // A key pinned to an algorithm outside this crate's (HMAC, an encryption
        // algorithm) is not for verifying our tokens.
        let pinned = match published.alg.as_deref() {
            Some(name) => Some(Algorithm::from_name(name)?),
            None => None,
        };
        let (key_type, decoding) = match (published.kty.as_str(), published.crv.as_deref()) {
            ("RSA", _) => {
                let (n, e) = (published.n?, published.e?);
                let modulus = URL_SAFE_NO_PAD.decode(&n).ok()?;
                let significant = modulus.iter().skip_while(|b| **b == 0).count();
                if !RSA_MODULUS_BYTES.contains(&significant) {
                    return None;
                }
                (KeyType::Rsa, DecodingKey::from_rsa_components(&n, &e).ok()?)
            }
            ("EC", Some(curve @ ("P-256" | "P-384"))) => {
                let (key_type, coordinate) = if curve == "P-256" {
                    (KeyType::P256, 32)
                } else {
                    (KeyType::P384, 48)
                };
                let (x, y) = (published.x?, published.y?);
                if decoded_len(&x)? != coordinate || decoded_len(&y)? != coordinate {
                    return None;
                }
                (key_type, DecodingKey::from_ec_components(&x, &y).ok()?)
            }
            ("OKP", Some("Ed25519")) => {
                let x = published.x?;
                if decoded_len(&x)? != 32 {
                    return None;
                }
                (KeyType::Ed25519, DecodingKey::from_ed_components(&x).ok()?)
            }
            // `oct` (a shared secret: never a key to verify a provider's signature with),
            // other curves and types.
            _ => return None,
        };
        let key = Key {
            kid: published.kid,
            key_type,
            pinned,
            decoding,
        };
        // A key pinned to an algorithm of another type is a broken entry.
        key.pinned.is_none_or(|alg| key.fits(alg)).then_some(key)
    }
}

impl KeySet {
    /// The usable keys of a JWKS document; an error, naming no key material, if it is
    /// not one or holds no usable key (a set to keep the last good one over).
    pub(crate) fn parse(document: &[u8]) -> Result<KeySet, String> {
        #[derive(Deserialize)]
        struct Document {
            keys: Vec<serde_json::Value>,
        }
        let document: Document = serde_json::from_slice(document)
            .map_err(|_| "the document is not a JSON Web Key Set".to_owned())?;
        let listed = document.keys.len();
        let keys: Vec<Key> = document
            .keys
            .into_iter()
            .filter_map(|key| {
                serde_json::from_value(key)
                    .ok()
                    .and_then(Key::from_published)
            })
            .collect();
        if keys.is_empty() {
            return Err(format!(
                "none of the set's {listed} keys is a public signing key of an accepted type"
            ));
        }
        Ok(KeySet {
            skipped: listed - keys.len(),
            keys,
        })
    }

    /// How many keys the set holds that can verify.
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    /// How many keys of the document were left out.
    pub(crate) fn skipped(&self) -> usize {
        self.skipped
    }

    /// The key a token signed with `alg` names by `kid`; without a `kid`, the one key
    /// for `alg`, if the set holds exactly one.
    pub(crate) fn select(&self, kid: Option<&str>, alg: Algorithm) -> Lookup<'_> {
        match kid {
            Some(kid) => {
                let mut named = self
                    .keys
                    .iter()
                    .filter(|key| key.kid.as_deref() == Some(kid))
                    .peekable();
                if named.peek().is_none() {
                    return Lookup::Unknown;
                }
                named
                    .find(|key| key.fits(alg))
                    .map_or(Lookup::Unfit, Lookup::Found)
            }
            None => {
                let mut fitting = self.keys.iter().filter(|key| key.fits(alg));
                match (fitting.next(), fitting.next()) {
                    (Some(key), None) => Lookup::Found(key),
                    _ => Lookup::Unknown,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn ed(kid: &str) -> serde_json::Value {
        json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": b64(&[7; 32])})
    }

    fn found(set: &KeySet, kid: Option<&str>, alg: Algorithm) -> bool {
        matches!(set.select(kid, alg), Lookup::Found(_))
    }

    #[test]
    fn only_public_signing_keys_of_accepted_types_are_kept() {
        let document = json!({"keys": [
            ed("ed"),
            {"kty": "oct", "kid": "shared", "k": b64(b"a shared secret")},
            {"kty": "OKP", "crv": "Ed25519", "kid": "enc", "use": "enc", "x": b64(&[7; 32])},
            {"kty": "OKP", "crv": "Ed25519", "kid": "hmac", "alg": "HS256", "x": b64(&[7; 32])},
            {"kty": "OKP", "crv": "Ed25519", "kid": "mismatch", "alg": "ES256", "x": b64(&[7; 32])},
            {"kty": "OKP", "crv": "Ed448", "kid": "ed448", "x": b64(&[7; 57])},
            {"kty": "OKP", "crv": "Ed25519", "kid": "short", "x": b64(&[7; 31])},
            {"kty": "EC", "crv": "P-521", "kid": "p521", "x": b64(&[1; 66]), "y": b64(&[1; 66])},
            {"kty": "EC", "crv": "P-256", "kid": "p256", "alg": "ES256", "x": b64(&[1; 32]), "y": b64(&[2; 32])},
            {"kty": "RSA", "kid": "rsa1024", "n": b64(&[0xc1; 128]), "e": "AQAB"},
            {"kty": "RSA", "kid": "rsa2048", "n": b64(&[0xc1; 256]), "e": "AQAB"},
            {"kty": "RSA", "kid": "no-e", "n": b64(&[0xc1; 256])},
            "not a key",
        ]});
        let set = KeySet::parse(document.to_string().as_bytes()).unwrap();
        assert_eq!((set.len(), set.skipped()), (3, 10));
        assert!(found(&set, Some("ed"), Algorithm::EdDsa));
        assert!(found(&set, Some("p256"), Algorithm::Es256));
        assert!(found(&set, Some("rsa2048"), Algorithm::Ps256));
        for kid in [
            "shared", "enc", "hmac", "mismatch", "ed448", "short", "p521", "rsa1024",
        ] {
            assert!(
                matches!(set.select(Some(kid), Algorithm::EdDsa), Lookup::Unknown),
                "{kid}"
            );
        }
    }

    #[test]
    fn a_key_serves_only_its_own_type_and_pinned_algorithm() {
        let document = json!({"keys": [ed("ed"),
            {"kty": "EC", "crv": "P-256", "kid": "p256", "alg": "ES256", "x": b64(&[1; 32]), "y": b64(&[2; 32])},
            {"kty": "RSA", "kid": "rs", "alg": "RS256", "n": b64(&[0xc1; 256]), "e": "AQAB"}]});
        let set = KeySet::parse(document.to_string().as_bytes()).unwrap();
        assert!(matches!(
            set.select(Some("ed"), Algorithm::Es256),
            Lookup::Unfit
        ));
        assert!(matches!(
            set.select(Some("p256"), Algorithm::Es384),
            Lookup::Unfit
        ));
        assert!(matches!(
            set.select(Some("rs"), Algorithm::Ps256),
            Lookup::Unfit
        ));
        assert!(found(&set, Some("rs"), Algorithm::Rs256));
        assert!(matches!(
            set.select(Some("other"), Algorithm::EdDsa),
            Lookup::Unknown
        ));
        // Without a kid: the one key for the algorithm, or none.
        assert!(found(&set, None, Algorithm::EdDsa));
        assert!(matches!(
            set.select(None, Algorithm::Es384),
            Lookup::Unknown
        ));
        let two = json!({"keys": [ed("a"), ed("b")]});
        let set = KeySet::parse(two.to_string().as_bytes()).unwrap();
        assert!(matches!(
            set.select(None, Algorithm::EdDsa),
            Lookup::Unknown
        ));
    }

    #[test]
    fn a_set_without_a_usable_key_is_refused() {
        for document in [
            "[]".to_owned(),
            "<html>".to_owned(),
            json!({"keys": []}).to_string(),
            json!({"keys": [{"kty": "oct", "k": b64(b"secret")}]}).to_string(),
        ] {
            let e = KeySet::parse(document.as_bytes()).err().unwrap();
            assert!(!e.contains("secret"), "{e}");
        }
    }
}

//! The PKCS#11 key provider against a real token: Debian's SoftHSM2, initialised for each
//! run by `tests/softhsm/init-token.sh`.
//!
//! SoftHSM reads its configuration from `SOFTHSM2_CONF` when the module initialises, and
//! a test cannot set its own environment without `unsafe`; so each test makes a token,
//! then runs its body in a child process of this same test binary with that variable set
//! (the body is an ignored test, run only that way).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use custos_crypto::{CryptoError, KekId, KekProvider, Keyring, MasterKey, Token};

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const LABEL: &str = "custos-test";
const PIN: &str = "4321";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Makes a token, then runs the ignored test `body` in a child with `SOFTHSM2_CONF` set.
fn run_with_token(body: &str) {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .arg(repo_root().join("tests/softhsm/init-token.sh"))
        .args([dir.path().to_str().unwrap(), LABEL, PIN])
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "init-token.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let conf = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let status = Command::new(std::env::current_exe().unwrap())
        .args([
            body,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("SOFTHSM2_CONF", conf)
        .status()
        .unwrap();
    assert!(status.success(), "{body} failed in its child process");
}

fn open_token() -> Token {
    Token::open(Path::new(MODULE), LABEL, PIN).expect("the test token opens")
}

const V1: KekId = KekId {
    provider: KekProvider::Pkcs11,
    version: 1,
};
const V2: KekId = KekId {
    provider: KekProvider::Pkcs11,
    version: 2,
};

#[test]
fn token_keys_wrap_bind_and_never_leave() {
    run_with_token("body_token_keys_wrap_bind_and_never_leave");
}

#[test]
#[ignore = "run by token_keys_wrap_bind_and_never_leave with SOFTHSM2_CONF set"]
fn body_token_keys_wrap_bind_and_never_leave() {
    let master = MasterKey::from_bytes([5; 32]);
    let keyring = Keyring::with_token(&master, open_token(), 100, Duration::from_secs(60));
    // A token KEK cannot be current before it exists.
    assert_eq!(keyring.use_kek(V1).unwrap_err().code(), "key_provider");
    keyring.create_kek(V1).unwrap();
    keyring.create_kek(V1).unwrap(); // once only
    keyring.use_kek(V1).unwrap();
    let token = keyring.token().unwrap();
    assert!(token.kek_stays_on_token(V1).unwrap());

    let (key, wrapped) = keyring.new_data_key("c-1").unwrap();
    assert_eq!(Keyring::kek_of(&wrapped).unwrap(), V1);
    let sealed = key.seal("c-1", "phone", b"+8613800138000").unwrap();
    // Unwrapped by the token (and then from the cache), for the same customer only.
    for _ in 0..2 {
        let again = keyring.unwrap_data_key("c-1", &wrapped).unwrap();
        assert_eq!(
            &*again.open("c-1", "phone", &sealed).unwrap(),
            b"+8613800138000"
        );
    }
    assert_eq!(keyring.cached_data_keys(), 1);
    assert!(matches!(
        keyring.unwrap_data_key("c-2", &wrapped),
        Err(CryptoError::Unseal)
    ));
    let mut tampered = wrapped.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert!(matches!(
        keyring.unwrap_data_key("c-1", &tampered),
        Err(CryptoError::Unseal)
    ));
    // A keyring over the same master key but without the token cannot unwrap it.
    let file_only = Keyring::new(&MasterKey::from_bytes([5; 32]));
    assert_eq!(
        file_only
            .unwrap_data_key("c-1", &wrapped)
            .unwrap_err()
            .code(),
        "key_provider"
    );

    // Rotation: file → token v1 → token v2; the data key, and so the sealed field, stays.
    let file_keyring = Keyring::new(&MasterKey::from_bytes([5; 32]));
    let (_, file_wrapped) = file_keyring.new_data_key("c-3").unwrap();
    let on_token = keyring.rewrap_data_key("c-3", &file_wrapped, V1).unwrap();
    assert_eq!(Keyring::kek_of(&on_token).unwrap(), V1);
    keyring.create_kek(V2).unwrap();
    let rewrapped = keyring.rewrap_data_key("c-1", &wrapped, V2).unwrap();
    assert_eq!(Keyring::kek_of(&rewrapped).unwrap(), V2);
    let after = keyring.unwrap_data_key("c-1", &rewrapped).unwrap();
    assert_eq!(
        &*after.open("c-1", "phone", &sealed).unwrap(),
        b"+8613800138000"
    );
    // Erasure drops the cached copy.
    keyring.forget_data_key("c-1");
    assert!(keyring.cached_data_keys() <= 1);
    assert!(token.kek_stays_on_token(V2).unwrap());
}

#[test]
fn a_wrong_pin_or_label_is_a_clear_refusal() {
    run_with_token("body_a_wrong_pin_or_label_is_a_clear_refusal");
}

#[test]
#[ignore = "run by a_wrong_pin_or_label_is_a_clear_refusal with SOFTHSM2_CONF set"]
fn body_a_wrong_pin_or_label_is_a_clear_refusal() {
    let err = Token::open(Path::new(MODULE), LABEL, "0000").unwrap_err();
    assert_eq!(err.code(), "key_provider");
    assert!(err.to_string().contains("PinIncorrect"), "{err}");
    assert!(!err.to_string().contains("0000"));
    let err = Token::open(Path::new(MODULE), "no-such-token", PIN).unwrap_err();
    assert!(err.to_string().contains("no token labelled"), "{err}");
    let err = Token::open(Path::new("/nonexistent/module.so"), LABEL, PIN).unwrap_err();
    assert!(err.to_string().contains("cannot load"), "{err}");
}

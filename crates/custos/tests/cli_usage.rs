//! What a new user trips on, run through the real binary: either URL form for the ledger,
//! usage mistakes told apart from a tampered ledger (exit 2 and no "FAILED" against exit
//! 1), missing arguments naming their alternatives, one readable form for API failures,
//! the simulated-clock key hint, a closed standard output, and a data directory in use.

mod common;

use std::process::{Command, Output, Stdio};

use common::*;
use custos_ledger::{DirSource, build_bundle};

/// A run that could not check anything: exit 2, an `error[CODE]` line, no "FAILED".
fn usage_failure(o: &Output, code: &str) -> String {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.starts_with(&format!("error[{code}]: ")), "{err}");
    assert!(!err.contains("FAILED"), "reads as tampering: {err}");
    assert!(!err.contains('{'), "raw JSON: {err}");
    err
}

/// Runs `custos` with `token` in `CUSTOS_TOKEN` (or with it unset).
fn custos_with_token(args: &[&str], token: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_custos"));
    command.args(args).env_remove("CUSTOS_TOKEN");
    if let Some(t) = token {
        command.env("CUSTOS_TOKEN", t);
    }
    command.output().unwrap()
}

/// `verify --url` and `prove --url` take the base URL or `…/ledger`, with or without a
/// trailing slash; usage mistakes and unreadable sources exit 2 without "FAILED".
#[tokio::test]
async fn ledger_urls_and_usage_mistakes() {
    let server = Server::start(Backend::Sqlite).await;
    let w = world(&server).await;
    let c = server.client();
    let last = ledger_index(&c.view(&w.agent, &w.customer, &w.case).await);
    checkpoint_covering(&c, last + 1, CHECKPOINT_WAIT).await;
    let key = verifier_key(&server);
    let base = server.base.clone();

    for url in [
        base.clone(),
        format!("{base}/"),
        format!("{base}/ledger"),
        format!("{base}/ledger/"),
    ] {
        let o = custos_with_token(
            &["ledger", "verify", "--url", &url, "--key", &key],
            Some(&w.analyst),
        );
        assert!(o.status.success(), "verify {url}: {}", stderr(&o));
        assert!(stdout(&o).contains("ledger verified"), "{}", stdout(&o));
        let o = custos_with_token(
            &["ledger", "prove", &last.to_string(), "--url", &url],
            Some(&w.analyst),
        );
        assert!(o.status.success(), "prove {url}: {}", stderr(&o));
        assert!(stdout(&o).starts_with("c2sp.org/tlog-proof@v1\n"));
    }

    // The token from a file, as for `customer link`.
    let token_file = server.dir.path().join("analyst.token");
    std::fs::write(&token_file, format!("{}\n", w.analyst)).unwrap();
    let o = custos_with_token(
        &[
            "ledger",
            "verify",
            "--url",
            &base,
            "--key",
            &key,
            "--token-file",
            token_file.to_str().unwrap(),
        ],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));

    // No token: could not read, with the hint; a token without the right: forbidden.
    let o = custos_with_token(&["ledger", "verify", "--url", &base, "--key", &key], None);
    let err = usage_failure(&o, "unauthenticated");
    assert!(
        err.contains("CUSTOS_TOKEN") && err.contains("--token-file"),
        "{err}"
    );
    let o = custos_with_token(
        &["ledger", "verify", "--url", &base, "--key", &key],
        Some(&w.agent),
    );
    let err = usage_failure(&o, "forbidden");
    assert!(err.contains("security_analyst"), "{err}");
    let o = custos_with_token(&["ledger", "prove", "0", "--url", &base], Some("cst_nope"));
    usage_failure(&o, "unauthenticated");

    // A URL that is no Custos ledger, a server that is not there.
    let o = custos_with_token(
        &[
            "ledger",
            "verify",
            "--url",
            &format!("{base}/elsewhere"),
            "--key",
            &key,
        ],
        Some(&w.analyst),
    );
    let err = usage_failure(&o, "ledger_unreadable");
    assert!(err.contains("Custos server"), "{err}");
    let o = custos_with_token(
        &[
            "ledger",
            "verify",
            "--url",
            "http://127.0.0.1:1",
            "--key",
            &key,
        ],
        Some(&w.analyst),
    );
    usage_failure(&o, "server_unreachable");

    // --dir: a missing directory, the data directory instead of DATA/ledger, an empty one.
    let data = server.data_dir();
    let missing = server.dir.path().join("no-such-dir");
    let o = custos(&[
        "ledger",
        "verify",
        "--dir",
        missing.to_str().unwrap(),
        "--key",
        &key,
    ]);
    usage_failure(&o, "ledger_unreadable");
    let o = custos(&[
        "ledger",
        "verify",
        "--dir",
        data.to_str().unwrap(),
        "--key",
        &key,
    ]);
    let err = usage_failure(&o, "not_a_ledger_dir");
    assert!(
        err.contains(&format!("did you mean {}", data.join("ledger").display())),
        "{err}"
    );
    let empty = tempfile::tempdir().unwrap();
    let o = custos(&[
        "ledger",
        "verify",
        "--dir",
        empty.path().to_str().unwrap(),
        "--key",
        &key,
    ]);
    usage_failure(&o, "not_a_ledger_dir");
    // A malformed key is a usage mistake too.
    let o = custos(&[
        "ledger",
        "verify",
        "--dir",
        data.join("ledger").to_str().unwrap(),
        "--key",
        "not-a-key",
    ]);
    usage_failure(&o, "bad_key");
    // The real directory verifies.
    let o = custos(&[
        "ledger",
        "verify",
        "--dir",
        data.join("ledger").to_str().unwrap(),
        "--key",
        &key,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // A ledger directory that lost its checkpoint is found wrong: exit 1.
    let copy = tempfile::tempdir().unwrap();
    let status = Command::new("cp")
        .arg("-r")
        .arg(data.join("ledger").join("tile"))
        .arg(copy.path())
        .status()
        .unwrap();
    assert!(status.success());
    let o = custos(&[
        "ledger",
        "verify",
        "--dir",
        copy.path().to_str().unwrap(),
        "--key",
        &key,
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("verification FAILED"), "{}", stderr(&o));

    // Missing arguments name the alternatives.
    let o = custos(&["ledger", "verify", "--key", &key]);
    let err = usage_failure(&o, "usage");
    assert!(err.contains("--dir") && err.contains("--url"), "{err}");
    let o = custos_with_token(&["ledger", "prove", "0"], None);
    let err = usage_failure(&o, "usage");
    assert!(err.contains("--url") && err.contains("--data-dir"), "{err}");
}

/// `canary plant` takes `--token-file` and `CUSTOS_TOKEN`; API failures read as
/// `error[<code>]: <message>` for it as for `customer link`.
#[tokio::test]
async fn canary_plant_tokens_and_api_errors() {
    let server = Server::start(Backend::Sqlite).await;
    let w = world(&server).await;
    let admin_file = server.data_dir().join("admin.token");
    let o = custos_with_token(
        &[
            "canary",
            "plant",
            "2",
            "--url",
            &format!("{}/ledger", server.base),
            "--token-file",
            admin_file.to_str().unwrap(),
        ],
        // The file wins over a token in the environment.
        Some("cst_nope"),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).lines().count(), 2, "{}", stdout(&o));

    let plant = |token: Option<&str>, url: &str| {
        custos_with_token(&["canary", "plant", "1", "--url", url], token)
    };
    let err = usage_failure(&plant(None, &server.base), "usage");
    assert!(
        err.contains("--token-file") && err.contains("CUSTOS_TOKEN"),
        "{err}"
    );
    let err = usage_failure(&plant(Some(&w.agent), &server.base), "forbidden");
    assert!(err.contains("admin"), "{err}");
    usage_failure(&plant(Some("cst_nope"), &server.base), "unauthenticated");
    usage_failure(
        &plant(Some(&w.crm), "http://127.0.0.1:1"),
        "server_unreachable",
    );
}

/// A simulated-clock run's data directory: `ledger key` says what it is and how to
/// read it, and `--simulated-clock` prints its key.
#[tokio::test]
async fn simulated_ledger_key_hint() {
    let server = Server::start_with(
        Backend::Sqlite,
        Options {
            args: vec!["--simulated-clock".to_owned()],
            ..Options::default()
        },
    )
    .await;
    let data = server.data_dir();
    let o = custos(&["ledger", "key", "--data-dir", data.to_str().unwrap()]);
    let err = usage_failure(&o, "simulated_ledger");
    assert!(
        err.contains("custos.local/ledger/simulated") && err.contains("--simulated-clock"),
        "{err}"
    );
    let o = custos(&[
        "ledger",
        "key",
        "--data-dir",
        data.to_str().unwrap(),
        "--simulated-clock",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("custos.local/ledger/simulated+"),
        "{}",
        stdout(&o)
    );
    // DATA/ledger given for DATA.
    let o = custos(&[
        "ledger",
        "key",
        "--data-dir",
        data.join("ledger").to_str().unwrap(),
    ]);
    let err = usage_failure(&o, "no_ledger_key");
    assert!(err.contains("did you mean --data-dir"), "{err}");
}

/// Runs `custos` with its standard output a pipe whose reader is already gone.
fn custos_closed_stdout(args: &[&str]) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    Command::new(env!("CARGO_BIN_EXE_custos"))
        .args(args)
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

/// A closed standard output (`| head`) ends every command quietly: exit 0, no panic.
#[tokio::test]
async fn closed_stdout_is_a_normal_end() {
    let server = Server::start(Backend::Sqlite).await;
    let w = world(&server).await;
    let c = server.client();
    let a = c.reveal(&w.agent, &w.customer, &w.case, &["phone"]).await;
    let index = ledger_index(&a);
    checkpoint_covering(&c, index + 1, CHECKPOINT_WAIT).await;
    let key = verifier_key(&server);
    let data = server.data_dir();
    let bundle = build_bundle(
        &DirSource::new(data.join("ledger")),
        &key,
        vec![("alice".into(), "revealed".into(), vec![index])],
    )
    .unwrap();
    let bundle_path = server.dir.path().join("evidence.json");
    std::fs::write(&bundle_path, serde_json::to_vec(&bundle).unwrap()).unwrap();
    let o = custos(&[
        "ledger",
        "check-evidence",
        bundle_path.to_str().unwrap(),
        "--key",
        &key,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));

    let admin_file = data.join("admin.token");
    let ledger = data.join("ledger");
    for args in [
        vec![
            "ledger",
            "check-evidence",
            bundle_path.to_str().unwrap(),
            "--key",
            &key,
        ],
        vec!["ledger", "key", "--data-dir", data.to_str().unwrap()],
        vec![
            "ledger",
            "verify",
            "--dir",
            ledger.to_str().unwrap(),
            "--key",
            &key,
        ],
        vec![
            "customer",
            "link",
            &w.customer,
            "--url",
            &server.base,
            "--token-file",
            admin_file.to_str().unwrap(),
        ],
    ] {
        let o = custos_closed_stdout(&args);
        let err = stderr(&o);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(o.status.code(), Some(0), "{args:?}: {err}");
        assert!(err.is_empty(), "{args:?}: {err}");
    }
}

/// A second server or demo on a data directory in use is refused as such, naming the
/// pid of the first; a start that fails leaves no directory it created behind.
#[tokio::test]
async fn data_dir_in_use_and_failed_starts() {
    let server = Server::start(Backend::Sqlite).await;
    let data = server.data_dir();
    let pid = std::fs::read_to_string(data.join("custos.pid")).unwrap();
    let pid = pid.trim();
    assert!(pid.parse::<u32>().is_ok(), "{pid:?}");
    for args in [
        vec!["serve", "--listen", "127.0.0.1:0", "--data-dir"],
        vec![
            "demo",
            "--load-only",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
        ],
    ] {
        let mut all = args.clone();
        all.push(data.to_str().unwrap());
        let o = custos(&all);
        let err = usage_failure(&o, "data_dir_in_use");
        assert!(
            err.contains("another Custos is already running")
                && err.contains(&format!("pid {pid}")),
            "{err}"
        );
    }
    // The running server is untouched.
    assert_eq!(
        server.client().get("", "/ledger/checkpoint").await.status,
        200
    );

    let scratch = tempfile::tempdir().unwrap();
    let bad_config = scratch.path().join("bad.toml");
    std::fs::write(&bad_config, "this is = = not toml").unwrap();
    let fresh = scratch.path().join("new").join("data");
    let o = custos(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--config",
        bad_config.to_str().unwrap(),
        "--data-dir",
        fresh.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        !scratch.path().join("new").exists(),
        "left its new directory"
    );

    // A port in use.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let o = custos(&[
        "serve",
        "--listen",
        &addr,
        "--data-dir",
        fresh.to_str().unwrap(),
    ]);
    let err = usage_failure(&o, "listen");
    assert!(err.contains(&addr), "{err}");
    assert!(
        !scratch.path().join("new").exists(),
        "left its new directory"
    );
    let o = custos(&[
        "demo",
        "--listen",
        &addr,
        "--data-dir",
        fresh.to_str().unwrap(),
    ]);
    usage_failure(&o, "listen");
    assert!(
        !scratch.path().join("new").exists(),
        "the demo left its new directory"
    );

    // A directory that was there before stays, with what it held.
    let existing = scratch.path().join("existing");
    std::fs::create_dir(&existing).unwrap();
    std::fs::write(existing.join("notes.txt"), "mine").unwrap();
    let o = custos(&[
        "serve",
        "--listen",
        &addr,
        "--data-dir",
        existing.to_str().unwrap(),
    ]);
    usage_failure(&o, "listen");
    assert!(existing.join("notes.txt").exists());
}

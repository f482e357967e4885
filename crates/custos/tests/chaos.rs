//! Chaos on the real parts (docs/RELIABILITY.md): the real `custos serve` under load
//! while its wall clock is stepped back and forward (real libfaketime), and while it is
//! killed with SIGKILL around checkpoint publication. Each test ends with one line,
//! `PASS chaos <item>`. Targets: no acknowledged record lost, the ledger verifies after
//! every run, every refusal carries a stable code.

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

/// Where Debian's `faketime` package puts the library.
const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// How long `/healthz` may take to show a checkpoint attempt's outcome (one is made
/// about once a second; generous for a loaded CI machine).
const HEALTH_WAIT: Duration = Duration::from_secs(10);

/// How far ahead the clock is stepped in the second half of the clock test (`+5`).
const AHEAD: Duration = Duration::from_secs(5);

/// Each test here loads the machine with a server (two on PostgreSQL) under load; run
/// one at a time, their waits measure the server, not the neighbours.
/// (tokio's lock: it is held across awaits, and a test that failed frees it.)
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The ledger's own record of its last checkpoint: `(time_ms, size)` from
/// `ledger/state` (`None` while it is being replaced or does not parse).
fn ledger_state(data: &Path) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(data.join("ledger").join("state")).ok()?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
    };
    Some((field("time")?, field("size")?))
}

/// A checkpoint as `ledger/state` records it, `(time_ms, size)`, with the phase of the
/// test it was seen in.
type Seen = ((u64, u64), &'static str);

/// A thread that reads `ledger/state` every 5 ms and keeps every distinct
/// `(time_ms, size)` it saw, with the phase of the test it saw it in.
struct StateWatch {
    seen: Arc<Mutex<Vec<Seen>>>,
    phase: Arc<Mutex<&'static str>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StateWatch {
    fn start(data: PathBuf) -> StateWatch {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let phase = Arc::new(Mutex::new("start"));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (s, p, st) = (seen.clone(), phase.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !st.load(std::sync::atomic::Ordering::SeqCst) {
                if let Some(state) = ledger_state(&data) {
                    let mut seen = s.lock().unwrap();
                    if seen.last().map(|(x, _)| *x) != Some(state) {
                        seen.push((state, *p.lock().unwrap()));
                    }
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        StateWatch {
            seen,
            phase,
            stop,
            thread: Some(thread),
        }
    }

    fn phase(&self, phase: &'static str) {
        *self.phase.lock().unwrap() = phase;
    }

    /// The checkpoints seen so far.
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn finish(mut self) -> Vec<Seen> {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.seen()
    }
}

/// Sets the server's clock: `offset` in libfaketime's syntax (`+0`, `-1h`, `+5`).
fn set_clock(file: &Path, offset: &str) {
    // Written whole and renamed, so libfaketime never reads half a line.
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, format!("{offset}\n")).unwrap();
    std::fs::rename(&tmp, file).unwrap();
}

/// `/healthz` of `c`: its status and error code.
async fn health(c: &Client) -> (u16, String) {
    let h = c.send(c.http.get(format!("{}/healthz", c.base))).await;
    (h.status, h.code().to_owned())
}

/// Waits until `/healthz` answers `status` with `code` (`""` for none); fails after
/// `within` (a checkpoint is attempted about once a second).
async fn health_becomes(c: &Client, status: u16, code: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let h = health(c).await;
        if h == (status, code.to_owned()) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "/healthz is {h:?}, not {status} {code:?} within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The wall clock of the server stepped back an hour under load, then forward to real
/// time, then five seconds ahead and back to real time: no checkpoint is ever signed at
/// a time earlier than one before it (none is signed while the clock is behind), records
/// keep being taken in order and none acknowledged is lost, no request is dropped or
/// answered 500, `/healthz` says `clock_backwards` while checkpoints are held and
/// recovers by itself, and the ledger verifies.
#[tokio::test]
async fn clock_stepped_back_and_forward_under_load() {
    let _alone = ONE_AT_A_TIME.lock().await;
    // .ci/test installs it; a run without it must not pass silently.
    assert!(
        Path::new(LIBFAKETIME).exists(),
        "{LIBFAKETIME} is missing: apt-get install faketime"
    );
    let clock_dir = tempfile::tempdir().unwrap();
    let clock = clock_dir.path().join("faketime.rc");
    set_clock(&clock, "+0");
    let options = Options {
        env: vec![
            ("LD_PRELOAD".into(), LIBFAKETIME.into()),
            (
                "FAKETIME_TIMESTAMP_FILE".into(),
                clock.display().to_string(),
            ),
            ("FAKETIME_NO_CACHE".into(), "1".into()),
            // Timers and intervals (tokio, the checkpoint interval) keep real time.
            ("FAKETIME_DONT_FAKE_MONOTONIC".into(), "1".into()),
        ],
        ..Options::default()
    };
    let server = Server::start_with(Backend::Sqlite, options).await;
    let c = server.client();
    let w = world(&server).await;
    let key = verifier_key(&server);
    let watch = StateWatch::start(server.data_dir());
    let load = Load::start(&c, &w.agent, &w.customer, &w.case, 4, false);

    // Real time, then an hour back.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before_back = checkpoint_size(&c.get("", "/ledger/checkpoint").await.text);
    assert!(before_back > 0);
    watch.phase("back");
    set_clock(&clock, "-1h");
    // Once an attempt to sign has seen the clock back, no checkpoint is signed.
    health_becomes(&c, 503, "clock_backwards", HEALTH_WAIT).await;
    // Attempts run one at a time, and this one refused: the file holds the last
    // checkpoint signed (read directly, not through the watch, which may lag).
    let held_at = ledger_state(&server.data_dir()).expect("ledger/state");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // Records were taken meanwhile; no checkpoint was signed over them.
    let grown = c.get(&w.agent, "/v1/me").await;
    assert_eq!(grown.status, 200, "{}", grown.text);
    assert!(ledger_index(&grown) > held_at.1, "no records while back");
    assert_eq!(
        watch.seen().last().unwrap().0,
        held_at,
        "a checkpoint was signed while the clock was an hour back"
    );

    // Forward to real time: checkpoints resume by themselves.
    watch.phase("real");
    set_clock(&clock, "+0");
    checkpoint_covering(&c, ledger_index(&grown) + 1, CHECKPOINT_WAIT).await;
    health_becomes(&c, 200, "", HEALTH_WAIT).await;

    // Five seconds ahead (checkpoints signed there), then back to real time: held until
    // real time passes the last checkpoint's, then signed again without a restart.
    watch.phase("ahead");
    set_clock(&clock, &format!("+{}", AHEAD.as_secs()));
    let deadline = Instant::now() + CHECKPOINT_WAIT;
    while !watch.seen().iter().any(|(_, phase)| *phase == "ahead") {
        assert!(Instant::now() < deadline, "no checkpoint while ahead");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    watch.phase("real again");
    set_clock(&clock, "+0");
    health_becomes(&c, 503, "clock_backwards", HEALTH_WAIT).await;
    let last = c.get(&w.agent, "/v1/me").await;
    assert_eq!(last.status, 200, "{}", last.text);
    // Held for the five seconds the clock was ahead, then signed.
    checkpoint_covering(&c, ledger_index(&last) + 1, CHECKPOINT_WAIT + AHEAD).await;
    health_becomes(&c, 200, "", HEALTH_WAIT).await;

    let outcome = load.finish(true).await;
    let seen = watch.finish();
    outcome.assert_refusals_coded();
    assert_eq!(outcome.unanswered, 0, "requests dropped: {outcome:?}");
    assert!(
        outcome.acked.len() > 100,
        "load ran: {}",
        outcome.acked.len()
    );

    // No checkpoint at a time earlier than one before it; none signed while back.
    for pair in seen.windows(2) {
        let (((t0, s0), _), ((t1, s1), phase)) = (pair[0], pair[1]);
        assert!(
            t1 >= t0 && s1 >= s0,
            "checkpoint at {t1} ms (size {s1}, {phase}) after one at {t0} ms (size {s0}): {seen:?}"
        );
    }
    assert!(
        seen.iter()
            .filter(|(_, phase)| *phase == "back")
            .all(|((_, size), _)| *size <= held_at.1),
        "a checkpoint signed while the clock was back: {seen:?}"
    );
    assert!(
        seen.iter().any(|(_, phase)| *phase == "real again"),
        "no checkpoint after the clock came back: {seen:?}"
    );

    // Every acknowledged record is in the ledger, in order, and the ledger verifies.
    let last = outcome.acked.iter().map(|(i, _)| *i).max().unwrap();
    let size = checkpoint_size(&checkpoint_covering(&c, last + 1, CHECKPOINT_WAIT).await);
    let ids = ledger_request_ids(&c, &w.analyst, size).await;
    assert_acked_in_ledger(&outcome.acked, &ids);
    let state = clock_dir.path().join("witness.state");
    let out = verify_ledger(&format!("{}/ledger", c.base), &key, &w.analyst, &state);
    assert!(out.contains("ledger verified"), "{out}");
    println!(
        "PASS chaos clock stepped back and forward: {} records acknowledged, {} checkpoints, refusals {:?}",
        outcome.acked.len(),
        seen.len(),
        outcome.refusals
    );
}

/// SIGKILL of the server at moments spread around checkpoint publication (right after
/// one is signed, and up to and past the next one a second later), under load, ten
/// times on one data directory: after each restart every acknowledged record is in the
/// ledger at its index, the ledger verifies consistent with what was verified before the
/// kill, and the server serves again.
#[tokio::test]
async fn kill9_around_checkpoints_loses_nothing() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let mut server = Server::start(Backend::Sqlite).await;
    let w = world(&server).await;
    let key = verifier_key(&server);
    let state = server.dir.path().join("witness.state");
    let mut acked = Vec::new();
    let mut kills = 0;
    // Milliseconds after a checkpoint appears; one is signed about every 1000 ms.
    for delay in [0u64, 3, 30, 250, 600, 960, 985, 995, 1000, 1010] {
        let c = server.client();
        let before = c.get("", "/ledger/checkpoint").await.text;
        let load = Load::start(&c, &w.agent, &w.customer, &w.case, 4, true);
        // The next checkpoint under load, then the delay, then SIGKILL.
        let deadline = Instant::now() + CHECKPOINT_WAIT;
        loop {
            let now = c.get("", "/ledger/checkpoint").await.text;
            if now != before && checkpoint_size(&now) > checkpoint_size(&before) {
                break;
            }
            assert!(Instant::now() < deadline, "no checkpoint under load");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        tokio::time::sleep(Duration::from_millis(delay)).await;
        server.kill9();
        kills += 1;
        let outcome = load.finish(false).await;
        outcome.assert_refusals_coded();
        assert!(!outcome.acked.is_empty(), "load ran before the kill");
        acked.extend(outcome.acked);

        // The same data: it starts, signs over everything acknowledged, verifies
        // consistent with the checkpoint verified before, and serves.
        server.respawn();
        let c = server.client();
        let last = acked.iter().map(|(i, _)| *i).max().unwrap();
        checkpoint_covering(&c, last + 1, CHECKPOINT_WAIT).await;
        let out = verify_ledger(&format!("{}/ledger", c.base), &key, &w.analyst, &state);
        assert!(
            out.contains("ledger verified"),
            "after a kill {delay} ms after a checkpoint: {out}"
        );
        let me = c.get(&w.agent, "/v1/me").await;
        assert_eq!(me.status, 200, "serves after the kill: {}", me.text);
    }
    let c = server.client();
    let size = checkpoint_size(&c.get("", "/ledger/checkpoint").await.text);
    let ids = ledger_request_ids(&c, &w.analyst, size).await;
    assert_acked_in_ledger(&acked, &ids);
    println!(
        "PASS chaos kill -9 during a checkpoint: {kills} kills, {} acknowledged records all in the ledger, {size} entries verified",
        acked.len()
    );
}

/// SIGKILL of one node of two on PostgreSQL at moments spread around checkpoint
/// publication, under load on both: the other node keeps serving (no request it was sent
/// goes unanswered or gets a code-less refusal) and signs over every acknowledged record,
/// and the killed node, restarted on its data, serves again.
#[tokio::test]
async fn kill9_of_a_postgresql_node_around_checkpoints_loses_nothing() {
    if !Backend::all().contains(&Backend::Postgres) {
        eprintln!("SKIPPED: TEST_SKIP_POSTGRES=1");
        return;
    }
    let _alone = ONE_AT_A_TIME.lock().await;
    let mut a = Server::start(Backend::Postgres).await;
    let b = a.join();
    let w = world(&a).await;
    let key = verifier_key(&a);
    let state = a.dir.path().join("witness.state");
    let (cb, mut acked) = (b.client(), Vec::new());
    for delay in [0u64, 400, 980, 1000] {
        let ca = a.client();
        let before = ca.get("", "/ledger/checkpoint").await.text;
        let load_a = Load::start(&ca, &w.agent, &w.customer, &w.case, 2, true);
        let load_b = Load::start(&cb, &w.agent, &w.customer, &w.case, 2, false);
        let deadline = Instant::now() + CHECKPOINT_WAIT;
        loop {
            let now = ca.get("", "/ledger/checkpoint").await.text;
            if checkpoint_size(&now) > checkpoint_size(&before) {
                break;
            }
            assert!(Instant::now() < deadline, "no checkpoint under load");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        tokio::time::sleep(Duration::from_millis(delay)).await;
        a.kill9();
        let from_a = load_a.finish(false).await;
        // B goes on alone for a moment.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let from_b = load_b.finish(true).await;
        for outcome in [&from_a, &from_b] {
            outcome.assert_refusals_coded();
        }
        assert_eq!(from_b.unanswered, 0, "the surviving node dropped requests");
        assert!(!from_b.acked.is_empty(), "the surviving node served");
        acked.extend(from_a.acked);
        acked.extend(from_b.acked);

        let last = acked.iter().map(|(i, _)| *i).max().unwrap();
        checkpoint_covering(&cb, last + 1, CHECKPOINT_WAIT).await;
        let out = verify_ledger(&format!("{}/ledger", cb.base), &key, &w.analyst, &state);
        assert!(
            out.contains("ledger verified"),
            "after a kill {delay} ms after a checkpoint: {out}"
        );
        a.respawn();
        let me = a.client().get(&w.agent, "/v1/me").await;
        assert_eq!(me.status, 200, "A serves after the kill: {}", me.text);
    }
    let last = acked.iter().map(|(i, _)| *i).max().unwrap();
    let size = checkpoint_size(&checkpoint_covering(&cb, last + 1, CHECKPOINT_WAIT).await);
    let ids = ledger_request_ids(&cb, &w.analyst, size).await;
    assert_acked_in_ledger(&acked, &ids);
    println!(
        "PASS chaos kill -9 of a PostgreSQL node during a checkpoint: 4 kills, {} acknowledged records all in the ledger",
        acked.len()
    );
}

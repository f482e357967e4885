//! PostgreSQL itself failing under two gateway nodes (docs/MULTI_NODE.md, "Failover of
//! PostgreSQL itself"): a primary with a synchronous hot standby, both clusters started
//! here, reached through a TCP forwarder that plays the part of the database's virtual
//! address. The primary is restarted under load, then killed and the standby promoted
//! under load: clients get 503 with a stable code meanwhile, the nodes serve again by
//! themselves, no acknowledged entry is lost, and the ledger verifies.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use common::*;

/// Where the PostgreSQL server programs are (`TEST_PG_BIN`, else Debian's newest).
fn pg_bin() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("TEST_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop()
}

/// A free loopback port.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One PostgreSQL cluster in a directory of the test's, run as the `postgres` user when
/// the test runs as root (the server refuses to run as root).
struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
}

fn as_postgres(program: &Path) -> Command {
    // Whether the test runs as root, by the `id` program (no unsafe call needed).
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn run(mut c: Command, what: &str) {
    let o = c.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        o.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

impl Cluster {
    fn pg(&self, name: &str) -> Command {
        as_postgres(&self.bin.join(name))
    }

    /// A new primary: synchronous commit waits for the standby named `standby`.
    fn primary(bin: &Path, root: &Path) -> Cluster {
        let c = Cluster {
            bin: bin.to_owned(),
            dir: root.join("primary"),
            port: free_port(),
        };
        let mut init = c.pg("initdb");
        init.args(["-U", "postgres", "--auth=trust", "-D"])
            .arg(&c.dir);
        run(init, "initdb");
        let conf = format!(
            "port = {}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             wal_level = replica\nmax_wal_senders = 4\nsynchronous_standby_names = 'standby'\n\
             fsync = on\n",
            c.port,
            root.display()
        );
        append(&c.dir.join("postgresql.conf"), &conf);
        append(
            &c.dir.join("pg_hba.conf"),
            "host replication all 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 trust\n",
        );
        c.start();
        c
    }

    /// A hot standby of `primary`, streaming synchronously under the name `standby`.
    fn standby(primary: &Cluster, root: &Path) -> Cluster {
        let c = Cluster {
            bin: primary.bin.clone(),
            dir: root.join("standby"),
            port: free_port(),
        };
        let mut backup = c.pg("pg_basebackup");
        backup
            .args(["-h", "127.0.0.1", "-p", &primary.port.to_string()])
            .args(["-U", "postgres", "-X", "stream", "-R", "-D"])
            .arg(&c.dir);
        run(backup, "pg_basebackup");
        append(
            &c.dir.join("postgresql.auto.conf"),
            &format!(
                "port = {}\nprimary_conninfo = 'host=127.0.0.1 port={} user=postgres application_name=standby'\n",
                c.port, primary.port
            ),
        );
        c.start();
        c
    }

    fn start(&self) {
        let mut start = self.pg("pg_ctl");
        start
            .args(["-w", "-D"])
            .arg(&self.dir)
            .arg("-l")
            .arg(self.dir.with_extension("log"))
            .arg("start");
        run(start, "pg_ctl start");
    }

    fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let mut stop = self.pg("pg_ctl");
        stop.args(["-D"])
            .arg(&self.dir)
            .args(["-m", "immediate", "stop"]);
        let _ = stop.output();
    }
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// The database's virtual address: forwards each connection to the port it names now.
async fn forwarder(target: Arc<AtomicU16>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let port = target.load(Ordering::SeqCst);
            tokio::spawn(async move {
                if let Ok(mut server) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    addr
}

async fn sql(url: &str, statement: &str) -> Vec<(String,)> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::query_as(sqlx::AssertSqlSafe(statement.to_owned()))
        .fetch_all(&mut conn)
        .await
        .unwrap()
}

/// Views through both nodes in turn for `length`: the acknowledged (index, request id)
/// pairs, and the codes of the refusals.
async fn load(
    nodes: [Client; 2],
    logs: &[PathBuf],
    w: &World,
    length: Duration,
) -> (Vec<(u64, String)>, Vec<String>) {
    let (agent, customer, case) = (w.agent.clone(), w.customer.clone(), w.case.clone());
    let started = Instant::now();
    let (mut acknowledged, mut refused) = (Vec::new(), Vec::new());
    let mut i = 0;
    while started.elapsed() < length {
        let c = &nodes[i % 2];
        i += 1;
        let sent = c
            .http
            .get(format!("{}/v1/customers/{customer}", c.base))
            .header("x-custos-case", &case)
            .bearer_auth(&agent)
            .send()
            .await;
        let r = match sent {
            Ok(response) => {
                let status = response.status().as_u16();
                let headers = response.headers().clone();
                let bytes = response.bytes().await.unwrap_or_default().to_vec();
                Answer::new(custos_client::RawAnswer {
                    status,
                    headers,
                    bytes,
                })
            }
            Err(e) => {
                let logs: Vec<String> = logs
                    .iter()
                    .map(|p| {
                        std::fs::read_to_string(p)
                            .unwrap_or_default()
                            .lines()
                            .filter(|l| !l.contains("\"INFO\""))
                            .collect::<Vec<_>>()
                            .join("\n")
                    })
                    .collect();
                panic!(
                    "no answer from {} after {:?}: {e:?}\n{}",
                    c.base,
                    started.elapsed(),
                    logs.join("\n----\n")
                )
            }
        };
        match r.status {
            200 => acknowledged.push((
                ledger_index(&r),
                r.headers["x-request-id"].to_str().unwrap().to_owned(),
            )),
            503 => {
                refused.push(r.code().to_owned());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => panic!("unexpected {other}: {}", r.text),
        }
    }
    (acknowledged, refused)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_restarts_and_fails_over_to_its_standby_under_load() {
    if !Backend::all().contains(&Backend::Postgres) {
        return;
    }
    let Some(bin) = pg_bin() else {
        eprintln!("no PostgreSQL server programs; set TEST_PG_BIN");
        return;
    };
    let root = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        root.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let primary = Cluster::primary(&bin, root.path());
    let standby = Cluster::standby(&primary, root.path());
    // The standby catches up, then commits wait for it.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let state = sql(
            &primary.url("postgres"),
            "SELECT application_name || ' ' || state || ' ' || sync_state FROM pg_stat_replication",
        )
        .await;
        if state == vec![("standby streaming sync".to_owned(),)] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the standby is not synchronous: {state:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sql(&primary.url("postgres"), "CREATE DATABASE custos").await;

    let target = Arc::new(AtomicU16::new(primary.port));
    let address = forwarder(target.clone()).await;
    let url = format!("postgres://postgres@{address}/custos");
    let a = Server::start_with(
        Backend::Postgres,
        Options {
            database_url: Some(url),
            ..Options::default()
        },
    )
    .await;
    let b = a.join();
    let w = world(&a).await;
    let nodes = [a.client(), b.client()];
    let logs = [a.log_path(), b.log_path()];

    // 1. The primary restarts under load.
    let restart = {
        let primary_dir = primary.dir.clone();
        let bin = bin.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let mut c = as_postgres(&bin.join("pg_ctl"));
            // With its log file: the new server must not hold pg_ctl's output open.
            c.args(["-w", "-D"])
                .arg(&primary_dir)
                .arg("-l")
                .arg(primary_dir.with_extension("log"))
                .args(["-m", "fast", "restart"]);
            tokio::task::spawn_blocking(move || run(c, "pg_ctl restart"))
                .await
                .unwrap();
        })
    };
    let (mut acknowledged, mut refused) =
        load(nodes.clone(), &logs, &w, Duration::from_secs(4)).await;
    restart.await.unwrap();

    // 2. The primary dies; the standby is promoted; the address moves to it.
    let failover = {
        let target = target.clone();
        let standby_port = standby.port;
        let primary_dir = primary.dir.clone();
        let standby_dir = standby.dir.clone();
        let bin = bin.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            tokio::task::spawn_blocking(move || {
                let mut kill = as_postgres(&bin.join("pg_ctl"));
                kill.args(["-D"])
                    .arg(&primary_dir)
                    .args(["-m", "immediate", "stop"]);
                run(kill, "pg_ctl stop");
                let mut promote = as_postgres(&bin.join("pg_ctl"));
                promote.args(["-w", "-D"]).arg(&standby_dir).arg("promote");
                run(promote, "pg_ctl promote");
            })
            .await
            .unwrap();
            // What a failover manager does next: the promoted server has no standby of
            // its own yet, so it stops waiting for one (else every commit would wait).
            let promoted = format!("postgres://postgres@127.0.0.1:{standby_port}/postgres");
            sql(&promoted, "ALTER SYSTEM SET synchronous_standby_names = ''").await;
            sql(&promoted, "SELECT pg_reload_conf()::TEXT").await;
            target.store(standby_port, Ordering::SeqCst);
        })
    };
    let (more, refusals) = load(nodes.clone(), &logs, &w, Duration::from_secs(8)).await;
    failover.await.unwrap();
    acknowledged.extend(more);
    refused.extend(refusals);
    eprintln!(
        "{} acknowledged, {} refused ({:?})",
        acknowledged.len(),
        refused.len(),
        refused.iter().collect::<std::collections::HashSet<_>>()
    );
    assert!(
        refused
            .iter()
            .all(|c| c == "ledger_unavailable" || c == "store_unavailable"),
        "{refused:?}"
    );

    // Both nodes serve again, from the promoted standby.
    let deadline = Instant::now() + Duration::from_secs(20);
    for c in &nodes {
        loop {
            let r = c.view(&w.agent, &w.customer, &w.case).await;
            if r.status == 200 {
                acknowledged.push((
                    ledger_index(&r),
                    r.headers["x-request-id"].to_str().unwrap().to_owned(),
                ));
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{} does not serve again: {}",
                c.base,
                r.text
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // Every acknowledged entry is in the promoted database, at its index.
    let rows = sql(
        &standby.url("custos"),
        "SELECT request_id FROM access_records ORDER BY seq",
    )
    .await;
    let stored: std::collections::HashSet<String> = rows.into_iter().map(|(r,)| r).collect();
    let lost: Vec<_> = acknowledged
        .iter()
        .filter(|(_, id)| !stored.contains(id))
        .collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");

    // The ledger verifies, on a checkpoint over everything acknowledged.
    let last = acknowledged.iter().map(|(i, _)| *i).max().unwrap();
    checkpoint_covering(&nodes[1], last + 1, Duration::from_secs(10)).await;
    let key = verifier_key(&a);
    let state = root.path().join("witness.state");
    verify_ledger(&format!("{}/ledger", b.base), &key, &w.analyst, &state);
    println!(
        "PASS chaos PostgreSQL restarted and failed over under load: {} acknowledged, none lost, ledger verified",
        acknowledged.len()
    );
}

//! `custos keys`: the rotations of the key-encryption key and of the blind-index key,
//! through the running server's API (so each step is in the ledger).

use std::time::{Duration, Instant};

use custos_client::{Client, Http};
use custos_service::keys::{IndexRotationStatus, RotationStatus};
use custos_sim::outln;

use crate::Failure;
use crate::api_client::{self, TokenArgs};

/// `custos keys` subcommands.
#[derive(clap::Subcommand)]
pub(crate) enum KeysCommand {
    /// Start a rotation to the next key-encryption key of the configured provider
    /// (`[keys]`), or with `--blind-index` to the next blind-index key, then show its
    /// progress until every customer is moved. Interrupting this command does not stop
    /// the rotation: `custos keys status` follows it again.
    Rotate(Follow),
    /// The key in use, and the latest rotation's progress.
    Status(Follow),
}

/// Where the server is, and how to follow a rotation.
#[derive(clap::Args)]
pub(crate) struct Follow {
    /// The server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8700")]
    url: String,
    /// An admin's token.
    #[command(flatten)]
    token: TokenArgs,
    /// No progress bar; print the final status only.
    #[arg(long)]
    quiet: bool,
    /// The blind-index key instead of the key-encryption key.
    #[arg(long)]
    blind_index: bool,
}

/// What `custos keys` shows of either rotation.
struct Progress {
    rotation: i64,
    current: String,
    finished: bool,
    done: i64,
    total: i64,
}

/// The paths and words of one key's rotation.
struct Key {
    start: &'static str,
    status: &'static str,
    current: &'static str,
    done: &'static str,
    read: fn(serde_json::Value) -> Option<Progress>,
}

const KEK: Key = Key {
    start: "/v1/keys/rotations",
    status: "/v1/keys/rotation",
    current: "current key-encryption key",
    done: "data keys re-wrapped",
    read: |body| {
        let s: RotationStatus = serde_json::from_value(body).ok()?;
        Some(Progress {
            rotation: s.rotation,
            current: s.current_kek,
            finished: s.finished,
            done: s.rewrapped,
            total: s.total,
        })
    },
};

const BLIND_INDEX: Key = Key {
    start: "/v1/keys/index/rotations",
    status: "/v1/keys/index/rotation",
    current: "current blind-index key",
    done: "customers re-indexed",
    read: |body| {
        let s: IndexRotationStatus = serde_json::from_value(body).ok()?;
        Some(Progress {
            rotation: s.rotation,
            current: s.current_index_key,
            finished: s.finished,
            done: s.reindexed,
            total: s.total,
        })
    },
};

const WHOSE: &str = "an admin's token";

/// Runs one `custos keys` subcommand.
pub(crate) async fn run(command: KeysCommand) -> Result<(), Failure> {
    let (start, follow) = match command {
        KeysCommand::Rotate(follow) => (true, follow),
        KeysCommand::Status(follow) => (false, follow),
    };
    let key = if follow.blind_index {
        &BLIND_INDEX
    } else {
        &KEK
    };
    let token = follow.token.require(WHOSE)?;
    let client = api_client::client(&follow.url);
    let begun = Instant::now();
    let mut status = if start {
        let answer = client.post_empty(&token, key.start).await?;
        read(key, custos_sim::accepted(answer, WHOSE)?.body)?
    } else {
        status_of(key, &client, &token).await?
    };
    let bar = custos_sim::progress::bar(
        usize::try_from(status.total).unwrap_or(0),
        key.done,
        follow.quiet || status.finished,
    );
    while !status.finished {
        bar.set_position(u64::try_from(status.done).unwrap_or(0));
        tokio::time::sleep(Duration::from_millis(250)).await;
        status = status_of(key, &client, &token).await?;
    }
    bar.finish_and_clear();
    outln!("{}: {}", key.current, status.current)?;
    if status.rotation == 0 {
        return outln!("never rotated");
    }
    outln!(
        "rotation {}: finished, {} of {} {}{}",
        status.rotation,
        status.done,
        status.total,
        key.done,
        if start {
            format!(" in {:.1} s", begun.elapsed().as_secs_f64())
        } else {
            String::new()
        }
    )
}

async fn status_of(key: &Key, client: &Client<Http>, token: &str) -> Result<Progress, Failure> {
    let answer = client.get(token, key.status).await?;
    read(key, custos_sim::accepted(answer, WHOSE)?.body)
}

fn read(key: &Key, body: serde_json::Value) -> Result<Progress, Failure> {
    (key.read)(body)
        .ok_or_else(|| Failure::new("api_error", "the server's answer is not a rotation status"))
}

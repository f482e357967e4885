//! `custos keys`: the key-encryption key's rotation, through the running server's API
//! (so each step is in the ledger).

use std::time::{Duration, Instant};

use custos_client::{Client, Http};
use custos_service::keys::RotationStatus;
use custos_sim::outln;

use crate::Failure;
use crate::api_client::{self, TokenArgs};

/// `custos keys` subcommands.
#[derive(clap::Subcommand)]
pub(crate) enum KeysCommand {
    /// Start a rotation to the next key of the configured provider (`[keys]`), then show
    /// its progress until every data key is re-wrapped. Interrupting this command does
    /// not stop the rotation: `custos keys status` follows it again.
    Rotate(Follow),
    /// The key that wraps new data keys, and the latest rotation's progress.
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
}

const WHOSE: &str = "an admin's token";

/// Runs one `custos keys` subcommand.
pub(crate) async fn run(command: KeysCommand) -> Result<(), Failure> {
    let (start, follow) = match command {
        KeysCommand::Rotate(follow) => (true, follow),
        KeysCommand::Status(follow) => (false, follow),
    };
    let token = follow.token.require(WHOSE)?;
    let client = api_client::client(&follow.url);
    let begun = Instant::now();
    let mut status = if start {
        let answer = client.post_empty(&token, "/v1/keys/rotations").await?;
        read(custos_sim::accepted(answer, WHOSE)?.body)?
    } else {
        status_of(&client, &token).await?
    };
    let bar = custos_sim::progress::bar(
        usize::try_from(status.total).unwrap_or(0),
        "data keys re-wrapped",
        follow.quiet || status.finished,
    );
    while !status.finished {
        bar.set_position(u64::try_from(status.rewrapped).unwrap_or(0));
        tokio::time::sleep(Duration::from_millis(250)).await;
        status = status_of(&client, &token).await?;
    }
    bar.finish_and_clear();
    outln!("current key-encryption key: {}", status.current_kek)?;
    if status.rotation == 0 {
        return outln!("never rotated");
    }
    outln!(
        "rotation {}: finished, {} of {} data keys re-wrapped{}",
        status.rotation,
        status.rewrapped,
        status.total,
        if start {
            format!(" in {:.1} s", begun.elapsed().as_secs_f64())
        } else {
            String::new()
        }
    )
}

async fn status_of(client: &Client<Http>, token: &str) -> Result<RotationStatus, Failure> {
    let answer = client.get(token, "/v1/keys/rotation").await?;
    read(custos_sim::accepted(answer, WHOSE)?.body)
}

fn read(body: serde_json::Value) -> Result<RotationStatus, Failure> {
    serde_json::from_value(body)
        .map_err(|_| Failure::new("api_error", "the server's answer is not a rotation status"))
}

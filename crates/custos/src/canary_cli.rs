//! `custos canary plant N`: synthetic customers that look like any other, planted through
//! the running server; any later touch of one suspends the person (see custos-detector).

use custos_sim::demo::canaries;

use crate::Failure;
use crate::api_client::{self, TokenArgs};
use custos_sim::outln;

/// `custos canary` subcommands.
#[derive(clap::Subcommand)]
pub(crate) enum CanaryCommand {
    /// Plant N canary customers; their ids go to standard output (keep them secret).
    Plant {
        /// How many.
        count: usize,
        /// The server's base URL (a trailing `/ledger` is ignored).
        #[arg(long, default_value = "http://127.0.0.1:8700")]
        url: String,
        /// An admin's token.
        #[command(flatten)]
        token: TokenArgs,
    },
}

/// Who may plant canaries.
const WHOSE: &str = "an admin's token";

/// Runs one `custos canary` subcommand.
pub(crate) async fn run(command: CanaryCommand) -> Result<(), Failure> {
    let CanaryCommand::Plant { count, url, token } = command;
    let token = token.require(WHOSE)?;
    let client = api_client::client(&url);
    let planted = canaries::plant(&client, &token, count)
        .await?
        .map_err(|refused| Failure::refusal(refused.status, &refused.body, WHOSE))?;
    custos_sim::stdout::note(format_args!(
        "planted {count} canary customers; their ids (keep them secret):"
    ));
    for (id, _) in planted {
        outln!("{id}")?;
    }
    Ok(())
}

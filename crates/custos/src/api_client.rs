//! What every CLI command calling the server's API shares: the bearer token (from
//! `--token-file`, `--token` or `CUSTOS_TOKEN`) and the client of the server at the URL
//! the user typed. Refusals read as `error[<code>]: <message>` through
//! [`Failure::refusal`](custos_sim::Failure::refusal), never as raw JSON.

use std::path::PathBuf;

use custos_client::{Client, Http, base_url};

use crate::Failure;

/// The bearer token options of a command calling the API.
#[derive(clap::Args, Clone, Default)]
pub(crate) struct TokenArgs {
    /// File holding the bearer token (as `DATA/admin.token` does); wins over --token and
    /// CUSTOS_TOKEN.
    // No `conflicts_with`: clap would count a CUSTOS_TOKEN in the environment as --token.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// Bearer token (prefer --token-file or CUSTOS_TOKEN: arguments are visible to
    /// other users of the machine).
    #[arg(long, env = "CUSTOS_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

impl TokenArgs {
    /// The token, if one was given; the file wins over `--token`/`CUSTOS_TOKEN`.
    pub(crate) fn get(&self) -> Result<Option<String>, Failure> {
        match (&self.token_file, &self.token) {
            (Some(path), _) => Ok(Some(custos_service::startup::read_token_file(path)?)),
            (None, Some(token)) => Ok(Some(token.clone())),
            (None, None) => Ok(None),
        }
    }

    /// The token; without one, a usage error saying how to give it and whose it must be.
    pub(crate) fn require(&self, whose: &str) -> Result<String, Failure> {
        self.get()?.ok_or_else(|| {
            Failure::new(
                "usage",
                format!("no token: give --token-file FILE or set CUSTOS_TOKEN ({whose})"),
            )
        })
    }
}

/// The typed client of the server at `url` (as the user typed it, see [`base_url`]).
pub(crate) fn client(url: &str) -> Client<Http> {
    Client::new(Http::new(&base_url(url)))
}

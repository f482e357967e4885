//! `custos customer link ID`: a customer access link, issued by the running server
//! through its API (so the issuance is in the ledger) to an admin or the CRM integration.
//! Opening the link shows the customer every access to their record; it opens one
//! session, in one browser.

use custos_store::calendar::utc;
use std::path::PathBuf;

use crate::Fatal;

/// `custos customer` subcommands.
#[derive(clap::Subcommand)]
pub enum CustomerCommand {
    /// Issue an access link for a customer and print it with its expiry.
    Link {
        /// The customer's id (`cus_…`).
        customer: String,
        /// Hours the link stays valid, 1 to 168. The link opens the customer's page
        /// once (in one browser); another visit needs a new link.
        #[arg(long, default_value_t = custos_gateway::api::DEFAULT_LINK_HOURS)]
        hours: u32,
        /// The server's base URL.
        #[arg(long, default_value = "http://127.0.0.1:8700")]
        url: String,
        /// File holding the bearer token of an admin or the CRM integration.
        #[arg(long, conflicts_with = "token")]
        token_file: Option<PathBuf>,
        /// Bearer token of an admin or the CRM integration.
        #[arg(long, env = "CUSTOS_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
}

/// A customer access link as the server issued it.
pub struct IssuedLink {
    /// The full URL the customer opens.
    pub url: String,
    /// When it stops working, unix milliseconds.
    pub expires_at: i64,
}

/// Runs one `custos customer` subcommand.
pub async fn run(command: CustomerCommand) -> Result<(), Fatal> {
    let CustomerCommand::Link {
        customer,
        hours,
        url,
        token_file,
        token,
    } = command;
    let token = match (token_file, token) {
        (Some(path), _) => crate::serve::read_token_file(&path)?,
        (None, Some(token)) => token,
        (None, None) => {
            return Err(Fatal::new("usage", "give --token-file or set CUSTOS_TOKEN"));
        }
    };
    let link = issue_link(&reqwest::Client::new(), &url, &token, &customer, hours).await?;
    println!("{}", link.url);
    println!("expires {}", utc(link.expires_at));
    Ok(())
}

/// Asks the server at `base` for an access link to `customer`'s record, valid `hours`.
pub async fn issue_link(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    customer: &str,
    hours: u32,
) -> Result<IssuedLink, Fatal> {
    // The server's own checks, before anything is sent: an id is also part of the path.
    custos_gateway::exchange::valid_id("customer", customer)
        .and_then(|()| custos_gateway::api::valid_link_hours(hours))
        .map_err(|e| Fatal::new(e.code, e.message))?;
    let base = base.trim_end_matches('/');
    let response = client
        .post(format!("{base}/v1/customers/{customer}/link"))
        .bearer_auth(token)
        .json(&serde_json::json!({ "valid_hours": hours }))
        .send()
        .await
        .map_err(|e| {
            Fatal::new(
                "server_unreachable",
                format!("cannot reach {base}: {}", e.without_url()),
            )
        })?;
    let status = response.status();
    let answer: serde_json::Value = response.json().await.unwrap_or_default();
    if !status.is_success() {
        let message = answer["error"]["message"].as_str().unwrap_or("no message");
        return Err(match status.as_u16() {
            401 => Fatal::new(
                "unauthenticated",
                format!("the token was refused: {message}"),
            ),
            403 => Fatal::new(
                "forbidden",
                format!("issuing customer links needs an admin or the CRM integration: {message}"),
            ),
            404 => Fatal::new("not_found", format!("no customer {customer}: {message}")),
            400 => Fatal::new("invalid_request", message),
            _ => Fatal::new("http", format!("{status}: {message}")),
        });
    }
    match (answer["path"].as_str(), answer["expires_at"].as_i64()) {
        (Some(path), Some(expires_at)) => Ok(IssuedLink {
            url: format!("{base}{path}"),
            expires_at,
        }),
        _ => Err(Fatal::new("http", format!("{status}: unexpected answer"))),
    }
}

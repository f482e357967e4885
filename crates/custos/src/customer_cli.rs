//! `custos customer link ID`: a customer access link, issued by the running server
//! through its API (so the issuance is in the ledger) to an admin or the CRM integration.
//! Opening the link shows the customer every access to their record; it opens one
//! session, in one browser.

use custos_types::calendar::utc;

use crate::Failure;
use custos_client::{Client, Http};

use crate::api_client::{self, TokenArgs};
use custos_sim::outln;

/// `custos customer` subcommands.
#[derive(clap::Subcommand)]
pub(crate) enum CustomerCommand {
    /// Issue an access link for a customer and print it with its expiry.
    Link {
        /// The customer's id (`cus_…`).
        customer: String,
        /// Hours the link stays valid, 1 to 168. The link opens the customer's page
        /// once (in one browser); another visit needs a new link.
        #[arg(long, default_value_t = custos_service::transparency::DEFAULT_LINK_HOURS)]
        hours: u32,
        /// The server's base URL (a trailing `/ledger` is ignored).
        #[arg(long, default_value = "http://127.0.0.1:8700")]
        url: String,
        /// The token of an admin or the CRM integration.
        #[command(flatten)]
        token: TokenArgs,
    },
}

/// A customer access link as the server issued it.
pub(crate) struct IssuedLink {
    /// The full URL the customer opens.
    pub url: String,
    /// When it stops working, unix milliseconds.
    pub expires_at: i64,
}

/// Runs one `custos customer` subcommand.
pub(crate) async fn run(command: CustomerCommand) -> Result<(), Failure> {
    let CustomerCommand::Link {
        customer,
        hours,
        url,
        token,
    } = command;
    let token = token.require(WHOSE)?;
    let link = issue_link(&api_client::client(&url), &token, &customer, hours).await?;
    outln!("{}", link.url)?;
    outln!("expires {}", utc(link.expires_at))
}

/// Who may issue customer links.
const WHOSE: &str = "the token of an admin or the CRM integration";

/// Asks the server for an access link to `customer`'s record, valid `hours`.
pub(crate) async fn issue_link(
    client: &Client<Http>,
    token: &str,
    customer: &str,
    hours: u32,
) -> Result<IssuedLink, Failure> {
    // The server's own checks, before anything is sent: an id is also part of the path.
    custos_service::input::valid_id("customer", customer)
        .and_then(|()| custos_service::transparency::valid_link_hours(hours))
        .map_err(|e| Failure::new(e.code.as_str(), e.message))?;
    let base = client.transport().base();
    let answer = client.issue_link(token, customer, Some(hours)).await?;
    let answer = custos_sim::accepted(answer, WHOSE)?;
    match (
        answer.body["path"].as_str(),
        answer.body["expires_at"].as_i64(),
    ) {
        (Some(path), Some(expires_at)) => Ok(IssuedLink {
            url: format!("{base}{path}"),
            expires_at,
        }),
        _ => Err(Failure::new(
            "unexpected_answer",
            format!("{base} answered without a link: is it a Custos server?"),
        )),
    }
}

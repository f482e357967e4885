//! `custos canary plant N`: synthetic customers that look like any other, planted through
//! the running server; any later touch of one suspends the person (see custos-detector).

use rand::SeedableRng;
use rand::rngs::StdRng;

use custos::demo_data::{self, DemoCustomer};

use crate::Fatal;
use crate::api_client::{self, TokenArgs};
use crate::output::outln;

/// `custos canary` subcommands.
#[derive(clap::Subcommand)]
pub enum CanaryCommand {
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

/// Most canaries one call plants (one import's worth).
const MAX_PLANT: usize = 10_000;

/// Runs one `custos canary` subcommand.
pub async fn run(command: CanaryCommand) -> Result<(), Fatal> {
    let CanaryCommand::Plant { count, url, token } = command;
    let token = token.require(WHOSE)?;
    let planted = plant(&url, &token, count).await?;
    crate::report(format_args!(
        "planted {count} canary customers; their ids (keep them secret):"
    ));
    for (id, _) in planted {
        outln!("{id}")?;
    }
    Ok(())
}

/// Plants `count` canaries through the server at `url` as the admin holding `token`;
/// returns each canary's id with the values it was planted with.
pub async fn plant(
    url: &str,
    token: &str,
    count: usize,
) -> Result<Vec<(String, DemoCustomer)>, Fatal> {
    if count == 0 || count > MAX_PLANT {
        return Err(Fatal::new(
            "usage",
            format!("plant 1 to {MAX_PLANT} canaries at a time"),
        ));
    }
    let client = reqwest::Client::new();
    let base = api_client::base_url(url);
    // A collision with a stored customer is refused by the server; a fresh draw (new
    // seed, new serial range) makes another one vanishingly unlikely.
    for _ in 0..3 {
        let mut rng = StdRng::from_os_rng();
        let first_serial = rand::random_range(10_000_000..1_000_000_000u64);
        let people = demo_data::people(&mut rng, count, first_serial);
        let mut body = String::new();
        for p in &people {
            body.push_str(
                &serde_json::to_string(p).map_err(|e| Fatal::new("canary", e.to_string()))?,
            );
            body.push('\n');
        }
        let request = client
            .post(format!("{base}/v1/canaries"))
            .bearer_auth(token)
            .header("content-type", "application/x-ndjson")
            .body(body);
        let response = api_client::send(request, &base).await?;
        let answer: serde_json::Value = match api_client::success(response, WHOSE).await {
            Ok(response) => response.json().await.unwrap_or_default(),
            Err(e) if e.code() == "canary_collision" => continue,
            Err(e) => return Err(e),
        };
        let ids = answer["ids"].as_array().into_iter().flatten();
        return Ok(ids
            .map(|id| id.as_str().unwrap_or_default().to_owned())
            .zip(people)
            .collect());
    }
    Err(Fatal::new(
        "canary_collision",
        "three draws of canaries collided with stored customers",
    ))
}

//! `custos canary plant N`: synthetic customers that look like any other, planted through
//! the running server; any later touch of one suspends the person (see custos-detector).

use rand::SeedableRng;
use rand::rngs::StdRng;

use custos::demo_data::{self, DemoCustomer};

use crate::Fatal;

/// `custos canary` subcommands.
#[derive(clap::Subcommand)]
pub enum CanaryCommand {
    /// Plant N canary customers; their ids go to standard output (keep them secret).
    Plant {
        /// How many.
        count: usize,
        /// The server's base URL.
        #[arg(long, default_value = "http://127.0.0.1:8700")]
        url: String,
        /// An admin's bearer token.
        #[arg(long, env = "CUSTOS_TOKEN", hide_env_values = true)]
        token: String,
    },
}

/// Most canaries one call plants (one import's worth).
const MAX_PLANT: usize = 10_000;

/// Runs one `custos canary` subcommand.
pub async fn run(command: CanaryCommand) -> Result<(), Fatal> {
    let CanaryCommand::Plant { count, url, token } = command;
    let planted = plant(&url, &token, count).await?;
    eprintln!("planted {count} canary customers; their ids (keep them secret):");
    for (id, _) in planted {
        println!("{id}");
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
        let response = client
            .post(format!("{}/v1/canaries", url.trim_end_matches('/')))
            .bearer_auth(token)
            .header("content-type", "application/x-ndjson")
            .body(body)
            .send()
            .await
            .map_err(|e| Fatal::new("http", e.to_string()))?;
        let status = response.status();
        let answer: serde_json::Value = response
            .json()
            .await
            .map_err(|e| Fatal::new("http", e.to_string()))?;
        if status == reqwest::StatusCode::CONFLICT && answer["error"]["code"] == "canary_collision"
        {
            continue;
        }
        if !status.is_success() {
            return Err(Fatal::new("http", format!("{status}: {answer}")));
        }
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

//! Canary customers planted through the API: synthetic people who look like any other
//! customer; any later touch of one suspends the person (see custos-detector).

use rand::SeedableRng;
use rand::rngs::StdRng;

use custos_client::{Answer, Client, Http};

use crate::Failure;
use crate::demo::data::{self, DemoCustomer};

/// Most canaries one call plants (one import's worth).
pub const MAX_PLANT: usize = 10_000;

/// Plants `count` canaries as the admin holding `token`; returns each canary's id with
/// the values it was planted with. A refusal is returned as the server's answer, for
/// the caller to word.
pub async fn plant(
    client: &Client<Http>,
    token: &str,
    count: usize,
) -> Result<Result<Vec<(String, DemoCustomer)>, Answer>, Failure> {
    if count == 0 || count > MAX_PLANT {
        return Err(Failure::new(
            "usage",
            format!("plant 1 to {MAX_PLANT} canaries at a time"),
        ));
    }
    // A collision with a stored customer is refused by the server; a fresh draw (new
    // seed, new serial range) makes another one vanishingly unlikely.
    for _ in 0..3 {
        let mut rng = StdRng::from_os_rng();
        let first_serial = rand::random_range(10_000_000..1_000_000_000u64);
        let people = data::people(&mut rng, count, first_serial);
        let answer = client
            .plant_canaries(token, custos_client::ndjson(&people)?)
            .await?;
        if answer.code() == "canary_collision" {
            continue;
        }
        if !answer.is_success() {
            return Ok(Err(answer));
        }
        let ids = answer.body["ids"].as_array().into_iter().flatten();
        return Ok(Ok(ids
            .map(|id| id.as_str().unwrap_or_default().to_owned())
            .zip(people)
            .collect()));
    }
    Err(Failure::new(
        "canary_collision",
        "three draws of canaries collided with stored customers",
    ))
}

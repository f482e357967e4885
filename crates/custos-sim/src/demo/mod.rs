//! The demo company: generated ([`data`]), loaded through the API ([`load`]), a short
//! working day with an insider and a canary search ([`activity`]), and canaries planted
//! through the API ([`canaries`], also `custos canary plant`).

pub mod activity;
pub mod canaries;
pub mod data;
pub mod load;

/// The demo's configuration, written to `DATA/demo.toml` at every start. The demo
/// company is minutes old: no one has a past working day, so the detector compares
/// people with the peers active today rather than waiting for five peers with a full day
/// behind them (`min_peers`). Agents call customers back through privacy numbers from a
/// small pool (`[relay] numbers`). The identity provider's groups `Support` and
/// `Partner agents` give roles to the people it provisions (`[scim] groups`). Everything
/// else is the default.
pub const CONFIG: &str = "\
# Written by `custos demo` at every start.
# A company minutes old has no past working days: compare people with the peers active today.
[detector.score.warmup]
min_peers = 0

# Privacy numbers: agents call customers back without seeing their numbers.
[relay]
numbers = [\"+8610000001\", \"+8610000002\", \"+8610000003\", \"+8610000004\"]

# People the identity provider provisions (SCIM, as the staff entry `idp`) get a role
# from the first of these groups they are in; in none, they are held without one.
[scim]
groups = [
  { group = \"Support\", role = \"support\" },
  { group = \"Partner agents\", role = \"support\", org = \"huaxin-bpo\" },
]
";

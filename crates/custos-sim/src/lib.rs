//! Synthetic companies and what drives them through Custos.
//!
//! Everything here reaches the vault the way a real client would, through the API and
//! its typed client ([`custos_client`]): over HTTP for the demo and the lookup benchmark,
//! in process (the gateway's router, with a simulated clock) for the simulator.
//!
//! * [`demo`] — the demo company ([`demo::data`]), loading it ([`demo::load`]) and its
//!   short working day with an insider and a canary ([`demo::activity`]); canaries
//!   planted through the API ([`demo::canaries`]).
//! * [`simulate`] — a company with insider scenarios, driven day by day, and what the
//!   protections caught.
//! * [`bench`] — the harnesses behind BENCHMARKS.md.
//! * [`Failure`], [`stdout`] and [`progress`] — what the harnesses and the binary's
//!   commands share to report.

pub mod bench;
pub mod demo;
mod failure;
pub mod progress;
pub mod simulate;
pub mod stdout;

pub use failure::{Ending, Failure, accepted};

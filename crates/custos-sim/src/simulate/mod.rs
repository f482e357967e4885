//! `custos simulate`: a synthetic company driven through the real gateway, with insider
//! scenarios mixed into its normal traffic, and the evaluation of what the protections
//! caught.
//!
//! Data flow: [`company`] draws the organisations and staff, [`scenario`] reads the
//! insider scenarios, [`plan`] turns both into each day's scripts (deterministic for a
//! seed), [`drive`] sends them as requests to the gateway in process (simulated clock,
//! same policy, quotas, ledger and detector as `custos serve`), and [`report`] compares
//! the outcome with what the same plan would have given the insiders unprotected;
//! [`replay`] reads the run's ledger back through the detector's model (for a run made
//! with its actions out of reach, and for the feature table),
//! [`export`] writes the run's feature table for other methods to score, and [`leak`]
//! cuts test leaks with ground truth from what insiders revealed, which [`trace_eval`]
//! traces to measure leak attribution. [`run`] is a whole run as `custos simulate` makes
//! it: options, data directory, configuration, the gateway, the reports.

pub mod company;
pub mod drive;
pub mod export;
pub mod leak;
pub mod plan;
pub mod replay;
pub mod report;
pub mod rng;
pub mod run;
pub mod scenario;
pub mod trace_eval;

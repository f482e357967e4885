//! `custos simulate`: the simulator's run (`custos_sim::simulate::run`), whose options
//! are its own.

use crate::Failure;

pub(crate) use custos_sim::simulate::run::Options as SimulateArgs;

/// Runs `custos simulate`.
pub(crate) async fn run(args: SimulateArgs) -> Result<(), Failure> {
    custos_sim::simulate::run::run(&args).await
}

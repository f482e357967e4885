//! Library side of the `custos` binary: the demo company generator, shared by
//! `custos demo`, `custos bench` and the integration tests.

pub mod demo_data;
pub mod demo_load;
pub mod simulate;

//! The demo company: generated ([`data`]), loaded through the API ([`load`]), a short
//! working day with an insider and a canary search ([`activity`]), and canaries planted
//! through the API ([`canaries`], also `custos canary plant`).

pub mod activity;
pub mod canaries;
pub mod data;
pub mod load;

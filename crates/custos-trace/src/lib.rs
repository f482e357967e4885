//! Leak attribution: from a list of customers found outside the company to ranked
//! suspects.
//!
//! The data flow, one module per step:
//!
//! 1. [`input`] reads a messy leaked file (CSV, TSV or plain text; UTF-8 or GB18030;
//!    any column order, with or without a header) into rows of normalised
//!    identifiers. Nothing it reads is kept: rows hold the normalised values only
//!    long enough to compute blind indexes.
//! 2. [`matching`] turns each row into the customers it names, through the store's
//!    blind indexes (the vault is never decrypted).
//! 3. [`rank`] weighs, for each staff member, the leaked customers they had revealed
//!    or viewed, by how many others had them too and by the chance a record came from
//!    elsewhere, and orders the suspects.
//! 4. [`report`] ties the steps together: [`trace`] gathers from the access log who
//!    held the matched customers in the window, ranks them, and reports.

pub mod input;
mod interner;
pub mod matching;
pub mod rank;
pub mod report;

pub use report::{STEPS, Step, Trace, TraceError, TraceOptions, TraceReport, parse_time, trace};

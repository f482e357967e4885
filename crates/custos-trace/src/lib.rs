//! Leak attribution: from a list of customers found outside the company to ranked
//! suspects.
//!
//! The data flow, one module per step:
//!
//! 1. [`input`] reads a messy leaked file (CSV, TSV or plain text; UTF-8 or GB18030;
//!    any column order, with or without a header) into rows of normalised
//!    identifiers. Nothing it reads is kept: rows hold the normalised values only
//!    long enough to compute blind indexes.
//! 2. Matching (in the binary, through the store's blind indexes; the vault is never
//!    decrypted) turns each row into the customers it names.
//! 3. [`rank`] weighs, for each staff member, the leaked customers they had revealed
//!    or viewed, by how many others had them too and by the chance a record came from
//!    elsewhere, and orders the suspects.

pub mod input;
pub mod rank;

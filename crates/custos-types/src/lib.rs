//! The vocabulary every Custos crate shares, defined once.
//!
//! An access record says who did what and how it was decided; the gateway writes it, the
//! ledger commits to it, the store indexes it, the detector and leak tracing read it.
//! The words they use are defined here, each as a closed enum whose stored and wire form
//! is exactly the word written in records since the first version:
//!
//! - [`Action`]: what a record says was done (`view`, `reveal`, `create_case`,
//!   `suspend_staff`, …), by people through the gateway and by the server itself;
//! - [`Decision`]: `allow`, `deny` or `error`;
//! - [`ContactChannel`]: how a relay reaches a customer (`call`, `email`, `sms`);
//! - [`Role`]: the roles staff can be given; [`RecordedRole`]: the role a record names,
//!   which is a staff role or one of the principals that are not staff (`system`,
//!   `customer`, `-` for a caller never authenticated);
//! - [`Provenance`]: where a case's contact came from (`verified`, `unverified`,
//!   `outbound`, `requested`);
//! - [`GrantKind`] and [`GrantStatus`]: access asked of an approver, or taken in an
//!   emergency (break-glass), and where it stands;
//! - [`facts`]: the tagged words of a record's `fields` that more than one crate writes
//!   or reads (the facts of a case, a malformed id, a step-up justification);
//! - [`clock`] and [`calendar`]: the current time in unix milliseconds, hours and days,
//!   and UTC calendar dates.
//!
//! Each enum's `as_str` gives its word, `FromStr` reads it back (anything else is an
//! [`UnknownWord`], never a panic) and serde uses the same word, so a record's bytes in
//! the ledger and its rows in the database do not change with the types. The Cedar
//! schema and policies and the SQL migrations spell the same words; they are the only
//! other places that do.
//!
//! This crate depends on no other Custos crate: it is the floor the others stand on.

#[macro_use]
mod word;
mod action;
pub mod calendar;
pub mod clock;
mod contact;
mod decision;
pub mod facts;
mod grant;
mod provenance;
mod role;

pub use action::Action;
pub use contact::{Channel, ContactChannel};
pub use decision::Decision;
pub use grant::{GrantKind, GrantStatus};
pub use provenance::Provenance;
pub use role::{CUSTOMER_ID, RecordedRole, Role, SYSTEM_ID, UNAUTHENTICATED_ID};
pub use word::UnknownWord;

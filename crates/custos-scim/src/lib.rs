//! The SCIM 2.0 wire format (RFC 7643, RFC 7644), free of any transport and store: the
//! User and Group resources Custos serves ([`resource`]), filters ([`filter`]), PATCH
//! ([`patch`]), and the discovery documents ([`discovery`]). Every refusal is a
//! [`ScimError`] with its `scimType`.
//!
//! The service (`custos-service`'s `provisioning`) decides what a resource does to a
//! staff entry; the gateway carries these documents over HTTP.

pub mod discovery;
mod error;
pub mod filter;
pub mod patch;
pub mod resource;

pub use error::{ScimError, ScimType};
pub use filter::Filter;
pub use resource::{GroupFields, Meta, Projection, UserFields};

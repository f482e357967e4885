//! The Custos HTTP API: routes that read a request, call the service
//! (`custos_service`) and turn its [`Recorded`](custos_service::Recorded) answer into a
//! response. No decision is made here: authentication, policy, quotas, the vault and the
//! ledger record are the service's.
//!
//! * [`api`]: the routes, one module per resource, and the OpenAPI description;
//! * [`record`]: the request's metadata in, the recorded answer out;
//! * [`input`]: bodies under their limit, query strings;
//! * [`error`]: the one mapping from service errors to statuses and the error envelope;
//! * [`rejection`]: the framework's own refusals in the same envelope.

pub mod api;
pub mod error;
pub mod input;
pub mod record;
pub mod rejection;

pub use api::router;

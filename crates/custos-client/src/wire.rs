//! The bodies and queries the client sends, as the API describes them (`/openapi.json`).

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Serialize;

/// `POST /v1/customers/{id}/reveal`.
#[derive(Clone, Debug, Serialize)]
pub struct RevealRequest<'a> {
    /// Fields to reveal: `name`, `phone`, `email`, `account_id`.
    pub fields: &'a [&'a str],
    /// The case the reveal is for.
    pub case: &'a str,
    /// Why (kept in the ledger).
    pub reason: &'a str,
    /// The justification a step-up restriction asks for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step_up_reason: Option<&'a str>,
}

/// `POST /v1/customers/{id}/contact`: reach the customer through a relay.
#[derive(Clone, Debug, Serialize)]
pub struct ContactRequest<'a> {
    /// The case the contact is for.
    pub case: &'a str,
    /// `call` (a privacy number), `email` or `sms`.
    pub channel: &'a str,
    /// An email's subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<&'a str>,
    /// The message of an email or SMS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<&'a str>,
}

/// `POST /v1/access-requests`: fields of a customer on one's own open case, for an
/// approver to decide.
#[derive(Clone, Debug, Serialize)]
pub struct NewAccessRequest<'a> {
    /// Customer id.
    pub customer: &'a str,
    /// The requester's open case for the customer.
    pub case: &'a str,
    /// The fields asked for.
    pub fields: &'a [&'a str],
    /// Why, for the approver.
    pub purpose: &'a str,
}

/// `POST /v1/access-requests/{id}/approve` or `…/deny`.
#[derive(Clone, Debug, Serialize)]
pub struct AccessDecision<'a> {
    /// Why.
    pub reason: &'a str,
    /// How long an approval holds, in minutes (the server's default when `None`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minutes: Option<u32>,
}

/// `POST /v1/break-glass`: fields of a customer at once, on one's own open case.
#[derive(Clone, Debug, Serialize)]
pub struct NewBreakGlass<'a> {
    /// Customer id.
    pub customer: &'a str,
    /// The caller's open case for the customer.
    pub case: &'a str,
    /// The fields taken.
    pub fields: &'a [&'a str],
    /// The emergency, in words (20 characters or more).
    pub reason: &'a str,
}

/// `POST /v1/cases`.
#[derive(Clone, Debug, Serialize)]
pub struct NewCase<'a> {
    /// Customer id.
    pub customer: &'a str,
    /// Staff id of the assignee.
    pub assignee: &'a str,
    /// One of phone, sms, chat, app, email, store.
    pub channel: &'a str,
    /// Why the customer contacted the company.
    pub reason: &'a str,
    /// Whether the customer started the contact.
    pub inbound: bool,
    /// The staff member on whose behalf the CRM opens the case.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<&'a str>,
    /// The contact behind the case, as the contact centre reported it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact: Option<&'a str>,
    /// The campaign of an outbound case.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub campaign: Option<&'a str>,
}

/// `POST /v1/contacts`: a contact the contact centre routed to an agent.
#[derive(Clone, Debug, Serialize)]
pub struct NewContact<'a> {
    /// One of phone, sms, chat, app, email, store.
    pub channel: &'a str,
    /// The caller's identifier as the channel received it.
    pub caller: CallerIdentifier<'a>,
    /// Staff id of the agent it was routed to.
    pub agent: &'a str,
    /// When the contact started, unix milliseconds (default: now).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<i64>,
}

/// The caller's identifier in a [`NewContact`].
#[derive(Clone, Copy, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallerIdentifier<'a> {
    /// The calling number.
    Phone(&'a str),
    /// The sender address.
    Email(&'a str),
    /// The customer app's signed assertion (a compact JWT), for an `app` contact.
    AppAssertion(&'a str),
}

/// `POST /v1/staff`.
#[derive(Clone, Debug, Serialize)]
pub struct NewStaff<'a> {
    /// Staff id.
    pub id: &'a str,
    /// Display name.
    pub name: &'a str,
    /// Role.
    pub role: custos_types::Role,
    /// Organisation.
    pub org: &'a str,
}

/// `GET /v1/customers?…`: exactly one identifier.
#[derive(Clone, Copy, Debug)]
pub enum Search<'a> {
    /// By phone number, in any common notation.
    Phone(&'a str),
    /// By email.
    Email(&'a str),
    /// By the company's account id.
    AccountId(&'a str),
}

/// Characters kept as they are in a query value: RFC 3986 unreserved.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

impl Search<'_> {
    /// The path and query of the search.
    pub fn path(&self) -> String {
        let (key, value) = match self {
            Search::Phone(v) => ("phone", v),
            Search::Email(v) => ("email", v),
            Search::AccountId(v) => ("account_id", v),
        };
        format!(
            "/v1/customers?{key}={}",
            utf8_percent_encode(value, QUERY_VALUE)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_values_are_percent_encoded() {
        assert_eq!(
            Search::Phone("+86 138-0013 8000").path(),
            "/v1/customers?phone=%2B86%20138-0013%208000"
        );
        assert_eq!(
            Search::Email("a&b=c@x.cn").path(),
            "/v1/customers?email=a%26b%3Dc%40x.cn"
        );
    }
}

//! How a relay reaches a customer without showing an agent their number or address.

vocabulary! {
    /// The channel of a reveal-free contact (`POST /v1/customers/{id}/contact`).
    pub enum ContactChannel as "contact channel" {
        /// A call through a privacy number bound to the agent and the customer.
        Call = "call",
        /// An email sent through the company's SMTP relay.
        Email = "email",
        /// An SMS sent through the company's SMS gateway.
        Sms = "sms",
    }
}

impl ContactChannel {
    /// The personal field the relay fills in (and that the contact is charged as a
    /// reveal of).
    pub fn field(self) -> &'static str {
        match self {
            ContactChannel::Call | ContactChannel::Sms => "phone",
            ContactChannel::Email => "email",
        }
    }
}

vocabulary! {
    /// The channel a customer's contact came through, and so a case's: what the contact
    /// centre reports (`POST /v1/contacts`) and the CRM names (`POST /v1/cases`).
    pub enum Channel as "channel" {
        /// A phone call.
        Phone = "phone",
        /// A text message.
        Sms = "sms",
        /// A chat on the company's site.
        Chat = "chat",
        /// The company's customer app.
        App = "app",
        /// An email.
        Email = "email",
        /// A visit to a store.
        Store = "store",
    }
}

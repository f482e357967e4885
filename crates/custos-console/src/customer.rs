//! The customer's page: every access to their record — when, which organisation and
//! role, a pseudonym for the person, why (the case), which fields were shown in full.

use axum::extract::State;
use maud::html;

use super::page::{document, when, when_cell};
use super::session::Who;
use super::{Page, Shared, Visitor};
use custos_service::transparency::CustomerAccesses;
use custos_types::facts::CaseFacts;
use custos_types::{Action, ContactChannel, Decision};

/// `GET /customer`.
pub(super) async fn accesses(State(console): State<Shared>, visitor: Visitor) -> Page {
    let Who::Customer { id, until } = &visitor.session.who else {
        return Err(visitor.not_for_you().into());
    };
    let list: CustomerAccesses = console
        .get(&visitor, &format!("/v1/customers/{id}/accesses"))
        .await?;
    Ok(document(
        "Who accessed my data",
        Some(&visitor.session),
        html! {
            p { "Every time someone at the company or one of its partner companies opened your record, searched for you or was refused, it is recorded in a tamper-evident ledger and listed here, newest first. Staff are shown by a pseudonym: the same person always has the same one." }
            p.muted { "This page is open until " (when(*until)) "." }
            @if list.accesses.is_empty() {
                p { "No one has accessed your record." }
            } @else {
                div.scroll { table #accesses .rows {
                    thead { tr { th { "When" } th { "Organisation" } th { "Role" } th { "Person" } th { "What" } th { "Why (case)" } } }
                    tbody { @for a in &list.accesses {
                        tr {
                            td data-label="When" { (when_cell(a.at)) }
                            td data-label="Organisation" { (a.org) }
                            td data-label="Role" { (a.role) }
                            td.id data-label="Person" { (a.staff) }
                            // One element per cell: a reflowed row puts each child in a grid cell.
                            td data-label="What" { span {
                                (what(&a.action, &a.fields))
                                @if a.decision != Decision::Allow { " — " strong.bad { "refused" } }
                            } }
                            td data-label="Why (case)" { @if let Some(c) = &a.case { (c.channel) ": " (c.reason) } @else { span.muted { "no case" } } }
                        }
                    } }
                } }
                @if list.truncated { p.muted { "Only the latest 10,000 accesses are listed." } }
            }
        },
    ))
}

/// An access in plain words.
fn what(action: &Action, fields: &[String]) -> String {
    let named = || {
        fields
            .iter()
            .map(|f| match f.as_str() {
                "account_id" => "account id",
                other => other,
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    match action {
        Action::View => "viewed your record (masked)".to_owned(),
        Action::Reveal => format!("saw in full: {}", named()),
        Action::Search => format!("searched for you by {}", named()),
        Action::CreateCase => "opened a case about you".to_owned(),
        Action::PostContact => match CaseFacts::from_fields(fields).channel.unwrap_or("phone") {
            // The app knows the customer by their sign-in (or by the number or address
            // they gave it): no number of theirs is implied.
            "app" => "you contacted us in our app".to_owned(),
            "email" => "you contacted us by email from your own address".to_owned(),
            channel => format!("you contacted us by {channel} from your own number"),
        },
        Action::CloseCase => "closed a case about you".to_owned(),
        Action::Contact => match custos_types::facts::contact_channel_of(fields) {
            Some(ContactChannel::Call) => {
                "called you through a privacy number, without seeing your number".to_owned()
            }
            Some(ContactChannel::Email) => {
                "emailed you through the company's relay, without seeing your address".to_owned()
            }
            Some(ContactChannel::Sms) => {
                "texted you through the company's relay, without seeing your number".to_owned()
            }
            None => "contacted you".to_owned(),
        },
        Action::ResolveCall => "the phone system connected a call to your number".to_owned(),
        other => other.as_str().replace('_', " "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_contact_says_how_the_channel_knew_the_customer() {
        let contact = |channel: &str| what(&Action::PostContact, &[format!("channel:{channel}")]);
        assert_eq!(contact("app"), "you contacted us in our app");
        assert_eq!(
            contact("email"),
            "you contacted us by email from your own address"
        );
        assert_eq!(
            contact("sms"),
            "you contacted us by sms from your own number"
        );
    }
}

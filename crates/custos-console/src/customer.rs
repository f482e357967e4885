//! The customer's page: every access to their record — when, which organisation and
//! role, a pseudonym for the person, why (the case), which fields were shown in full —
//! and their own copy (their data in full with that list), as JSON and as a printable
//! page.

use axum::extract::State;
use axum::http::header::CONTENT_DISPOSITION;
use axum::http::{HeaderValue, StatusCode};
use maud::{Markup, html};

use super::page::{document, when, when_cell};
use super::session::Who;
use super::{Page, Shared, Visitor};
use custos_service::dsar::CustomerCopy;
use custos_service::transparency::{CustomerAccess, CustomerAccesses};
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
            p { "Your own copy of the data we hold about you, with this list: "
                a href="/customer/copy" { "a page to print" } " or "
                a href="/customer/copy.json" download { "a file (JSON)" } "." }
            (accesses_table(&list.accesses, list.truncated))
        },
    ))
}

/// The accesses, newest first, as a table.
fn accesses_table(accesses: &[CustomerAccess], truncated: bool) -> Markup {
    html! {
        @if accesses.is_empty() {
            p { "No one has accessed your record." }
        } @else {
            div.scroll { table #accesses .rows {
                thead { tr { th { "When" } th { "Organisation" } th { "Role" } th { "Person" } th { "What" } th { "Why (case)" } } }
                tbody { @for a in accesses {
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
            @if truncated { p.muted { "Only the latest 10,000 accesses are listed." } }
        }
    }
}

/// The customer's copy from the API (recorded there), for the signed-in customer.
async fn copy_of(console: &Shared, visitor: &Visitor) -> Page<CustomerCopy> {
    let Who::Customer { id, .. } = &visitor.session.who else {
        return Err(visitor.not_for_you().into());
    };
    console
        .get(visitor, &format!("/v1/customers/{id}/copy"))
        .await
}

/// `GET /customer/copy`: the copy as a page to print.
pub(super) async fn copy_page(State(console): State<Shared>, visitor: Visitor) -> Page {
    let copy = copy_of(&console, &visitor).await?;
    let d = &copy.data;
    Ok(document(
        "My data",
        Some(&visitor.session),
        html! {
            p { "The data we hold about you, in full, as of " (when(copy.made_at)) ", and every access to it. Print this page or save it as a PDF to keep it." }
            table #my-data {
                tbody {
                    tr { th { "Name" } td { (d.name) } }
                    tr { th { "Phone" } td { (d.phone.as_deref().unwrap_or("—")) } }
                    tr { th { "Email" } td { (d.email.as_deref().unwrap_or("—")) } }
                    tr { th { "Account id" } td { (d.account_id.as_deref().unwrap_or("—")) } }
                    @for (key, value) in &d.attributes {
                        tr { th { (key) } td { (match value { serde_json::Value::String(s) => s.clone(), other => other.to_string() }) } }
                    }
                }
            }
            h2 { "Who accessed my data" }
            (accesses_table(&copy.accesses, copy.truncated))
        },
    ))
}

/// `GET /customer/copy.json`: the copy as a file.
pub(super) async fn copy_file(State(console): State<Shared>, visitor: Visitor) -> Page {
    let copy = copy_of(&console, &visitor).await?;
    let body = serde_json::to_string_pretty(&copy).map_err(|_| {
        super::page::problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            Some(&visitor.session),
            "internal",
            "Your copy could not be written out; try again.",
            None,
        )
    })?;
    let mut r = super::page::with_headers(StatusCode::OK, "application/json", body);
    r.headers_mut().insert(
        CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"my-data.json\""),
    );
    Ok(r)
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

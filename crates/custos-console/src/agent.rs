//! The agent's console: my open cases and what is left of my quotas, the masked
//! customer card of a case, contacting the customer through a relay (a privacy-number
//! call, an email, an SMS) without seeing their number or address, asking an approver
//! for a field on a case no channel vouches for, and revealing one field with a reason.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use custos_types::Provenance;
use maud::{Markup, html};
use serde::Deserialize;

use super::page::{self, csrf_field, document, when, when_cell};
use super::{Call, Page, Shared, Visitor};

#[derive(Deserialize)]
struct Me {
    limits: PerWindow,
    remaining: PerWindow,
    restricted: Option<Restricted>,
    open_cases: Vec<OpenCase>,
    grants: Vec<Grant>,
}

/// A grant in force (an approval or a break-glass), as `GET /v1/me` lists it.
#[derive(Deserialize)]
struct Grant {
    case: String,
    fields: Vec<String>,
    grant_until: Option<i64>,
}

/// A count per quota window: the ceilings now (lowered under a restriction), or what is
/// left of them.
#[derive(Deserialize)]
struct PerWindow {
    customers_per_day: Option<u32>,
    reveals_per_hour: Option<u32>,
    searches_per_day: Option<u32>,
}

/// A restriction on the agent; shown in the console's words (the API's note names
/// request fields).
#[derive(Deserialize)]
struct Restricted {
    kind: String,
    until: i64,
    quota_share: Option<f64>,
}

#[derive(Deserialize)]
struct OpenCase {
    id: String,
    customer: String,
    channel: String,
    reason: String,
    created_at: i64,
    provenance: Provenance,
}

/// A case's provenance in an agent's words.
fn provenance_words(provenance: Provenance) -> &'static str {
    match provenance {
        Provenance::Verified => {
            "verified: the customer contacted us from their own number or address, or signed in to our app"
        }
        Provenance::Unverified => {
            "unverified: the contact did not come from the customer's own number or address"
        }
        Provenance::Outbound => "outbound: a campaign call",
        Provenance::Requested => {
            "requested: opened at someone's request, with no contact behind it"
        }
    }
}

#[derive(Deserialize)]
struct Card {
    name: String,
    phone: Option<String>,
    email: Option<String>,
    account_id: Option<String>,
}

#[derive(Deserialize)]
struct Revealed {
    fields: serde_json::Map<String, serde_json::Value>,
}

#[derive(Deserialize)]
pub(super) struct RevealForm {
    csrf: String,
    field: String,
    reason: String,
    /// The step-up justification, sent to the API as `step_up_reason`.
    #[serde(default)]
    justification: String,
}

#[derive(Deserialize)]
pub(super) struct ContactForm {
    csrf: String,
    channel: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    text: String,
}

#[derive(Deserialize)]
pub(super) struct AskForm {
    csrf: String,
    field: String,
    purpose: String,
}

#[derive(Deserialize)]
pub(super) struct BreakGlassForm {
    csrf: String,
    field: String,
    reason: String,
}

#[derive(Deserialize)]
struct Asked {
    id: String,
}

#[derive(Deserialize)]
struct Granted {
    grant_until: Option<i64>,
}

#[derive(Deserialize)]
struct Contacted {
    virtual_number: Option<String>,
}

/// `GET /cases`: my open cases and quotas.
pub(super) async fn cases(State(console): State<Shared>, visitor: Visitor) -> Page {
    cases_page(&console, &visitor).await
}

async fn cases_page(console: &Shared, visitor: &Visitor) -> Page {
    visitor.staff_role()?;
    let me: Me = console.get(visitor, "/v1/me").await?;
    Ok(document(
        "My open cases",
        Some(&visitor.session),
        html! {
            (quotas(&me))
            @if me.open_cases.is_empty() {
                p { "No open cases are assigned to you. Cases are opened in the CRM when a customer contacts us; customer records open only through them." }
            } @else {
                div.scroll { table #cases .rows {
                    caption.muted { "Newest first. Open a case to see its customer's card." }
                    thead { tr { th { "Case" } th { "Reason" } th { "Channel" } th { "Contact" } th { "Opened" } } }
                    tbody {
                        @for c in &me.open_cases {
                            tr {
                                td.id data-label="Case" { a href={ "/cases/" (c.id) } { (c.id) } }
                                td data-label="Reason" { (c.reason) }
                                td data-label="Channel" { (c.channel) }
                                td data-label="Contact" { (c.provenance) }
                                td data-label="Opened" { (when_cell(c.created_at)) }
                            }
                        }
                    }
                } }
            }
        },
    ))
}

/// What is left of the caller's quotas, and any restriction in force.
fn quotas(me: &Me) -> Markup {
    let limits = &me.limits;
    let row = |what: &str, left: Option<u32>, limit: Option<u32>| {
        html! {
            tr {
                th scope="row" { (what) }
                td {
                    @match (left, limit) {
                        (Some(left), Some(limit)) => {
                            meter.meter min="0" max=(limit) value=(left) aria-hidden="true" {}
                            " " strong { (left) } " of " (limit) " left"
                        }
                        (Some(left), None) => { strong { (left) } " left" }
                        _ => { "no limit" }
                    }
                }
            }
        }
    };
    html! {
        section.card aria-labelledby="quota-title" {
            h2 #quota-title { "My quotas" }
            table #quotas {
                (row("Customers today", me.remaining.customers_per_day, limits.customers_per_day))
                (row("Field reveals this hour", me.remaining.reveals_per_hour, limits.reveals_per_hour))
                (row("Searches today", me.remaining.searches_per_day, limits.searches_per_day))
            }
            @if let Some(r) = &me.restricted {
                p.bad role="status" #restricted {
                    (restriction_words(&r.kind, r.until, r.quota_share))
                    " Security reviews the alert and may lift it sooner."
                }
            }
        }
    }
}

/// A restriction a risk alert put on the agent (`kind` as the API names it, ending at
/// `until`, leaving `quota_share` of each limit), in words: for the quota box and for a
/// refusal it caused.
pub(super) fn restriction_words(kind: &str, until: i64, quota_share: Option<f64>) -> String {
    let until = when(until);
    let lowered = match quota_share {
        Some(share) => format!("to {:.0}% of their limits ", share * 100.0),
        None => String::new(),
    };
    if kind == "lower_quota" {
        format!(
            "A risk alert on your recent access lowered your quotas {lowered}until {until}; until then every reveal needs a step-up justification."
        )
    } else {
        format!(
            "A risk alert on your recent access requires a step-up justification with every reveal until {until}."
        )
    }
}

/// The open case `case` of the caller, or the page saying it is not one.
fn find_case<'a>(me: &'a Me, case: &str, visitor: &Visitor) -> Page<&'a OpenCase> {
    me.open_cases.iter().find(|c| c.id == case).ok_or_else(|| {
        page::problem(
            StatusCode::FORBIDDEN,
            Some(&visitor.session),
            "no_open_case",
            "This case is not open and assigned to you, so its customer's record does not open.",
            Some(html! {
                p { "If the customer is in contact with you, ask for a case to be opened in the CRM; it then appears under " a href="/cases" { "My cases" } "." }
            }),
        )
        .into()
    })
}

/// `GET /cases/{case}`: the masked customer card, with the reveal form.
pub(super) async fn card(
    State(console): State<Shared>,
    visitor: Visitor,
    Path(case): Path<String>,
) -> Page {
    card_page(&console, &visitor, &case).await
}

async fn card_page(console: &Shared, visitor: &Visitor, case: &str) -> Page {
    visitor.staff_role()?;
    let me: Me = console.get(visitor, "/v1/me").await?;
    let open = find_case(&me, case, visitor)?;
    let call = Call {
        case: Some(case.to_owned()),
        ..Call::default()
    };
    let card: Card = console
        .call_as(
            visitor,
            Method::GET,
            &format!("/v1/customers/{}", open.customer),
            call,
        )
        .await
        .decode(visitor)?;
    let values = [
        ("name", Some(card.name.as_str())),
        ("phone", card.phone.as_deref()),
        ("email", card.email.as_deref()),
        ("account_id", card.account_id.as_deref()),
    ];
    Ok(document(
        "Customer card",
        Some(&visitor.session),
        html! {
            p.muted { "Case " span.id { (open.id) } " · " (open.channel) " · opened " (when(open.created_at)) ". Values are masked; reveal one field only when the conversation needs it." }
            p #case-reason { strong { "Reason: " } (open.reason) }
            p #case-provenance { strong { "Contact: " } (provenance_words(open.provenance)) }
            section.card aria-label="Customer" {
                dl.fields {
                    @for (field, value) in values {
                        dt { (label(field)) }
                        dd { (value.unwrap_or("—")) }
                    }
                }
            }
            (grants_on(&me, open))
            (contact_form(visitor, open))
            @if needs_approval(open.provenance) {
                (ask_form(visitor, open, &values))
            }
            (reveal_form(visitor, open, &values, me.restricted.is_some()))
            (break_glass_form(visitor, open, &values))
            (quotas(&me))
        },
    ))
}

/// Call, email or text the customer through the company's relays: offered before the
/// reveal, since it reaches the customer without showing their number or address.
fn contact_form(visitor: &Visitor, case: &OpenCase) -> Markup {
    html! {
        form.stack method="post" action={ "/cases/" (case.id) "/contact" } aria-labelledby="contact-title" {
            h2 #contact-title { "Contact the customer" }
            (csrf_field(&visitor.session))
            fieldset {
                legend { "How" }
                label { input type="radio" name="channel" value="call" checked; " Call (privacy number)" }
                label { input type="radio" name="channel" value="email"; " Email" }
                label { input type="radio" name="channel" value="sms"; " SMS" }
            }
            label for="subject" { "Subject (email only)" }
            input #subject name="subject" maxlength="200";
            label for="text" { "Message (email or SMS)" }
            textarea #text name="text" rows="3" maxlength="5000" {}
            p.muted { "Custos fills in the number or address; you never see it. Counts like a reveal of the phone (call, SMS) or email." }
            button type="submit" { "Contact" }
        }
    }
}

/// Whether the default policy wants an approval before a reveal on a case of this
/// provenance: no channel vouches for the contact behind it.
fn needs_approval(provenance: Provenance) -> bool {
    matches!(provenance, Provenance::Unverified | Provenance::Requested)
}

/// The grants in force on `case`: what an approver (or a break-glass) opened.
fn grants_on(me: &Me, case: &OpenCase) -> Markup {
    let grants: Vec<&Grant> = me.grants.iter().filter(|g| g.case == case.id).collect();
    html! {
        @if !grants.is_empty() {
            ul #grants {
                @for g in grants {
                    li { "Granted: " (g.fields.iter().map(|f| label(f)).collect::<Vec<_>>().join(", "))
                        @if let Some(until) = g.grant_until { " until " (when(until)) } }
                }
            }
        }
    }
}

/// Asks a company team lead for one field on a case no channel vouches for.
fn ask_form(visitor: &Visitor, case: &OpenCase, values: &[(&str, Option<&str>)]) -> Markup {
    html! {
        form.stack method="post" action={ "/cases/" (case.id) "/ask" } aria-labelledby="ask-title" {
            h2 #ask-title { "Ask for access" }
            p.muted { "No channel vouches for this contact, so a reveal needs a company team lead's approval. Say what the conversation needs; the approver sees your purpose, the ledger records only that you asked." }
            (csrf_field(&visitor.session))
            label for="ask-field" { "Field" }
            select #ask-field name="field" required {
                (field_options(values))
            }
            label for="purpose" { "Purpose" }
            textarea #purpose name="purpose" rows="2" minlength="3" maxlength="500" required {}
            button type="submit" { "Ask for access" }
        }
    }
}

/// An option for each field the card has a value of.
fn field_options(values: &[(&str, Option<&str>)]) -> Markup {
    html! {
        @for (field, value) in values {
            @if value.is_some() { option value=(field) { (label(field)) } }
        }
    }
}

fn reveal_form(
    visitor: &Visitor,
    case: &OpenCase,
    values: &[(&str, Option<&str>)],
    restricted: bool,
) -> Markup {
    html! {
        form.stack method="post" action={ "/cases/" (case.id) "/reveal" } aria-labelledby="reveal-title" {
            h2 #reveal-title { "Reveal a field" }
            (csrf_field(&visitor.session))
            label for="field" { "Field" }
            select #field name="field" required {
                (field_options(values))
            }
            label for="reason" { "Why you need it in full" }
            textarea #reason name="reason" rows="2" minlength="3" maxlength="500" required {}
            @if restricted {
                label for="justification" { "Step-up justification (at least 20 characters)" }
                textarea #justification name="justification" rows="2" minlength="20" maxlength="1000" required {}
            }
            p.muted { "The reveal is recorded with your reason's existence (not its text) and counts against your hourly reveal quota." }
            button type="submit" { "Reveal" }
        }
    }
}

/// Takes one field at once in an emergency: folded away below the reveal, since it is
/// the last resort (alerted, reviewed by two analysts, rationed per person).
fn break_glass_form(visitor: &Visitor, case: &OpenCase, values: &[(&str, Option<&str>)]) -> Markup {
    html! {
        details #break-glass {
            summary { "Emergency access (break-glass)" }
            form.stack method="post" action={ "/cases/" (case.id) "/break-glass" } aria-labelledby="break-glass-title" {
                h2 #break-glass-title { "Break glass" }
                p.muted { "Only when the customer cannot wait for an approval: the field opens on this case at once, for a short time. It raises an alert at once, two analysts review it, and each person has only a few in any 30 days." }
                (csrf_field(&visitor.session))
                label for="break-glass-field" { "Field" }
                select #break-glass-field name="field" required {
                    (field_options(values))
                }
                label for="break-glass-reason" { "The emergency, in words (at least 20 characters)" }
                textarea #break-glass-reason name="reason" rows="2" minlength="20" maxlength="1000" required {}
                button type="submit" { "Break glass" }
            }
        }
    }
}

/// `POST /cases/{case}/reveal`: reveals one field and shows it.
pub(super) async fn reveal(
    State(console): State<Shared>,
    visitor: Visitor,
    Path(case): Path<String>,
    Form(form): Form<RevealForm>,
) -> Page {
    reveal_page(&console, &visitor, &case, form).await
}

async fn reveal_page(console: &Shared, visitor: &Visitor, case: &str, form: RevealForm) -> Page {
    visitor.staff_role()?;
    visitor.check_csrf(&form.csrf)?;
    let me: Me = console.get(visitor, "/v1/me").await?;
    let open = find_case(&me, case, visitor)?;
    let mut body = serde_json::json!({
        "fields": [form.field],
        "case": open.id,
        "reason": form.reason,
    });
    if !form.justification.trim().is_empty() {
        body["step_up_reason"] = serde_json::Value::String(form.justification);
    }
    let revealed: Revealed = console
        .post(
            visitor,
            &format!("/v1/customers/{}/reveal", open.customer),
            Some(&body),
        )
        .await?;
    let me: Me = console.get(visitor, "/v1/me").await?;
    Ok(document(
        "Revealed",
        Some(&visitor.session),
        html! {
            section.card aria-live="polite" {
                dl.fields {
                    @for (field, value) in &revealed.fields {
                        dt { (label(field)) }
                        dd.revealed #revealed-value { (value.as_str().unwrap_or("—")) }
                    }
                }
                p.muted { "Shown once, not kept by the console. Leaving this page hides it." }
            }
            p { a href={ "/cases/" (open.id) } { "Back to the customer card" } }
            (quotas(&me))
        },
    ))
}

/// `POST /cases/{case}/ask`: asks for one field on the case, for an approver to decide.
pub(super) async fn ask(
    State(console): State<Shared>,
    visitor: Visitor,
    Path(case): Path<String>,
    Form(form): Form<AskForm>,
) -> Page {
    ask_page(&console, &visitor, &case, form).await
}

async fn ask_page(console: &Shared, visitor: &Visitor, case: &str, form: AskForm) -> Page {
    visitor.staff_role()?;
    visitor.check_csrf(&form.csrf)?;
    let me: Me = console.get(visitor, "/v1/me").await?;
    let open = find_case(&me, case, visitor)?;
    let body = field_request(open, form.field, ("purpose", form.purpose));
    let asked: Asked = console
        .post(visitor, "/v1/access-requests", Some(&body))
        .await?;
    Ok(document(
        "Access asked for",
        Some(&visitor.session),
        html! {
            section.card aria-live="polite" {
                p #asked { "Request " span.id { (asked.id) } " waits for a company team lead. Once approved, the field opens on this case until the grant ends; the card lists it." }
            }
            p { a href={ "/cases/" (open.id) } { "Back to the customer card" } }
        },
    ))
}

/// The body of an access request or a break-glass: one field of the case's customer,
/// with the words the call asks for (`purpose`, `reason`).
fn field_request(
    open: &OpenCase,
    field: String,
    (key, words): (&str, String),
) -> serde_json::Value {
    let mut body = serde_json::json!({
        "customer": open.customer,
        "case": open.id,
        "fields": [field],
    });
    body[key] = serde_json::Value::String(words);
    body
}

/// `POST /cases/{case}/break-glass`: takes one field on the case at once.
pub(super) async fn break_glass(
    State(console): State<Shared>,
    visitor: Visitor,
    Path(case): Path<String>,
    Form(form): Form<BreakGlassForm>,
) -> Page {
    break_glass_page(&console, &visitor, &case, form).await
}

async fn break_glass_page(
    console: &Shared,
    visitor: &Visitor,
    case: &str,
    form: BreakGlassForm,
) -> Page {
    visitor.staff_role()?;
    visitor.check_csrf(&form.csrf)?;
    let me: Me = console.get(visitor, "/v1/me").await?;
    let open = find_case(&me, case, visitor)?;
    let body = field_request(open, form.field, ("reason", form.reason));
    let granted: Granted = console
        .post(visitor, "/v1/break-glass", Some(&body))
        .await?;
    Ok(document(
        "Emergency access granted",
        Some(&visitor.session),
        html! {
            section.card aria-live="polite" {
                p #break-glass-granted {
                    "The field is open on this case"
                    @if let Some(until) = granted.grant_until { " until " (when(until)) }
                    ". An alert was raised; two analysts will review it."
                }
            }
            p { a href={ "/cases/" (open.id) } { "Back to the customer card" } }
            (quotas(&me))
        },
    ))
}

/// `POST /cases/{case}/contact`: contacts the case's customer through a relay.
pub(super) async fn contact(
    State(console): State<Shared>,
    visitor: Visitor,
    Path(case): Path<String>,
    Form(form): Form<ContactForm>,
) -> Page {
    contact_page(&console, &visitor, &case, form).await
}

async fn contact_page(console: &Shared, visitor: &Visitor, case: &str, form: ContactForm) -> Page {
    visitor.staff_role()?;
    visitor.check_csrf(&form.csrf)?;
    let me: Me = console.get(visitor, "/v1/me").await?;
    let open = find_case(&me, case, visitor)?;
    let mut body = serde_json::json!({"case": open.id, "channel": form.channel});
    // Only what the channel carries: a call takes no message, an SMS no subject.
    if form.channel == "email" {
        body["subject"] = serde_json::Value::String(form.subject);
    }
    if form.channel != "call" {
        body["text"] = serde_json::Value::String(form.text);
    }
    let contacted: Contacted = console
        .post(
            visitor,
            &format!("/v1/customers/{}/contact", open.customer),
            Some(&body),
        )
        .await?;
    let me: Me = console.get(visitor, "/v1/me").await?;
    Ok(document(
        "Contacted",
        Some(&visitor.session),
        html! {
            section.card aria-live="polite" {
                @match &contacted.virtual_number {
                    Some(number) => p { "Dial " strong #virtual-number { (number) } ": the phone system connects you to the customer while this case is open. Their number is never shown." },
                    None => p #contact-sent { "Sent through the company's relay." },
                }
            }
            p { a href={ "/cases/" (open.id) } { "Back to the customer card" } }
            (quotas(&me))
        },
    ))
}

fn label(field: &str) -> &str {
    match field {
        "name" => "Name",
        "phone" => "Phone",
        "email" => "Email",
        "account_id" => "Account id",
        other => other,
    }
}

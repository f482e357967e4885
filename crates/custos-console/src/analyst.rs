//! The analyst's console: the alert queue, an alert with the ledger entries behind it,
//! acknowledge / dismiss / suspend / resume, and the activity of a person against their
//! peers and of a whole (partner) company.

use axum::Form;
use axum::extract::{Path, Query, State};
use maud::{Markup, html};
use serde::Deserialize;

use super::chart;
use super::page::{self, age, csrf_field, document, when, when_cell};
use super::{Page, Shared, Visitor, return_to, segment};
use custos_service::alerts::reviews_needed;
use custos_store::{AccessRecord, AlertRecord};

use custos_gateway::api::{OrgActivity, PersonActivity};

/// Ledger entries an alert's page lists at a time.
const ENTRIES_PER_PAGE: usize = 50;

/// Reasons the queue shows of each alert (its page shows them all).
const QUEUE_REASONS: usize = 3;

#[derive(Deserialize)]
struct AlertList {
    alerts: Vec<AlertRecord>,
}

/// Ledger entries as `GET /v1/ledger/entries` gives them.
#[derive(Deserialize)]
pub(super) struct EntryList {
    pub(super) entries: Vec<AccessRecord>,
}

#[derive(Deserialize)]
pub(super) struct QueueQuery {
    status: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct AlertQuery {
    /// The page of the cited entries, from 1.
    page: Option<usize>,
}

#[derive(Deserialize)]
pub(super) struct ActForm {
    csrf: String,
    /// Where to go back to after the act.
    back: Option<String>,
}

/// `GET /alerts`: the queue, open alerts by default.
pub(super) async fn queue(
    State(console): State<Shared>,
    visitor: Visitor,
    Query(q): Query<QueueQuery>,
) -> Page {
    queue_page(&console, &visitor, q).await
}

async fn queue_page(console: &Shared, visitor: &Visitor, q: QueueQuery) -> Page {
    visitor.analyst()?;
    let status = match q.status.as_deref() {
        Some("acknowledged") => "acknowledged",
        Some("dismissed") => "dismissed",
        Some("all") => "all",
        _ => "open",
    };
    let uri = match status {
        "all" => "/v1/alerts?limit=500".to_owned(),
        s => format!("/v1/alerts?status={s}&limit=500"),
    };
    let list: AlertList = console.get(visitor, &uri).await?;
    let now = custos_types::clock::now_millis();
    Ok(document(
        "Alerts",
        Some(&visitor.session),
        html! {
            nav.actions aria-label="Alert status" {
                @for s in ["open", "acknowledged", "dismissed", "all"] {
                    @if s == status { strong aria-current="page" { (s) } } @else { a href={ "/alerts?status=" (s) } { (s) } }
                }
            }
            @if list.alerts.is_empty() {
                p { "No " (status) " alerts." }
            } @else {
                div.scroll { table #alerts .rows {
                    thead { tr { th { "Severity" } th { "Person" } th { "Org" } th { "Why" } th { "Age" } th { "Done" } th { "Status" } } }
                    tbody {
                        @for a in &list.alerts {
                            tr {
                                td data-label="Severity" class={ "sev-" (a.severity) } { (a.severity) }
                                td.id data-label="Person" { a href={ "/staff/" (a.staff_id) } { (a.staff_id) } }
                                td.id data-label="Org" { a href={ "/orgs/" (a.org) } { (a.org) } }
                                td data-label="Why" { div {
                                    a href={ "/alerts/" (a.id) } { (kind_words(&a.kind)) }
                                    (why(a, QUEUE_REASONS))
                                } }
                                td data-label="Age" { (age(a.created_at, now)) }
                                td data-label="Done" { (action_words(&a.action)) }
                                td data-label="Status" {
                                    (a.status)
                                    @if let (Some(needed), "open") = (reviews_needed(&a.kind), a.status.as_str()) {
                                        " (" (a.reviewed_by.len()) " of " (needed) " reviews)"
                                    }
                                }
                            }
                        }
                    }
                } }
            }
        },
    ))
}

/// An alert's kind in words (`risk_lower_quota`: "risk lower quota").
fn kind_words(kind: &str) -> String {
    kind.replace('_', " ")
}

/// The detector's model puts a risk alert's score against its threshold first; the
/// reasons after it say in plain words what drove the score.
fn score_line(alert: &AlertRecord) -> Option<&str> {
    alert
        .kind
        .starts_with("risk_")
        .then(|| alert.reasons.first().map(String::as_str))
        .flatten()
}

/// An alert's reasons in plain words, strongest first, at most `top` of them: for a
/// risk alert what drove its score ([`score_line`] says only how far it went).
fn why(alert: &AlertRecord, top: usize) -> Markup {
    let plain = match score_line(alert) {
        Some(_) if alert.reasons.len() > 1 => &alert.reasons[1..],
        _ => &alert.reasons[..],
    };
    html! {
        ul.reasons {
            @for r in plain.iter().take(top) { li { (r) } }
            @if plain.len() > top { li.muted { "and " (plain.len() - top) " more" } }
        }
    }
}

fn action_words(action: &str) -> &str {
    match action {
        "suspended" => "suspended",
        "quota_lowered" => "quotas lowered",
        "step_up_required" => "step-up required",
        _ => "nothing yet",
    }
}

/// `GET /alerts/{id}?page=N`: an alert, the entries behind it (a page of them), and
/// what can be done.
pub(super) async fn alert(
    State(console): State<Shared>,
    visitor: Visitor,
    Path(id): Path<String>,
    Query(q): Query<AlertQuery>,
) -> Page {
    alert_page(&console, &visitor, &id, q.page).await
}

async fn alert_page(console: &Shared, visitor: &Visitor, id: &str, page: Option<usize>) -> Page {
    visitor.analyst()?;
    let alert: AlertRecord = console
        .get(visitor, &format!("/v1/alerts/{}", segment(id)))
        .await?;
    let cited = alert.entries.len();
    let pages = cited.div_ceil(ENTRIES_PER_PAGE).max(1);
    // Bounded: a page past the end shows the last one.
    let page = page.unwrap_or(1).clamp(1, pages);
    let first = (page - 1) * ENTRIES_PER_PAGE;
    let shown = &alert.entries[first..cited.min(first + ENTRIES_PER_PAGE)];
    let entries = entries(console, visitor, shown).await?;
    // The person's status now, so that only the action that fits it is offered.
    let person: PersonActivity = console
        .get(
            visitor,
            &format!("/v1/staff/{}/activity?hours=1", segment(&alert.staff_id)),
        )
        .await?;
    let back = format!("/alerts/{}", alert.id);
    let at_page = |n: usize| format!("/alerts/{}?page={n}#entries", alert.id);
    // An alert that needs several analysts (a break-glass) takes each one's review once;
    // acknowledging or dismissing it is that review.
    let needed = reviews_needed(&alert.kind);
    let reviewed_by_me = visitor
        .staff_id()
        .is_some_and(|me| alert.reviewed_by.iter().any(|r| r == me));
    let (acknowledge, dismiss) = match needed {
        Some(_) => (
            "Review and acknowledge",
            "Review and dismiss as a false alarm",
        ),
        None => ("Acknowledge", "Dismiss as a false alarm"),
    };
    Ok(document(
        &format!("Alert: {}", kind_words(&alert.kind)),
        Some(&visitor.session),
        html! {
            section.card {
                dl.fields {
                    dt { "Severity" } dd class={ "sev-" (alert.severity) } { (alert.severity) }
                    dt { "Person" } dd.id { a href={ "/staff/" (alert.staff_id) } { (alert.staff_id) } }
                    dt { "Org" } dd.id { a href={ "/orgs/" (alert.org) } { (alert.org) } }
                    dt { "Raised" } dd { (when(alert.created_at)) }
                    dt { "Detector did" } dd { (action_words(&alert.action)) }
                    dt { "Status" } dd #alert-status { (alert.status) }
                    @if let Some(needed) = needed {
                        dt { "Reviews" }
                        dd #alert-reviews {
                            (alert.reviewed_by.len()) " of " (needed) " different analysts"
                            @if !alert.reviewed_by.is_empty() { ": " (alert.reviewed_by.join(", ")) }
                        }
                    }
                }
                h2 { "Why" }
                @if let Some(score) = score_line(&alert) { p #score { (score) } }
                (why(&alert, usize::MAX))
            }
            @if reviewed_by_me && alert.status == "open" {
                p #reviewed-already { "You reviewed this alert. Another analyst must review it before it leaves the queue." }
            }
            div.actions {
                @if alert.status == "open" && !reviewed_by_me {
                    (act_button(visitor, &format!("/alerts/{}/acknowledge", alert.id), acknowledge, &back, "secondary"))
                }
                @if alert.status != "dismissed" && !reviewed_by_me {
                    (act_button(visitor, &format!("/alerts/{}/dismiss", alert.id), dismiss, &back, "secondary"))
                }
                @if person.status == "active" {
                    (act_button(visitor, &format!("/staff/{}/suspend", alert.staff_id), "Suspend this person", &back, "danger"))
                } @else {
                    (act_button(visitor, &format!("/staff/{}/resume", alert.staff_id), "Resume this person", &back, "secondary"))
                }
            }
            h2 #entries { "Ledger entries behind it" }
            p.muted #entries-shown {
                @if pages > 1 {
                    "Entries " (first + 1) "–" (first + shown.len()) " of " (cited) ", oldest first."
                } @else {
                    (cited) @if cited == 1 { " entry." } @else { " entries, oldest first." }
                }
            }
            (entry_table(&entries))
            @if pages > 1 {
                nav.actions aria-label="Pages of entries" {
                    @if page > 1 { a rel="prev" href=(at_page(page - 1)) { "Previous " (ENTRIES_PER_PAGE) } }
                    span { "Page " (page) " of " (pages) }
                    @if page < pages { a rel="next" href=(at_page(page + 1)) { "Next " (ENTRIES_PER_PAGE.min(cited - first - shown.len())) } }
                }
            }
        },
    ))
}

/// The ledger entries at `indexes` (a page of them), read in as few calls as their
/// spread allows.
async fn entries(console: &Shared, visitor: &Visitor, indexes: &[u64]) -> Page<Vec<AccessRecord>> {
    let mut wanted: Vec<u64> = indexes.to_vec();
    wanted.sort_unstable();
    let mut found = Vec::new();
    let mut i = 0;
    while i < wanted.len() {
        let from = wanted[i];
        let span = wanted[i..].iter().take_while(|&&x| x - from < 1000).count();
        let last = wanted[i + span - 1];
        let list: EntryList = console
            .get(
                visitor,
                &format!("/v1/ledger/entries?from={from}&limit={}", last - from + 1),
            )
            .await?;
        found.extend(list.entries.into_iter().filter(|e| {
            u64::try_from(e.seq).is_ok_and(|seq| wanted[i..i + span].binary_search(&seq).is_ok())
        }));
        i += span;
    }
    Ok(found)
}

/// A table of ledger entries, each linking to its inclusion proof.
pub(super) fn entry_table(entries: &[AccessRecord]) -> Markup {
    html! {
        div.scroll { table.entries.rows {
            thead { tr { th { "Index" } th { "When" } th { "Who" } th { "Action" } th { "Customer" } th { "Fields" } th { "Case" } th { "Decision" } } }
            tbody {
                @for e in entries {
                    tr {
                        td data-label="Index" { a href={ "/ledger/entry?index=" (e.seq) } { (e.seq) } }
                        td data-label="When" { (when_cell(e.at)) }
                        td.id data-label="Who" { (e.staff_id) }
                        td data-label="Action" { (e.action) }
                        td.id data-label="Customer" { (e.customer_id.as_deref().unwrap_or("")) }
                        td data-label="Fields" { (e.fields.join(", ")) }
                        td.id data-label="Case" { (e.case_id.as_deref().unwrap_or("")) }
                        td data-label="Decision" { (e.decision) " (" (e.reason_code) ")" }
                    }
                }
            }
        } }
    }
}

fn act_button(visitor: &Visitor, action: &str, text: &str, back: &str, class: &str) -> Markup {
    html! {
        form.inline method="post" action=(action) {
            (csrf_field(&visitor.session))
            input type="hidden" name="back" value=(back);
            button class=(class) type="submit" { (text) }
        }
    }
}

/// `POST /alerts/{id}/{acknowledge|dismiss}`.
pub(super) async fn alert_act(
    State(console): State<Shared>,
    visitor: Visitor,
    Path((id, act)): Path<(String, String)>,
    Form(form): Form<ActForm>,
) -> Page {
    if !matches!(act.as_str(), "acknowledge" | "dismiss") {
        return Err(visitor.not_for_you().into());
    }
    act_on(
        &console,
        &visitor,
        &format!("/v1/alerts/{}/{act}", segment(&id)),
        form,
    )
    .await
}

/// `POST /staff/{id}/{suspend|resume}`.
pub(super) async fn person_act(
    State(console): State<Shared>,
    visitor: Visitor,
    Path((id, act)): Path<(String, String)>,
    Form(form): Form<ActForm>,
) -> Page {
    if !matches!(act.as_str(), "suspend" | "resume") {
        return Err(visitor.not_for_you().into());
    }
    act_on(
        &console,
        &visitor,
        &format!("/v1/staff/{}/{act}", segment(&id)),
        form,
    )
    .await
}

async fn act_on(console: &Shared, visitor: &Visitor, uri: &str, form: ActForm) -> Page {
    visitor.analyst()?;
    visitor.check_csrf(&form.csrf)?;
    console
        .post::<serde_json::Value>(visitor, uri, None)
        .await?;
    // Back only to one of the console's own pages.
    let back = return_to(form.back.as_deref(), "/alerts");
    Ok(page::see_other(back, &[]))
}

/// `GET /staff/{id}`: a person's last 24 hours against their peers and quota.
pub(super) async fn person(
    State(console): State<Shared>,
    visitor: Visitor,
    Path(id): Path<String>,
) -> Page {
    person_page(&console, &visitor, &id).await
}

async fn person_page(console: &Shared, visitor: &Visitor, id: &str) -> Page {
    visitor.analyst()?;
    let a: PersonActivity = console
        .get(
            visitor,
            &format!("/v1/staff/{}/activity?hours=24", segment(id)),
        )
        .await?;
    let list: AlertList = console.get(visitor, "/v1/alerts?limit=1000").await?;
    let back = format!("/staff/{}", a.id);
    let points: Vec<chart::Point> = a
        .hours
        .iter()
        .map(|h| chart::Point {
            start: h.start,
            views: h.views as f64,
            reveals: h.reveals as f64,
            peer_reveals: Some(h.peer_reveals),
        })
        .collect();
    Ok(document(
        &format!("{} ({})", a.name, a.id),
        Some(&visitor.session),
        html! {
            p { (a.role) " at " a href={ "/orgs/" (a.org) } { (a.org) } " · status "
                strong #person-status class=(if a.status == "active" { "ok" } else { "bad" }) { (a.status) } }
            div.actions {
                @if a.status == "active" {
                    (act_button(visitor, &format!("/staff/{}/suspend", a.id), "Suspend", &back, "danger"))
                } @else {
                    (act_button(visitor, &format!("/staff/{}/resume", a.id), "Resume", &back, "secondary"))
                }
            }
            h2 { "Last 24 hours, per hour" }
            (chart::render(&points, a.reveals_per_hour, &format!("median of {} peers ({} at {})", a.peers, a.role, a.org)))
            h2 { "Alerts" }
            (alerts_of(&list.alerts, |al| al.staff_id == a.id))
        },
    ))
}

fn alerts_of(alerts: &[AlertRecord], keep: impl Fn(&AlertRecord) -> bool) -> Markup {
    let mine: Vec<&AlertRecord> = alerts.iter().filter(|a| keep(a)).collect();
    html! {
        @if mine.is_empty() { p { "None." } } @else {
            ul { @for a in mine {
                li { span class={ "sev-" (a.severity) } { (a.severity) } " · " (when(a.created_at)) " · "
                     a href={ "/alerts/" (a.id) } { (kind_words(&a.kind)) } " · " (a.status)
                     (why(a, 1)) }
            } }
        }
    }
}

/// `GET /orgs/{org}`: a company's last 24 hours, in total and per person.
pub(super) async fn org(
    State(console): State<Shared>,
    visitor: Visitor,
    Path(org): Path<String>,
) -> Page {
    org_page(&console, &visitor, &org).await
}

async fn org_page(console: &Shared, visitor: &Visitor, org: &str) -> Page {
    visitor.analyst()?;
    let a: OrgActivity = console
        .get(
            visitor,
            &format!("/v1/orgs/{}/activity?hours=24", segment(org)),
        )
        .await?;
    let list: AlertList = console.get(visitor, "/v1/alerts?limit=1000").await?;
    let points: Vec<chart::Point> = a
        .hours
        .iter()
        .map(|h| chart::Point {
            start: h.start,
            views: h.views as f64,
            reveals: h.reveals as f64,
            peer_reveals: None,
        })
        .collect();
    Ok(document(
        &format!(
            "{} ({})",
            a.org,
            if a.partner {
                "partner company"
            } else {
                "the company"
            }
        ),
        Some(&visitor.session),
        html! {
            h2 { "Last 24 hours, all its staff, per hour" }
            (chart::render(&points, None, ""))
            h2 { "People active in the last 24 hours" }
            div.scroll { table #people {
                thead { tr { th { "Person" } th { "Role" } th { "Views" } th { "Fields revealed" } } }
                tbody { @for p in &a.people {
                    tr { td.id { a href={ "/staff/" (p.id) } { (p.id) } } td { (p.role) } td { (p.views) } td { (p.reveals) } }
                } }
            } }
            h2 { "Alerts" }
            (alerts_of(&list.alerts, |al| al.org == a.org))
        },
    ))
}

//! Leak trace: upload a leaked list, see the ranked suspects (and any canary in it), and
//! download the evidence bundle of the first suspects, which `custos ledger
//! check-evidence` verifies offline. The file goes to `POST /v1/trace` as uploaded and is
//! kept nowhere; the session keeps only the last evidence bundle.

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use maud::html;
use serde::Deserialize;

use super::page::{self, document, when};
use super::{Call, Page, Shared, Visitor};

/// Suspects whose evidence the console bundles.
const EVIDENCE_TOP: usize = 5;

#[derive(Deserialize)]
pub(super) struct UploadQuery {
    /// The session's CSRF token: a file form cannot be read before it is passed on, so
    /// the token travels in the form's address instead (never logged: only route
    /// templates are).
    csrf: String,
}

#[derive(Deserialize)]
struct Report {
    rows: u64,
    matched: u64,
    unmatched: u64,
    ambiguous: u64,
    customers: usize,
    canaries: Vec<Canary>,
    suspects: Vec<Suspect>,
    ring: Option<Ring>,
    evidence: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Canary {
    customer: String,
    exposed: Vec<CanaryExposure>,
}

#[derive(Deserialize)]
struct CanaryExposure {
    staff: String,
    org: String,
    first_at: i64,
}

#[derive(Deserialize)]
struct Suspect {
    staff: String,
    org: String,
    score: f64,
    records: usize,
    records_revealed: usize,
    first_access: i64,
    last_access: i64,
}

#[derive(Deserialize)]
struct Ring {
    members: Vec<String>,
    records_explained: usize,
    fraction_explained: f64,
}

/// `GET /trace`: the upload form.
pub(super) async fn form(visitor: Visitor) -> Page {
    visitor.analyst()?;
    Ok(document(
        "Leak trace",
        Some(&visitor.session),
        html! {
            form.stack method="post" enctype="multipart/form-data"
                action={ "/trace?csrf=" (visitor.session.csrf) } {
                label for="file" { "Leaked list" }
                input #file type="file" name="file" required aria-describedby="file-help";
                p #file-help .muted { "CSV, TSV or plain text, UTF-8 or GB18030, any columns. Phone numbers, emails and account ids are matched through the blind indexes; the file is not kept." }
                button type="submit" { "Trace" }
            }
        },
    ))
}

/// `POST /trace?csrf=…`: passes the upload to the API and shows the report.
pub(super) async fn upload(
    State(console): State<Shared>,
    visitor: Visitor,
    Query(q): Query<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Page {
    visitor.analyst()?;
    visitor.check_csrf(&q.csrf)?;
    let call = Call {
        content_type: headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: Some(body),
        case: None,
    };
    let report: Report = console
        .call_as(
            &visitor,
            Method::POST,
            &format!("/v1/trace?top=20&evidence={EVIDENCE_TOP}"),
            call,
        )
        .await
        .decode(&visitor)?;
    let evidence = report
        .evidence
        .as_ref()
        .filter(|e| !e.is_null())
        .and_then(|e| serde_json::to_vec_pretty(e).ok());
    let has_evidence = evidence.is_some();
    console.sessions.set_evidence(&visitor.key, evidence);
    Ok(document(
        "Leak trace: suspects",
        Some(&visitor.session),
        html! {
            section.card {
                dl.fields {
                    dt { "Rows" } dd #rows { (report.rows) }
                    dt { "Matched" } dd #matched { (report.matched) " (" (report.customers) " customers)" }
                    dt { "Unmatched" } dd { (report.unmatched) }
                    dt { "Ambiguous" } dd { (report.ambiguous) }
                }
            }
            @if !report.canaries.is_empty() {
                h2.bad { "Canary records in the file" }
                p { "A canary is never opened for real work: whoever was exposed to one is near-proof." }
                ul { @for c in &report.canaries {
                    li { (c.customer) ": "
                        @for e in &c.exposed { (e.staff) " (" (e.org) ", " (when(e.first_at)) ") " } }
                } }
            }
            h2 { "Suspects, most likely first" }
            @if report.suspects.is_empty() {
                p { "No one's access explains the file's rows." }
            } @else {
                div.scroll { table #suspects {
                    thead { tr { th { "#" } th { "Person" } th { "Org" } th { "Score" } th { "Leaked records they had" } th { "Revealed" } th { "First access" } th { "Last access" } } }
                    tbody { @for (i, s) in report.suspects.iter().enumerate() {
                        tr { td { (i + 1) } td { a href={ "/staff/" (s.staff) } { (s.staff) } } td { (s.org) }
                             td { (format!("{:.2}", s.score)) } td { (s.records) } td { (s.records_revealed) }
                             td { (when(s.first_access)) } td { (when(s.last_access)) } }
                    } }
                } }
            }
            @if let Some(ring) = report.ring.as_ref().filter(|r| r.members.len() > 1) {
                h2 { "A group whose union explains the file" }
                p { (ring.members.join(", ")) ": " (ring.records_explained) " records (" (format!("{:.0}", ring.fraction_explained * 100.0)) "%)." }
            }
            @if has_evidence {
                p { a #evidence download="evidence.json" href="/trace/evidence.json" { "Download the evidence bundle" }
                    " (the ledger entries behind the first " (EVIDENCE_TOP) " suspects, each with its inclusion proof and the signed checkpoint; check it with custos ledger check-evidence)." }
            }
        },
    ))
}

/// `GET /trace/evidence.json`: the session's last evidence bundle.
pub(super) async fn evidence(visitor: Visitor) -> Page {
    visitor.analyst()?;
    let Some(bundle) = visitor.session.evidence.clone() else {
        return Err(page::problem(
            StatusCode::NOT_FOUND,
            Some(&visitor.session),
            "no_evidence",
            "Trace a leaked list first; its evidence bundle is kept for this session only.",
            None,
        )
        .into());
    };
    let mut r = page::with_headers(
        StatusCode::OK,
        "application/json",
        String::from_utf8_lossy(&bundle).into_owned(),
    );
    r.headers_mut().insert(
        CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"evidence.json\""),
    );
    Ok(r)
}

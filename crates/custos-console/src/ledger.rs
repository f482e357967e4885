//! The ledger page: the latest signed checkpoint, a full verification on request, and
//! an entry with its inclusion proof (C2SP tlog-proof) against a signed checkpoint.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{Method, StatusCode};
use maud::html;
use serde::Deserialize;

use super::analyst::{EntryList, entry_table};
use super::page::{self, csrf_field, document};
use super::signin::CsrfForm;
use super::{Call, Page, Shared, Visitor};
use custos_gateway::api::Verification;

#[derive(Deserialize)]
pub(super) struct EntryQuery {
    index: Option<u64>,
}

/// `GET /ledger`.
pub(super) async fn overview(State(console): State<Shared>, visitor: Visitor) -> Page {
    visitor.analyst()?;
    let reply = console
        .call_as(&visitor, Method::GET, "/ledger/checkpoint", Call::default())
        .await;
    let checkpoint = reply
        .status
        .is_success()
        .then(|| String::from_utf8_lossy(&reply.body).into_owned());
    let mut lines = checkpoint.as_deref().unwrap_or("").lines();
    let (origin, size, root) = (lines.next(), lines.next(), lines.next());
    Ok(document(
        "Ledger",
        Some(&visitor.session),
        html! {
            @match (origin, size, root) {
                (Some(origin), Some(size), Some(root)) => {
                    section.card aria-labelledby="cp-title" {
                        h2 #cp-title { "Latest signed checkpoint" }
                        dl.fields {
                            dt { "Origin" } dd { (origin) }
                            dt { "Entries" } dd #ledger-size { (size) }
                            dt { "Root hash" } dd { (root_hex(root)) }
                        }
                        details { summary { "The signed note" } pre { (checkpoint.as_deref().unwrap_or("")) } }
                    }
                }
                _ => { p { "No checkpoint is published yet; one follows the first records within seconds." } }
            }
            form.stack method="post" action="/ledger/verify" {
                (csrf_field(&visitor.session))
                p { "Verify the whole ledger now, as an auditor would: every entry's hash, every stored hash tile, the root and the checkpoint's signature." }
                button type="submit" { "Verify now" }
            }
            form.stack method="get" action="/ledger/entry" {
                label for="index" { "Entry index" }
                input #index type="number" name="index" min="0" required;
                button type="submit" { "Show the entry and its proof" }
            }
        },
    ))
}

/// `POST /ledger/verify`.
pub(super) async fn verify(
    State(console): State<Shared>,
    visitor: Visitor,
    Form(form): Form<CsrfForm>,
) -> Page {
    visitor.analyst()?;
    visitor.check_csrf(&form.csrf)?;
    let v: Verification = console.post(&visitor, "/v1/ledger/verify", None).await?;
    Ok(document(
        "Ledger verification",
        Some(&visitor.session),
        html! {
            section.card role="status" #verification {
                @if v.verified {
                    p.ok { "Verified: the ledger is intact." }
                    dl.fields {
                        dt { "Entries" } dd { (v.size) }
                        dt { "Root hash" } dd { (root_hex(v.root.as_deref().unwrap_or(""))) }
                        dt { "Took" } dd { (v.millis) " ms" }
                    }
                    details { summary { "The verified checkpoint" } pre { (v.checkpoint.as_deref().unwrap_or("")) } }
                } @else {
                    p.bad { "Verification FAILED." }
                    dl.fields {
                        dt { "Code" } dd { (v.code.as_deref().unwrap_or("")) }
                        dt { "What" } dd { (v.message.as_deref().unwrap_or("")) }
                        @if let Some(i) = v.first_bad_index { dt { "First bad entry" } dd { (i) } }
                    }
                    p { "Keep the ledger directory as it is and tell the security lead: this is evidence." }
                }
            }
            p { a href="/ledger" { "Back to the ledger" } }
        },
    ))
}

/// `GET /ledger/entry?index=N`: one entry and its inclusion proof.
pub(super) async fn entry(
    State(console): State<Shared>,
    visitor: Visitor,
    Query(q): Query<EntryQuery>,
) -> Page {
    visitor.analyst()?;
    let Some(index) = q.index else {
        return Ok(page::see_other("/ledger", &[]));
    };
    let list: EntryList = console
        .get(
            &visitor,
            &format!("/v1/ledger/entries?from={index}&limit=1"),
        )
        .await?;
    let Some(entry) = list
        .entries
        .into_iter()
        .find(|e| u64::try_from(e.seq) == Ok(index))
    else {
        return Err(page::problem(
            StatusCode::NOT_FOUND,
            Some(&visitor.session),
            "out_of_range",
            "The ledger has no entry with that index yet.",
            None,
        )
        .into());
    };
    let proof = console
        .call_as(
            &visitor,
            Method::GET,
            &format!("/v1/ledger/proof/entry?index={index}"),
            Call::default(),
        )
        .await;
    let proof = proof
        .status
        .is_success()
        .then(|| String::from_utf8_lossy(&proof.body).into_owned());
    Ok(document(
        &format!("Ledger entry {index}"),
        Some(&visitor.session),
        html! {
            (entry_table(std::slice::from_ref(&entry)))
            h2 { "Inclusion proof" }
            @match proof {
                Some(p) => {
                    p { "The entry, its inclusion proof and the signed checkpoint it proves against (C2SP tlog-proof). Anyone with the ledger's public key can check it offline." }
                    pre #proof { (p) }
                }
                None => { p { "No signed checkpoint covers this entry yet; reload in a few seconds." } }
            }
            p { a href="/ledger" { "Back to the ledger" } }
        },
    ))
}

/// A root hash as the CLI prints it (lowercase hex); the checkpoint and the API carry it
/// in base64, which stays visible in the signed note.
fn root_hex(base64_root: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(base64_root.trim())
        .map(hex::encode)
        .unwrap_or_else(|_| base64_root.to_owned())
}

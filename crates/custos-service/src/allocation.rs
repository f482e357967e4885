//! Canary allocation: fake-object allocation (Papadimitriou & Garcia-Molina, "Data
//! Leakage Detection", IEEE TKDE 2011) for a vault where every value a person gets comes
//! through a case on their queue.
//!
//! With `[canaries] allocation_rate` above 0, each case the CRM opens for a person is
//! followed, with that chance (`allocation_rate_self_requested` instead, if higher, for a
//! case the person asked for themselves: how one reaches customers no contact brought),
//! by a case Custos opens for them on a canary: an ordinary-looking case (the trigger's
//! channel and contact, a reason from `case_reasons`) whose customer is synthetic. A person who harvests their queue takes the canary with the
//! rest, so a leaked list that carries it names them. This module owns the invariant
//! "a canary goes to at most one person of a peer group (organisation and role)": the
//! store's unique key on (canary, peer group) decides races, and the least held canary
//! is chosen first, so overlaps between people stay as few as the pool allows.
//!
//! Durability order, for one allocation:
//! 1. the claim (`canary_allocations`): it keeps the canary from the person's peers and,
//!    read by a restarting detector, exempts the person; alone (the steps below failed) it
//!    can only exempt their searches of a canary they have no case to open;
//! 2. the ledger entry ([`ALLOCATE_CANARY`], as the system): the record of the act; the
//!    running detector exempts this person's own touches of this canary from here;
//! 3. the case: only now can the person open the canary.
//!
//! A failure stops the allocation where it is and never fails the CRM's request.

use custos_store::{CaseRecord, CaseStatus, StaffRecord};
use custos_types::Provenance;

use crate::case_record::{case_facts, reason_context};
use crate::ids::new_case_id;
use crate::record::SystemEvent;
use crate::vault::Opened;
use crate::{App, ServiceError};

/// Candidates read per allocation: enough to get past a few lost races.
const CANDIDATES: u32 = 8;

/// Reason code of the allocation entry.
const REASON: &str = "canary_allocation";

/// How long before the CRM's case a canary's case is dated, at least and at most
/// (milliseconds): drawn afresh for each, so it never opens in the same millisecond as
/// the case beside it (a tell a person reading their queue would learn), and reads as a
/// case that waited on the queue a while, as cases routed to a busy agent do.
const QUEUED_MS: (u64, u64) = (2 * 60_000, 30 * 60_000);

/// A uniform draw in `[low, high)` from the system's random source.
fn random_between((low, high): (u64, u64)) -> u64 {
    low + u64::from_be_bytes(custos_crypto::random_bytes::<8>()) % (high - low)
}

/// What became of one chance to allocate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Allocation {
    /// The draw said no (or allocation is off).
    NotDrawn,
    /// Every allocatable canary is held by one of the person's peers already.
    PoolExhausted,
    /// A canary was given, on a new case on the person's queue.
    Allocated,
}

impl Allocation {
    fn label(self) -> &'static str {
        match self {
            Allocation::NotDrawn => "not_drawn",
            Allocation::PoolExhausted => "pool_exhausted",
            Allocation::Allocated => "allocated",
        }
    }
}

/// The facts of the case that gave the person the chance, mirrored by the canary's
/// case so it reads like the person's other work.
pub struct Trigger<'a> {
    /// The channel of the CRM's case.
    pub channel: custos_types::Channel,
    /// Who vouched for its contact.
    pub provenance: Provenance,
    /// Its campaign, if outbound.
    pub campaign: Option<&'a str>,
    /// Whether the assignee asked the CRM for it themselves.
    pub self_requested: bool,
    /// When it was opened (unix milliseconds).
    pub at: i64,
}

impl App {
    /// Draws against `[canaries] allocation_rate` (or `allocation_rate_self_requested`
    /// when higher, for a case the assignee asked for) and, when drawn, gives `assignee`
    /// a canary no peer of theirs holds, on a case of its own (module docs). Errors are
    /// logged and counted, never returned: the CRM's case stands either way.
    pub(crate) async fn maybe_allocate_canary(
        &self,
        assignee: &StaffRecord,
        trigger: &Trigger<'_>,
    ) -> Allocation {
        let config = &self.config.canaries;
        let rate = if trigger.self_requested {
            config
                .allocation_rate
                .max(config.allocation_rate_self_requested)
        } else {
            config.allocation_rate
        };
        // 53 random bits: uniform on [0, 1), so a rate of 1 always draws and 0 never.
        let draw = (u64::from_be_bytes(custos_crypto::random_bytes::<8>()) >> 11) as f64
            / (1u64 << 53) as f64;
        let outcome = if draw >= rate {
            Ok(Allocation::NotDrawn)
        } else {
            self.allocate_canary(assignee, trigger).await
        };
        let label = match &outcome {
            Ok(a) => a.label(),
            Err(e) => {
                tracing::error!(code = e.code.as_str(), "canary allocation failed");
                "failed"
            }
        };
        metrics::counter!("custos_canary_allocations_total", "outcome" => label).increment(1);
        outcome.unwrap_or(Allocation::NotDrawn)
    }

    async fn allocate_canary(
        &self,
        assignee: &StaffRecord,
        trigger: &Trigger<'_>,
    ) -> Result<Allocation, ServiceError> {
        let peer_group = format!("{}/{}", assignee.org, assignee.role);
        let mut canary = None;
        for candidate in self
            .store
            .allocatable_canaries(&peer_group, CANDIDATES)
            .await?
        {
            let Ok(id) = self
                .keyring
                .open_canary_id(&candidate.mark, &candidate.sealed_id)
            else {
                // Sealed under another master key, or altered: never allocated.
                tracing::warn!("a canary's sealed id does not open; skipped");
                continue;
            };
            let holder = self.keyring.canary_holder_mark(&id, &assignee.id);
            if self
                .store
                .insert_canary_allocation(&holder, &candidate.mark, &peer_group)
                .await?
            {
                canary = Some(id);
                break;
            }
        }
        let Some(canary) = canary else {
            return Ok(Allocation::PoolExhausted);
        };
        let record = self
            .store
            .customer(&canary)
            .await?
            .ok_or_else(|| ServiceError::not_found("customer"))?;
        let case_id = new_case_id();
        // The ledger entry keeps the true time of the act; the case reads as opened
        // earlier, independently of the CRM's case.
        let opened_at = trigger
            .at
            .saturating_sub(i64::try_from(random_between(QUEUED_MS)).unwrap_or(0));
        let reasons = &self.config.canaries.case_reasons;
        let pick = random_between((0, reasons.len() as u64));
        let reason = reasons[usize::try_from(pick).unwrap_or(0)].trim();
        let sealed_reason =
            Opened::new(&self.keyring, &record)?.seal_text(&reason_context(&case_id), reason)?;
        self.record_system(SystemEvent {
            action: custos_types::Action::AllocateCanary,
            at: trigger.at,
            customer_id: Some(canary.clone()),
            case_id: Some(case_id.clone()),
            target: Some(assignee.id.clone()),
            fields: case_facts(trigger.channel, trigger.provenance, None, trigger.campaign),
            reason_code: REASON.to_owned(),
        })
        .await?;
        self.store
            .insert_case(&CaseRecord {
                id: case_id,
                customer_id: canary,
                assignee: assignee.id.clone(),
                channel: trigger.channel,
                reason: sealed_reason,
                status: CaseStatus::Open,
                created_by: custos_types::SYSTEM_ID.to_owned(),
                created_at: opened_at,
                closed_at: None,
                provenance: trigger.provenance,
                campaign: trigger.campaign.map(str::to_owned),
                contact_id: None,
            })
            .await?;
        Ok(Allocation::Allocated)
    }
}

//! The hot state: what every request reads — the active tokens and their staff, and the
//! open cases — kept in memory, so that a protected lookup makes one store read (the
//! customer) instead of three.
//!
//! **Ownership.** The [`crate::Store`] that loaded it is the only writer of these tables,
//! and every write method updates the hot state after the database has committed, before
//! it returns. So a suspension, a revocation or a closing takes effect from the next
//! request on, as before.
//!
//! **What it answers.** A hit is the database's answer. A miss is not proof of absence:
//! the caller asks the database (closed cases, unknown tokens, and rows written by hand,
//! as an old deployment's tests do, are found there). Nothing read from the database on
//! a miss is added here, so no read racing a write can put a stale row in.
//!
//! **Where it is on.** SQLite only: the data directory's ledger lock lets one process at
//! a time open it, so this process sees every write. PostgreSQL serves several gateway
//! nodes, whose writes this process would not see; there every read goes to the
//! database until the nodes tell each other which key changed (each entry here is keyed
//! by the row it mirrors, so such a message names what to drop).

use std::collections::HashMap;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use custos_types::Provenance;

use crate::{CaseRecord, CaseStatus, StaffRecord, StaffStatus, TokenRecord};

/// The mirrored rows.
#[derive(Default)]
struct Rows {
    /// Active (not revoked) tokens by hash.
    tokens: HashMap<String, TokenRecord>,
    /// Every staff member by id.
    staff: HashMap<String, StaffRecord>,
    /// Open cases by id.
    open_cases: HashMap<String, CaseRecord>,
    /// Ids of the open cases of (assignee, customer).
    on_line: HashMap<(String, String), Vec<String>>,
}

/// The hot state of one store (see the module docs).
#[derive(Default)]
pub(crate) struct HotState {
    rows: RwLock<Rows>,
}

impl HotState {
    /// The state mirroring `staff`, the active `tokens` and the `open` cases.
    pub(crate) fn load(
        staff: Vec<StaffRecord>,
        tokens: Vec<TokenRecord>,
        open: Vec<CaseRecord>,
    ) -> HotState {
        let state = HotState::default();
        {
            let mut rows = state.write();
            rows.staff = staff.into_iter().map(|s| (s.id.clone(), s)).collect();
            rows.tokens = tokens
                .into_iter()
                .filter(|t| t.revoked_at.is_none())
                .map(|t| (t.hash.clone(), t))
                .collect();
            for case in open {
                rows.insert_case(case);
            }
        }
        state
    }

    // A poisoned lock means a writer panicked between two map updates of plain data;
    // the maps are still well-formed, so reading on is safe.
    fn read(&self) -> RwLockReadGuard<'_, Rows> {
        self.rows.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Rows> {
        self.rows.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The staff member and active token with this hash.
    pub(crate) fn by_token(&self, hash: &str) -> Option<(StaffRecord, TokenRecord)> {
        let rows = self.read();
        let token = rows.tokens.get(hash)?;
        let staff = rows.staff.get(&token.staff_id)?;
        Some((staff.clone(), token.clone()))
    }

    /// The staff member with `id`.
    pub(crate) fn staff(&self, id: &str) -> Option<StaffRecord> {
        self.read().staff.get(id).cloned()
    }

    /// The open case with `id`.
    pub(crate) fn open_case(&self, id: &str) -> Option<CaseRecord> {
        self.read().open_cases.get(id).cloned()
    }

    /// The open cases of `assignee` about `customer`, newest first (the database's order).
    pub(crate) fn open_cases_about(&self, assignee: &str, customer: &str) -> Vec<CaseRecord> {
        let rows = self.read();
        let key = (assignee.to_owned(), customer.to_owned());
        let mut cases: Vec<CaseRecord> = rows
            .on_line
            .get(&key)
            .into_iter()
            .flatten()
            .filter_map(|id| rows.open_cases.get(id).cloned())
            .collect();
        cases.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        cases
    }

    /// A staff member was stored.
    pub(crate) fn staff_inserted(&self, staff: &StaffRecord) {
        self.write().staff.insert(staff.id.clone(), staff.clone());
    }

    /// A staff member's status was set.
    pub(crate) fn status_set(&self, id: &str, status: StaffStatus) {
        if let Some(staff) = self.write().staff.get_mut(id) {
            staff.status = status;
        }
    }

    /// A token was stored.
    pub(crate) fn token_inserted(&self, token: &TokenRecord) {
        if token.revoked_at.is_none() {
            self.write()
                .tokens
                .insert(token.hash.clone(), token.clone());
        }
    }

    /// The token with id `token_id` was revoked.
    pub(crate) fn token_revoked(&self, token_id: &str) {
        // By id, which is not the key: revocations are rare next to lookups.
        self.write().tokens.retain(|_, t| t.id != token_id);
    }

    /// A case was stored.
    pub(crate) fn case_inserted(&self, case: &CaseRecord) {
        if case.status == CaseStatus::Open {
            self.write().insert_case(case.clone());
        }
    }

    /// Case `id` was closed.
    pub(crate) fn case_closed(&self, id: &str) {
        let mut rows = self.write();
        let Some(case) = rows.open_cases.remove(id) else {
            return;
        };
        let key = (case.assignee, case.customer_id);
        if let Some(ids) = rows.on_line.get_mut(&key) {
            ids.retain(|other| other != id);
            if ids.is_empty() {
                rows.on_line.remove(&key);
            }
        }
    }

    /// Open case `id` was vouched for by `contact_id` with `provenance`.
    pub(crate) fn case_vouched(&self, id: &str, provenance: Provenance, contact_id: &str) {
        if let Some(case) = self.write().open_cases.get_mut(id) {
            case.provenance = provenance;
            case.contact_id = Some(contact_id.to_owned());
        }
    }
}

impl Rows {
    fn insert_case(&mut self, case: CaseRecord) {
        self.on_line
            .entry((case.assignee.clone(), case.customer_id.clone()))
            .or_default()
            .push(case.id.clone());
        self.open_cases.insert(case.id.clone(), case);
    }
}

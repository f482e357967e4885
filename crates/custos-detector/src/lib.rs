//! Insider detection: a consumer of the ledger that raises alerts and acts on them.
//!
//! The detector reads the ledger through a [`custos_access::Subscription`] from its
//! cursor (kept in the store), so it is restart-safe and its state can be rebuilt by
//! replaying the ledger. For every record it runs the rules — [`canary`] hits, and the
//! statistical [`Model`] (per-person and per-org features against the person's own past
//! and their peers, see [`features`], [`baseline`], [`score`]); a finding becomes, in
//! this order:
//!
//! 1. the action: suspension (`risk_suspend`, `canary_hit`: the person gets nothing from
//!    their next request on), or a [`restrict`]ion handed to the gateway through the
//!    [`RestrictionHook`] (`risk_lower_quota`: lowered quotas and a step-up
//!    justification for reveals; `risk_step_up`: the justification only), for 24 hours;
//! 2. a ledger entry saying the detector acted, and why;
//! 3. the alert, citing the ledger entries behind it (its id derives from the rule, the
//!    person and the raising entry, so a replay after a crash finds it and does not act
//!    twice), then its delivery to the [`webhook`], if one is configured (best effort,
//!    in the background);
//! 4. after the whole batch, its [`Progress`]; the cursor at most once a
//!    [`CURSOR_EVERY`], and when no record has come for that long.
//!
//! A crash anywhere replays from the cursor: steps already done are found done (a
//! restriction lives in the gateway's memory, and is rebuilt at start from the alerts).
//! That is also why the cursor need not be stored after every batch: a cursor a second
//! behind costs a second of records handled again after a crash, and saves a durable
//! write per batch while records arrive a few at a time.
//! The model is pure, deterministic code driven by records: at start it is rebuilt by
//! replaying the ledger up to the cursor.

pub mod baseline;
pub mod break_glass;
pub mod canary;
pub mod features;
pub mod model;
pub mod restrict;
pub mod score;
pub mod webhook;

pub use model::{Model, ModelConfig, Snapshot};
pub use restrict::{Restriction, RestrictionHook, RestrictionKind};
pub use webhook::AlertsConfig;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use custos_access::{AccessLog, AccessRecord};
use custos_crypto::Keyring;
use custos_store::{AccessFilter, AlertRecord, StaffStatus, Store};
use custos_types::clock::now_millis;
use custos_types::{Action, Decision, RecordedRole};

/// The detector's name in the ledger (as the acting principal) and its cursor's name.
pub const DETECTOR: &str = "detector";

/// Records read per step.
const BATCH: usize = 1024;

/// Entries read per step when rebuilding the model at start.
const REPLAY_CHUNK: u64 = 10_000;

/// Wait before retrying after the store or ledger failed.
const RETRY: Duration = Duration::from_secs(1);

/// How often at most the cursor is stored while records keep coming, and how long
/// after the last record it is stored at the latest (see the module docs).
pub const CURSOR_EVERY: Duration = Duration::from_secs(1);

/// How far the detector has got: every ledger entry before [`Progress::handled`] has
/// been looked at and acted on. One is made by whoever starts the detector and shared
/// with those who wait for it (clones see the same position).
#[derive(Clone)]
pub struct Progress(Arc<watch::Sender<u64>>);

impl Default for Progress {
    fn default() -> Self {
        Progress(Arc::new(watch::Sender::new(0)))
    }
}

impl Progress {
    /// The ledger index of the next entry the detector will handle.
    pub fn handled(&self) -> u64 {
        *self.0.borrow()
    }

    /// Waits until every entry before `index` has been handled. `false` if the detector
    /// has stopped (its task ended) before that.
    pub async fn wait_for(&self, index: u64) -> bool {
        let mut handled = self.0.subscribe();
        handled.wait_for(|h| *h >= index).await.is_ok()
    }

    fn advance(&self, to: u64) {
        self.0.send_replace(to);
    }
}

/// Most ledger entries an alert cites: a person's day can hold many thousands (a
/// stolen integration token), and every alert listing carries them.
pub const MAX_CITED: usize = 1000;

/// Records read per call when collecting the entries an alert cites.
const CITE_PAGE: u32 = 1000;

/// What a rule found in one ledger record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The rule, e.g. `canary_hit`.
    pub kind: &'static str,
    /// `critical`, `high`, `medium` or `low`.
    pub severity: &'static str,
    /// Why, in plain words.
    pub reasons: Vec<String>,
    /// Whether the person is suspended on it.
    pub suspend: bool,
    /// For a finding on a person's day so far: when that local day began (unix ms).
    /// Their records from then to the one that raised it are what it judged, and its
    /// alert cites them. None: the alert cites the raising record alone (a canary hit;
    /// an organisation's day, whose records are everyone's).
    pub day_start: Option<i64>,
}

/// Which time the detector stamps its alerts and its own ledger entries with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Clock {
    /// The machine's clock: the server runs in real time.
    #[default]
    Real,
    /// The time of the record that raised the finding: for a server with a simulated
    /// clock (requests carry their own time), so that alerts and the detector's acts
    /// line up with the simulated time of what caused them rather than with the
    /// machine's.
    Records,
}

impl Clock {
    /// The time to stamp an act on a finding raised by `record`, unix milliseconds.
    pub fn now(self, record: &AccessRecord) -> i64 {
        match self {
            Clock::Real => now_millis(),
            Clock::Records => record.at,
        }
    }
}

/// What the detector acts through besides the store and the ledger.
#[derive(Clone, Default)]
pub struct Actions {
    /// Receives the restrictions of `risk_step_up` and `risk_lower_quota` findings (the
    /// gateway enforces them). None: such findings raise alerts only.
    pub restrict: Option<RestrictionHook>,
    /// Where new alerts are delivered besides the store.
    pub alerts: AlertsConfig,
}

/// How long a detector may run: for good on a node that owns its store, or while a
/// lease says so when several nodes share one database (the service holds the lease and
/// says when it is lost). A detector whose tenure has ended stops before its next batch,
/// so two nodes never both act for long; acting is idempotent besides.
#[derive(Clone, Default)]
pub struct Tenure(Option<tokio::sync::watch::Receiver<bool>>);

impl Tenure {
    /// For as long as `held` says `true` (once `false`, for good).
    pub fn lease(held: tokio::sync::watch::Receiver<bool>) -> Tenure {
        Tenure(Some(held))
    }

    fn holds(&self) -> bool {
        self.0.as_ref().is_none_or(|held| *held.borrow())
    }
}

/// Starts the detector on the current Tokio runtime. The model's state is rebuilt by
/// replaying the ledger up to the detector's cursor (without acting again), then the
/// detector follows the ledger from there. `clock` is the time its acts are stamped
/// with; `actions` what it acts through; `progress` where it says how far it has got;
/// `tenure` how long it may run.
#[allow(clippy::too_many_arguments)]
pub async fn start(
    access: AccessLog,
    store: Store,
    keyring: Keyring,
    config: ModelConfig,
    clock: Clock,
    actions: Actions,
    progress: Progress,
    tenure: Tenure,
) -> Result<(), String> {
    let webhook = webhook::Webhook::new(&actions.alerts)?;
    let marks = canary::Marks::load(&store).await?;
    let from = store
        .consumer_cursor(DETECTOR)
        .await
        .map_err(|e| e.to_string())?;
    if from > access.size() {
        // The cursor is past the ledger's end: the ledger was replaced or lost entries.
        // Following it from here would skip whatever is appended up to the cursor.
        return Err(format!(
            "the detector's cursor ({from}) is ahead of the ledger ({} entries); the ledger directory does not belong to this store",
            access.size()
        ));
    }
    let mut model = Model::new(config);
    let mut next = 0;
    while next < from {
        let chunk = usize::try_from((from - next).min(REPLAY_CHUNK)).unwrap_or(BATCH);
        let records = access
            .entries(next, chunk)
            .await
            .map_err(|e| e.to_string())?;
        if records.is_empty() {
            break;
        }
        for record in &records {
            // Findings of the past were acted on when they were first seen.
            model.observe(record);
        }
        next += records.len() as u64;
    }
    tracing::info!(
        from,
        canaries = marks.len(),
        people = model.people(),
        "detector starting"
    );
    let mut detector = Detector {
        access,
        store,
        keyring,
        marks,
        model,
        pending: Vec::new(),
        clock,
        restrict: actions.restrict,
        webhook,
    };
    progress.advance(from);
    let mut subscription = detector.access.subscribe(from);
    tokio::spawn(async move {
        let mut cursor = Cursor {
            saved: from,
            saved_at: Instant::now(),
        };
        loop {
            let position = subscription.position();
            let next = if position > cursor.saved {
                // Unsaved progress: store it if nothing comes for a while.
                tokio::time::timeout(CURSOR_EVERY, subscription.next_batch(BATCH))
                    .await
                    .ok()
            } else {
                Some(subscription.next_batch(BATCH).await)
            };
            if !tenure.holds() {
                tracing::warn!("the detector's lease is lost; another node detects from here");
                return;
            }
            let quiet = next.is_none();
            let step = match next {
                // The log has shut down.
                Some(None) => return,
                Some(Some(Ok(records))) => detector.handle(&records).await,
                Some(Some(Err(e))) => Err(e.to_string()),
                // Quiet for a `CURSOR_EVERY`: store the cursor below.
                None => Ok(()),
            };
            let step = match step {
                Ok(()) => {
                    progress.advance(subscription.position());
                    cursor
                        .store(&detector.store, subscription.position(), quiet)
                        .await
                }
                Err(e) => Err(e),
            };
            if let Err(e) = step {
                // Read the batch again: records after the failure were not looked at.
                // Findings not yet acted on stay pending (acting is idempotent), and the
                // model ignores records it has already seen.
                tracing::error!(error = %e, "detector step failed; retrying");
                metrics::counter!("custos_detector_failures_total").increment(1);
                tokio::time::sleep(RETRY).await;
                subscription.seek(position);
            }
        }
    });
    Ok(())
}

/// The stored cursor, and when it was written (module docs, step 4).
struct Cursor {
    saved: u64,
    saved_at: Instant,
}

impl Cursor {
    /// Stores `at` when it is ahead of the stored cursor and a [`CURSOR_EVERY`] has
    /// passed since the last write, or at once after a quiet [`CURSOR_EVERY`].
    async fn store(&mut self, store: &Store, at: u64, quiet: bool) -> Result<(), String> {
        let due = quiet || self.saved_at.elapsed() >= CURSOR_EVERY;
        if !due || at <= self.saved {
            return Ok(());
        }
        store
            .set_consumer_cursor(DETECTOR, at)
            .await
            .map_err(|e| e.to_string())?;
        self.saved = at;
        self.saved_at = Instant::now();
        Ok(())
    }
}

struct Detector {
    access: AccessLog,
    store: Store,
    keyring: Keyring,
    marks: canary::Marks,
    model: Model,
    /// Findings not yet acted on (an earlier step failed), oldest first.
    pending: Vec<(AccessRecord, Finding)>,
    clock: Clock,
    restrict: Option<RestrictionHook>,
    webhook: Option<webhook::Webhook>,
}

impl Detector {
    async fn handle(&mut self, records: &[AccessRecord]) -> Result<(), String> {
        for record in records {
            // The server's and the detector's own records (role `system`, which no staff
            // entry can have); never by id, which an admin could give a person.
            // The server's own entries are no one's behaviour; an allocation among them
            // says whose touches of a canary are legitimate from here on.
            if record.role == RecordedRole::System {
                self.marks.observe_allocation(record, &self.keyring);
                continue;
            }
            if canary::plants_canaries(record) {
                // New canaries were stored before this record was written (also when the
                // request then failed to be recorded as allowed).
                self.marks = canary::Marks::load(&self.store).await?;
            }
            if let Some(finding) = canary::check(record, &self.marks, &self.keyring) {
                self.pending.push((record.clone(), finding));
            }
            if let Some(finding) = break_glass::check(record) {
                self.pending.push((record.clone(), finding));
            }
            for finding in self.model.observe(record) {
                self.pending.push((record.clone(), finding));
            }
        }
        while let Some((record, finding)) = self.pending.first().cloned() {
            self.act(&record, finding).await?;
            self.pending.remove(0);
        }
        Ok(())
    }

    /// Steps 1–3 of the module docs for one finding. An organisation's finding concerns
    /// no one person: it is an alert about the org, with no action.
    async fn act(&self, record: &AccessRecord, finding: Finding) -> Result<(), String> {
        let seq = u64::try_from(record.seq).map_err(|_| "negative ledger index".to_owned())?;
        let subject = if finding.kind == model::ORG_RISK {
            format!("org:{}", record.org)
        } else {
            record.staff_id.clone()
        };
        let id = alert_id(finding.kind, &subject, seq);
        if self
            .store
            .alert(&id)
            .await
            .map_err(|e| e.to_string())?
            .is_some()
        {
            return Ok(());
        }
        let store_err = |e: custos_store::StoreError| e.to_string();
        let now = self.clock.now(record);
        let restriction = RestrictionKind::of_finding(finding.kind);
        let action = if finding.suspend {
            self.store
                .set_staff_status(&record.staff_id, StaffStatus::Suspended)
                .await
                .map_err(store_err)?;
            self.record_action(Action::SuspendStaff, &record.staff_id, finding.kind, now)
                .await?;
            "suspended"
        } else if let (Some(kind), Some(restrict)) = (restriction, &self.restrict) {
            // Imposed before the alert exists: a crash in between replays the finding,
            // and imposing it again is harmless (the gateway keys it by alert id).
            // Derived from the alert's time, as the gateway does when it re-applies the
            // alert at start (see `restrict`).
            restrict(Restriction {
                staff_id: record.staff_id.clone(),
                kind,
                until_ms: now.saturating_add(restrict::RESTRICTION_MS),
                alert_id: id.clone(),
            });
            self.record_action(kind.ledger_action(), &record.staff_id, finding.kind, now)
                .await?;
            kind.alert_action()
        } else {
            "none"
        };
        // After the act: reading what the alert cites must not delay it.
        let entries = match finding.day_start {
            Some(since) => self.cited(&record.staff_id, since, seq).await?,
            None => vec![seq],
        };
        let alert = AlertRecord {
            id,
            created_at: now,
            staff_id: subject.clone(),
            org: record.org.clone(),
            severity: finding.severity.to_owned(),
            kind: finding.kind.to_owned(),
            reasons: finding.reasons,
            entries,
            action: action.to_owned(),
            status: "open".to_owned(),
            updated_at: now,
            reviewed_by: Vec::new(),
        };
        let added = self.store.insert_alert(&alert).await.map_err(store_err)?;
        if added && let Some(webhook) = &self.webhook {
            webhook.send(&alert);
        }
        metrics::counter!("custos_alerts_total", "kind" => finding.kind, "severity" => finding.severity)
            .increment(1);
        tracing::warn!(subject = %subject, kind = finding.kind, seq, "alert raised");
        Ok(())
    }

    /// The ledger indexes of `staff`'s records from `since` to entry `last` (the one
    /// that raised a finding) that count in their features, oldest first: at most
    /// [`MAX_CITED`], the first of them and `last` itself.
    async fn cited(&self, staff: &str, since: i64, last: u64) -> Result<Vec<u64>, String> {
        let mut cited = Vec::new();
        let mut filter = AccessFilter {
            staff_id: Some(staff.to_owned()),
            since: Some(since),
            limit: CITE_PAGE,
            ..AccessFilter::default()
        };
        'read: loop {
            let page = self
                .access
                .read_through(&filter, last)
                .await
                .map_err(|e| e.to_string())?;
            for record in &page {
                let seq = u64::try_from(record.seq).map_err(|_| "negative ledger index")?;
                if seq >= last || cited.len() + 1 == MAX_CITED {
                    break 'read;
                }
                if features::counts(record) {
                    cited.push(seq);
                }
            }
            match page.last() {
                Some(end) if page.len() == CITE_PAGE as usize => filter.after_seq = Some(end.seq),
                _ => break,
            }
        }
        // Always the raising record, also when it is a little older than its day.
        cited.push(last);
        Ok(cited)
    }

    /// Writes the ledger entry of an act of the detector, at `at` (unix milliseconds).
    async fn record_action(
        &self,
        action: Action,
        target: &str,
        reason: &str,
        at: i64,
    ) -> Result<(), String> {
        let record = AccessRecord {
            seq: 0,
            request_id: format!("det_{}", hex::encode(custos_crypto::random_bytes::<12>())),
            at,
            staff_id: DETECTOR.to_owned(),
            org: "-".to_owned(),
            role: RecordedRole::System,
            action,
            customer_id: None,
            fields: Vec::new(),
            case_id: None,
            target: Some(target.to_owned()),
            decision: Decision::Allow,
            reason_code: reason.to_owned(),
            client: None,
        };
        self.access
            .record(record)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// `alr_` + the first 24 hex digits of SHA-256(kind, staff, ledger index).
fn alert_id(kind: &str, staff: &str, seq: u64) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{kind}\n{staff}\n{seq}").as_bytes());
    format!("alr_{}", &hex::encode(digest)[..24])
}

#[cfg(test)]
mod tests {
    use super::*;
    use custos_crypto::MasterKey;
    use custos_ledger::{Ledger, LedgerKey};

    /// A detector on a fresh SQLite store and ledger in `dir`.
    async fn detector(dir: &std::path::Path, clock: Clock) -> Detector {
        let store = Store::open_sqlite(&dir.join("custos.db")).await.unwrap();
        let (key, _) = LedgerKey::load_or_create(&dir.join("ledger.key"), "test").unwrap();
        let ledger = Ledger::open(&dir.join("ledger"), "test", key).unwrap();
        let access = AccessLog::start(ledger, store.clone()).await.unwrap();
        Detector {
            access,
            marks: canary::Marks::load(&store).await.unwrap(),
            store,
            keyring: Keyring::new(&MasterKey::from_bytes([7; 32])),
            model: Model::new(ModelConfig::default()),
            pending: Vec::new(),
            clock,
            restrict: None,
            webhook: None,
        }
    }

    /// A view by alice at `at`.
    fn view_at(at: i64) -> AccessRecord {
        AccessRecord {
            seq: 0,
            request_id: "req_1".into(),
            at,
            staff_id: "alice".into(),
            org: "acme".into(),
            role: custos_types::Role::Support.into(),
            action: Action::View,
            customer_id: Some("cus_1".into()),
            fields: Vec::new(),
            case_id: Some("case_1".into()),
            target: None,
            decision: Decision::Allow,
            reason_code: "ok".into(),
            client: None,
        }
    }

    /// Acts on a suspending finding raised by a view at `at`; returns the alert's
    /// creation time and the time of the detector's ledger entry.
    async fn act_on_view_at(clock: Clock, at: i64) -> (i64, i64) {
        let dir = tempfile::tempdir().unwrap();
        let d = detector(dir.path(), clock).await;
        let record = view_at(at);
        let seq = d.access.record(record.clone()).await.unwrap();
        let record = AccessRecord {
            seq: i64::try_from(seq).unwrap(),
            ..record
        };
        let finding = Finding {
            kind: "risk_suspend",
            severity: "critical",
            reasons: vec!["test".into()],
            suspend: true,
            day_start: None,
        };
        d.act(&record, finding.clone()).await.unwrap();
        let alert = d
            .store
            .alert(&alert_id(finding.kind, "alice", seq))
            .await
            .unwrap()
            .expect("alert stored");
        assert_eq!(alert.created_at, alert.updated_at);
        let entries = d.access.entries(seq + 1, 1).await.unwrap();
        assert_eq!(entries[0].action, Action::SuspendStaff);
        (alert.created_at, entries[0].at)
    }

    #[tokio::test]
    async fn acts_are_stamped_with_the_records_time_under_a_simulated_clock() {
        // A simulated day long past.
        let simulated = 1_000_000_000_000;
        assert_eq!(
            act_on_view_at(Clock::Records, simulated).await,
            (simulated, simulated)
        );
        let before = now_millis();
        let (alert, entry) = act_on_view_at(Clock::Real, simulated).await;
        assert!(alert >= before && entry >= before, "{alert} {entry}");
    }

    #[tokio::test]
    async fn a_lower_quota_finding_restricts_the_person_for_a_day() {
        use std::sync::{Arc, Mutex};
        let dir = tempfile::tempdir().unwrap();
        let mut d = detector(dir.path(), Clock::Records).await;
        let imposed = Arc::new(Mutex::new(Vec::new()));
        let sink = imposed.clone();
        d.restrict = Some(Arc::new(move |r| sink.lock().unwrap().push(r)));
        let at = 1_000_000_000_000;
        let seq = d.access.record(view_at(at)).await.unwrap();
        let record = AccessRecord {
            seq: i64::try_from(seq).unwrap(),
            ..view_at(at)
        };
        let finding = Finding {
            kind: "risk_lower_quota",
            severity: "high",
            reasons: vec!["test".into()],
            suspend: false,
            day_start: None,
        };
        d.act(&record, finding.clone()).await.unwrap();
        let id = alert_id(finding.kind, "alice", seq);
        let alert = d.store.alert(&id).await.unwrap().expect("alert stored");
        assert_eq!(alert.action, "quota_lowered");
        let expected = Restriction {
            staff_id: "alice".into(),
            kind: RestrictionKind::LowerQuota,
            until_ms: at + restrict::RESTRICTION_MS,
            alert_id: id,
        };
        assert_eq!(*imposed.lock().unwrap(), std::slice::from_ref(&expected));
        // The restart path derives the same restriction from the stored alert.
        assert_eq!(Restriction::of_alert(&alert), Some(expected));
        let entries = d.access.entries(seq + 1, 1).await.unwrap();
        assert_eq!(
            (entries[0].action, entries[0].target.as_deref()),
            (Action::LowerQuota, Some("alice"))
        );
        assert_eq!(entries[0].reason_code, "risk_lower_quota");
        // Acting again (a replay) finds the alert and imposes nothing twice.
        d.act(&record, finding).await.unwrap();
        assert_eq!(imposed.lock().unwrap().len(), 1);
    }

    /// A finding on a person's day cites their records of the day that count in their
    /// features, up to the one that raised it, and no one else's.
    #[tokio::test]
    async fn a_risk_alert_cites_the_person_day_up_to_its_record() {
        let dir = tempfile::tempdir().unwrap();
        let d = detector(dir.path(), Clock::Records).await;
        let day = 1_000_000_000_000 - 1_000_000_000_000 % custos_types::calendar::DAY_MS;
        let record = |at, staff: &str, action: Action| AccessRecord {
            staff_id: staff.into(),
            action,
            ..view_at(at)
        };
        let mut seqs = Vec::new();
        for r in [
            record(day - 1000, "alice", Action::View),
            record(day + 1000, "alice", Action::View),
            record(day + 2000, "bob", Action::View),
            record(day + 3000, "alice", Action::Me),
            record(day + 4000, "alice", Action::Reveal),
            record(day + 5000, "alice", Action::Search),
            record(day + 6000, "alice", Action::View),
        ] {
            seqs.push(d.access.record(r).await.unwrap());
        }
        let trigger = AccessRecord {
            seq: i64::try_from(seqs[4]).unwrap(),
            ..record(day + 4000, "alice", Action::Reveal)
        };
        let finding = Finding {
            kind: "risk_step_up",
            severity: "medium",
            reasons: vec!["test".into()],
            suspend: false,
            day_start: Some(day),
        };
        d.act(&trigger, finding.clone()).await.unwrap();
        let alert = d
            .store
            .alert(&alert_id(finding.kind, "alice", seqs[4]))
            .await
            .unwrap()
            .expect("alert stored");
        // Not the day before, bob's, the quota read, nor what came after.
        assert_eq!(alert.entries, vec![seqs[1], seqs[4]]);

        // A long day: the first of it and the raising record, no more than the bound.
        let mut more = Vec::new();
        for i in 0..MAX_CITED as i64 + 10 {
            more.push(
                d.access
                    .record(record(day + 10_000 + i, "carol", Action::View))
                    .await
                    .unwrap(),
            );
        }
        let last = *more.last().unwrap();
        let trigger = AccessRecord {
            seq: i64::try_from(last).unwrap(),
            ..record(day + 20_000, "carol", Action::View)
        };
        d.act(&trigger, finding.clone()).await.unwrap();
        let alert = d
            .store
            .alert(&alert_id(finding.kind, "carol", last))
            .await
            .unwrap()
            .expect("alert stored");
        let mut expected = more[..MAX_CITED - 1].to_vec();
        expected.push(last);
        assert_eq!(alert.entries, expected);
    }

    /// Progress moves with every batch handled; the stored cursor follows at most once a
    /// `CURSOR_EVERY` while records come, and once they stop, so that a restart replays
    /// little. (Module docs, step 4.)
    #[tokio::test]
    async fn progress_follows_each_batch_and_the_cursor_follows_when_quiet() {
        let dir = tempfile::tempdir().unwrap();
        let d = detector(dir.path(), Clock::Records).await;
        let (access, store) = (d.access.clone(), d.store.clone());
        let progress = Progress::default();
        start(
            access.clone(),
            store.clone(),
            d.keyring.clone(),
            ModelConfig::default(),
            Clock::Records,
            Actions::default(),
            progress.clone(),
            Tenure::default(),
        )
        .await
        .unwrap();
        let started = Instant::now();
        let mut last = 0;
        for i in 0..20 {
            last = access.record(view_at(1_000 + i)).await.unwrap();
            assert!(progress.wait_for(last + 1).await);
        }
        assert!(progress.handled() > last);
        // Twenty batches were handled within far less than a second: the cursor was not
        // written for each of them.
        let cursor = store.consumer_cursor(DETECTOR).await.unwrap();
        if started.elapsed() < CURSOR_EVERY {
            assert!(cursor < last + 1, "cursor {cursor} written on every batch");
        }
        // Quiet: the cursor catches up within a `CURSOR_EVERY` or two.
        let deadline = Instant::now() + 4 * CURSOR_EVERY;
        while store.consumer_cursor(DETECTOR).await.unwrap() < progress.handled() {
            assert!(Instant::now() < deadline, "the cursor never caught up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

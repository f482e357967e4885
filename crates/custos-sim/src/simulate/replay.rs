//! A finished run's ledger read back in order, and the detector's model replayed over it:
//! for the feature table ([`export`](super::export)) and for judging a run made with the
//! detector's actions out of reach (`custos simulate --no-actions`), where the findings
//! the live detector did not act on are those of a replay under the configured
//! thresholds (exact up to each person's first finding: nothing the detector found
//! changed the traffic).

use std::collections::{HashMap, VecDeque};

use custos_detector::model::ORG_RISK;
use custos_detector::{Model, ModelConfig};
use custos_service::startup::Opened;
use custos_store::AccessRecord;
use custos_types::calendar::DAY_MS;

use super::report::RaisedAlert;

/// Ledger entries read per step.
const CHUNK: usize = 10_000;

/// Calls `each` on every record of the run's ledger, in ledger order.
pub async fn each_record(
    opened: &Opened,
    mut each: impl FnMut(&AccessRecord),
) -> Result<(), String> {
    let size = opened.direct.access_log(&opened.app).size();
    let mut next = 0u64;
    while next < size {
        let records = opened
            .direct
            .access_log(&opened.app)
            .entries(next, CHUNK)
            .await
            .map_err(|e| e.to_string())?;
        if records.is_empty() {
            break;
        }
        next += records.len() as u64;
        records.iter().for_each(&mut each);
    }
    Ok(())
}

/// The person findings of the model under `config` over the run's ledger, as the alerts
/// the detector would have raised: each cites the person's records from the start of the
/// day it judged to the one that raised it, as the detector's alerts do. Organisation
/// findings are left out: their threshold is not an action's, so the live run raised
/// them already.
pub async fn findings(opened: &Opened, config: ModelConfig) -> Result<Vec<RaisedAlert>, String> {
    let mut model = Model::new(config);
    // Each person's records of about the last two days: (time, ledger index).
    let mut recent: HashMap<String, VecDeque<(i64, u64)>> = HashMap::new();
    let mut alerts = Vec::new();
    each_record(opened, |record| {
        let Ok(seq) = u64::try_from(record.seq) else {
            return;
        };
        let mine = recent.entry(record.staff_id.clone()).or_default();
        while mine
            .front()
            .is_some_and(|&(at, _)| at < record.at - 2 * DAY_MS)
        {
            mine.pop_front();
        }
        mine.push_back((record.at, seq));
        for finding in model.observe(record) {
            if finding.kind == ORG_RISK {
                continue;
            }
            let entries = match finding.day_start {
                Some(since) => mine
                    .iter()
                    .filter(|&&(at, _)| at >= since)
                    .map(|&(_, s)| s)
                    .collect(),
                None => vec![seq],
            };
            alerts.push(RaisedAlert {
                subject: record.staff_id.clone(),
                kind: finding.kind.to_owned(),
                suspended: finding.suspend,
                at: record.at,
                entries,
            });
        }
    })
    .await?;
    Ok(alerts)
}

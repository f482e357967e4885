//! The per-person, per-day feature table of a run, for comparing the detector with other
//! methods on the same data (`bench/iforest.py` scores it with an Isolation Forest).
//!
//! The table is rebuilt by replaying the run's ledger through a fresh detector model with
//! the run's configuration: each row is a person's values at the end of a day they were
//! active, labelled abusive when the person made an abusive access that day (a ledger
//! entry of one of their abusive requests), the rule by which the report judges alerts.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::Path;

use custos_detector::Model;
use custos_detector::features::Feature;
use custos_service::startup::Opened;
use custos_types::RecordedRole;

use super::company;
use super::drive::Outcome;
use super::plan::Plan;
use super::replay;

/// Writes the table as CSV to `path`; returns the number of rows.
pub async fn features_csv(
    opened: &Opened,
    plan: &Plan,
    outcome: &Outcome,
    path: &Path,
) -> Result<u64, String> {
    let file = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    let io = |e: std::io::Error| format!("{}: {e}", path.display());
    write!(out, "day,staff,role,org,scenario,abusive").map_err(io)?;
    for f in Feature::ALL {
        write!(out, ",{}", f.name()).map_err(io)?;
    }
    writeln!(out).map_err(io)?;

    let index: HashMap<&str, usize> = plan
        .company
        .staff
        .iter()
        .enumerate()
        .map(|(i, p)| (p.id.as_str(), i))
        .collect();
    let abusive: HashMap<u64, usize> = plan
        .insiders
        .iter()
        .zip(&outcome.insiders)
        .flat_map(|(i, o)| o.abusive_entries.iter().map(move |&seq| (seq, i.staff)))
        .collect();
    let config = opened.app.config().detector.clone();
    let ignore = config.ignore_roles.clone();
    let feature_config = config.features.clone();
    let mut model = Model::new(config);
    let mut run_day = 0i64;
    let mut rows = 0u64;
    // People with an abusive access on the day being read.
    let mut abusive_today: HashSet<usize> = HashSet::new();
    let mut failed = None;
    replay::each_record(opened, |record| {
        if failed.is_some() {
            return;
        }
        let watched = !ignore.contains(&record.role) && record.role != RecordedRole::System;
        if watched && Some(feature_config.day_of(record.at)) > model.day() {
            match write_day(&mut out, &model, plan, &index, &abusive_today, run_day) {
                Ok(n) => rows += n,
                Err(e) => failed = Some(e),
            }
            abusive_today.clear();
            run_day = company::day_of(record.at);
        }
        if let Some(&staff) = u64::try_from(record.seq)
            .ok()
            .and_then(|seq| abusive.get(&seq))
        {
            abusive_today.insert(staff);
        }
        model.observe(record);
    })
    .await?;
    if let Some(e) = failed {
        return Err(io(e));
    }
    rows += write_day(&mut out, &model, plan, &index, &abusive_today, run_day).map_err(io)?;
    out.flush().map_err(io)?;
    Ok(rows)
}

fn write_day(
    out: &mut impl Write,
    model: &Model,
    plan: &Plan,
    index: &HashMap<&str, usize>,
    abusive_today: &HashSet<usize>,
    run_day: i64,
) -> std::io::Result<u64> {
    let mut rows = 0;
    for (id, values) in model.active_people() {
        let Some(&staff) = index.get(id) else {
            continue;
        };
        let person = &plan.company.staff[staff];
        let insider = plan.insider_of(staff).map(|i| &plan.insiders[i]);
        let scenario = insider.map_or("", |i| plan.scenarios[i.scenario].name.as_str());
        write!(
            out,
            "{run_day},{id},{},{},{scenario},{}",
            person.role,
            plan.company.org_of(person).name,
            u8::from(abusive_today.contains(&staff))
        )?;
        for f in Feature::ALL {
            match values.get(f) {
                Some(v) => write!(out, ",{v}")?,
                None => write!(out, ",")?,
            }
        }
        writeln!(out)?;
        rows += 1;
    }
    Ok(rows)
}

#!/usr/bin/env python3
"""Isolation Forest baseline on a `custos simulate` run.

Scores the same per-person, per-day features the detector computes (written by
`custos simulate ... --features FILE`) with scikit-learn's IsolationForest, the
standard unsupervised anomaly detector, and reports it beside the detector under the
same rule. A person-day is abusive when the person made an abusive access that day. An
insider is detected when one of their abusive person-days is flagged (for the detector:
an alert citing one of their abusive accesses, which cites the person's day so far);
every other flag is false, on honest staff and insiders alike; false flags are counted
as person-days per 1,000 staff-days worked (the detector can raise up to three alerts
on one person-day). Hours to detect: from the first abusive access to the flag (for the
forest, which judges finished days, to the end of the flagged day).

Score it on a run made with `--no-actions`: the detector's actions out of reach, so
neither method judges traffic the other's actions changed (the detector's alerts are
then a replay of the run under its configured thresholds).

Two operating points: contamination 1% (a usual setting, no labels used), and the
threshold that flags as many non-abusive person-days as the detector's false alerts
fell on (set with the labels: an oracle calibration that favours the baseline).

    pip install scikit-learn
    custos simulate --no-actions --scenario scenarios/*.toml --report report.json --features features.csv
    python3 bench/iforest.py features.csv report.json [--out iforest.json] [--seed 1]
"""

import argparse
import csv
import json
import math
import statistics
import sys

# Day 0 of a simulated run begins at this unix ms (2026-01-05 00:00 at UTC+8).
EPOCH_MS = 1_767_542_400_000
DAY_MS = 86_400_000


def load(path):
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        meta = ["day", "staff", "role", "org", "scenario", "abusive"]
        features = [c for c in reader.fieldnames if c not in meta]
        rows = list(reader)
    return rows, features


def matrix(rows, features):
    """Feature matrix; an undefined ratio takes its column's median."""
    columns = []
    for f in features:
        values = [float(r[f]) for r in rows if r[f] != ""]
        values.sort()
        median = values[len(values) // 2] if values else 0.0
        columns.append([float(r[f]) if r[f] != "" else median for r in rows])
    return [list(x) for x in zip(*columns)]


def evaluate(rows, flagged, staff_days, first_abuse):
    insiders = {}
    false = 0
    for r, hit in zip(rows, flagged):
        if r["scenario"]:
            entry = insiders.setdefault(r["staff"], {"scenario": r["scenario"], "day": None})
            if r["abusive"] == "1" and hit:
                day = int(r["day"])
                if entry["day"] is None or day < entry["day"]:
                    entry["day"] = day
            elif hit:
                false += 1
        elif hit:
            false += 1
    scenarios = {}
    hours = []
    for staff, entry in insiders.items():
        if first_abuse.get(staff) is None:
            continue  # never acted
        s = scenarios.setdefault(entry["scenario"], {"insiders": 0, "detected": 0})
        s["insiders"] += 1
        if entry["day"] is not None:
            s["detected"] += 1
            end = EPOCH_MS + (entry["day"] + 1) * DAY_MS
            hours.append((end - first_abuse[staff]) / 3.6e6)
    detected = sum(s["detected"] for s in scenarios.values())
    total = sum(s["insiders"] for s in scenarios.values())
    return {
        "detection_rate": detected / total if total else 0.0,
        "median_hours_to_detect": statistics.median(hours) if hours else None,
        "false_person_days": false,
        "false_person_days_per_1000_staff_days": false * 1000.0 / max(staff_days, 1),
        "scenarios": scenarios,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("features")
    parser.add_argument("report")
    parser.add_argument("--out")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    try:
        from sklearn.ensemble import IsolationForest
    except ImportError:
        sys.exit("scikit-learn is needed: pip install scikit-learn")

    rows, features = load(args.features)
    report = json.load(open(args.report))
    if not report.get("no_actions"):
        print("warning: the run was made with the detector's actions on: its insiders were "
              "cut short by them (make it with --no-actions)", file=sys.stderr)
    staff_days = report["staff_days"]
    first_abuse = {i["id"]: i["first_abuse_at"] for i in report["insiders"]}
    x = matrix(rows, features)
    forest = IsolationForest(n_estimators=200, random_state=args.seed).fit(x)
    # Higher = more anomalous.
    scores = [-s for s in forest.score_samples(x)]

    ranked = sorted(scores, reverse=True)
    at_1pct = ranked[max(0, math.ceil(0.01 * len(ranked)) - 1)]
    other = sorted((s for r, s in zip(rows, scores) if r["abusive"] != "1"), reverse=True)
    budget = int(report["false_alert_person_days"])
    at_budget = other[budget - 1] if 0 < budget <= len(other) else float("inf")

    result = {
        "rows": len(rows),
        "features": features,
        "contamination_1pct": evaluate(rows, [s >= at_1pct for s in scores], staff_days,
                                       first_abuse),
        "at_detector_false_person_days": evaluate(rows, [s >= at_budget for s in scores],
                                                  staff_days, first_abuse),
        "detector": {
            "detection_rate": report["detection_rate"],
            "median_hours_to_detect": report["median_hours_to_detect"],
            "false_person_days": budget,
            "false_person_days_per_1000_staff_days": budget * 1000.0 / max(staff_days, 1),
            "false_alerts_per_1000_staff_days": report["false_alerts_per_1000_staff_days"],
            "scenarios": {k: {"insiders": v["insiders"], "detected": v["detected"]}
                          for k, v in report["scenarios"].items()},
        },
    }
    names = sorted(result["detector"]["scenarios"])
    print(f"{'scenario':<20} {'detector':>10} {'IF 1%':>10} {'IF @budget':>11}")
    for name in names:
        cells = []
        for part in (result["detector"], result["contamination_1pct"],
                     result["at_detector_false_person_days"]):
            s = part["scenarios"].get(name, {"insiders": 0, "detected": 0})
            cells.append(f"{s['detected']}/{s['insiders']}")
        print(f"{name:<20} {cells[0]:>10} {cells[1]:>10} {cells[2]:>11}")
    for label, part in (("detector", result["detector"]), ("IF 1%", result["contamination_1pct"]),
                        ("IF @budget", result["at_detector_false_person_days"])):
        hours = part["median_hours_to_detect"]
        hours = "-" if hours is None else f"{hours:.1f}"
        print(f"{label:<11} detection {part['detection_rate'] * 100:5.1f}%  median {hours} h  "
              f"false person-days per 1,000 staff-days "
              f"{part['false_person_days_per_1000_staff_days']:.2f}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()

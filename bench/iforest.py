#!/usr/bin/env python3
"""Isolation Forest baseline on a `custos simulate` run.

Scores the same per-person, per-day features the detector computes (written by
`custos simulate ... --features FILE`) with scikit-learn's IsolationForest, the
standard unsupervised anomaly detector, and reports it the way the simulator reports
the detector: insiders detected per scenario (any of their abusive days flagged) and
false alerts per 1,000 staff-days (honest person-days flagged).

Two operating points: contamination 1% (a usual setting, no labels used), and the
threshold that flags as many honest person-days as the detector raised false alerts
(set with the labels: an oracle calibration that favours the baseline), counted as
person-days with an alert.

    pip install scikit-learn
    custos simulate --scenario scenarios/*.toml --report report.json --features features.csv
    python3 bench/iforest.py features.csv report.json [--out iforest.json] [--seed 1]
"""

import argparse
import csv
import json
import math
import sys


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


def evaluate(rows, flagged, staff_days):
    insiders = {}
    false = 0
    for r, hit in zip(rows, flagged):
        if r["scenario"]:
            entry = insiders.setdefault(r["staff"], {"scenario": r["scenario"], "detected": False})
            if r["abusive"] == "1" and hit:
                entry["detected"] = True
            elif r["abusive"] != "1" and hit:
                false += 1
        elif hit:
            false += 1
    scenarios = {}
    for entry in insiders.values():
        s = scenarios.setdefault(entry["scenario"], {"insiders": 0, "detected": 0})
        s["insiders"] += 1
        s["detected"] += int(entry["detected"])
    detected = sum(s["detected"] for s in scenarios.values())
    total = sum(s["insiders"] for s in scenarios.values())
    return {
        "detection_rate": detected / total if total else 0.0,
        "false_alerts": false,
        "false_alerts_per_1000_staff_days": false * 1000.0 / max(staff_days, 1),
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
    staff_days = report["staff_days"]
    x = matrix(rows, features)
    forest = IsolationForest(n_estimators=200, random_state=args.seed).fit(x)
    # Higher = more anomalous.
    scores = [-s for s in forest.score_samples(x)]

    ranked = sorted(scores, reverse=True)
    at_1pct = ranked[max(0, math.ceil(0.01 * len(ranked)) - 1)]
    honest = sorted((s for r, s in zip(rows, scores) if r["abusive"] != "1"), reverse=True)
    # The detector's false person-days (a day can raise several alerts) when reported.
    budget = int(report.get("false_alert_person_days", report["false_alerts"]))
    at_budget = honest[budget - 1] if 0 < budget <= len(honest) else float("inf")

    result = {
        "rows": len(rows),
        "features": features,
        "contamination_1pct": evaluate(rows, [s >= at_1pct for s in scores], staff_days),
        "at_detector_false_alerts": evaluate(rows, [s >= at_budget for s in scores], staff_days),
        "detector": {
            "detection_rate": report["detection_rate"],
            "false_alerts_per_1000_staff_days": report["false_alerts_per_1000_staff_days"],
            "scenarios": {k: {"insiders": v["insiders"], "detected": v["detected"]}
                          for k, v in report["scenarios"].items()},
        },
    }
    names = sorted(result["detector"]["scenarios"])
    print(f"{'scenario':<20} {'detector':>10} {'IF 1%':>10} {'IF @budget':>11}")
    for name in names:
        cells = []
        for part in (result["detector"], result["contamination_1pct"], result["at_detector_false_alerts"]):
            s = part["scenarios"].get(name, {"insiders": 0, "detected": 0})
            cells.append(f"{s['detected']}/{s['insiders']}")
        print(f"{name:<20} {cells[0]:>10} {cells[1]:>10} {cells[2]:>11}")
    for label, part in (("detector", result["detector"]), ("IF 1%", result["contamination_1pct"]),
                        ("IF @budget", result["at_detector_false_alerts"])):
        print(f"{label:<11} detection {part['detection_rate'] * 100:5.1f}%  "
              f"false alerts per 1,000 staff-days {part['false_alerts_per_1000_staff_days']:.2f}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()

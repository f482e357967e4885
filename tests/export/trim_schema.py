"""Writes ocsf-1.8.0-custos.json: the part of the OCSF 1.8.0 schema Custos's events use.

How it was made (kept so that it can be made again, for another OCSF version too):

    git clone --branch v1.8.0 https://github.com/ocsf/ocsf-schema /tmp/ocsf-schema
    tests/export/.venv/bin/python tests/export/trim_schema.py /tmp/ocsf-schema

The repository is compiled with ocsf-lib (`ocsf.compile`, every profile, so that each
attribute a profile brings says so); then only the four classes Custos emits, the objects
their events use and the types are kept, without their prose. ocsf-lib's compiler gives an object the
`at_least_one` of the object it extends even when the object states its own; the
object's own, as its file in the repository states it, is put back.
"""

import json
import sys
from pathlib import Path

from ocsf.compile.compiler import Compilation
from ocsf.compile.options import CompilationOptions
from ocsf.repository import read_repo
from ocsf.schema import to_json

CLASSES = ["api_activity", "authentication", "account_change", "detection_finding"]
OBJECTS = [
    "metadata", "product", "actor", "user", "organization", "group", "authorization",
    "policy", "network_endpoint", "api", "request", "service", "resource_details",
    "finding_info", "related_event",
]


def without_descriptions(node):
    """The schema without its prose (descriptions, references): what validation reads."""
    if isinstance(node, dict):
        return {
            key: without_descriptions(value)
            for key, value in node.items()
            if key not in ("description", "references", "@deprecated") and value is not None
        }
    if isinstance(node, list):
        return [without_descriptions(value) for value in node]
    return node


def main() -> None:
    repo_path = Path(sys.argv[1])
    repo = read_repo(repo_path, preserve_raw_data=False)
    schema = json.loads(to_json(Compilation(repo, CompilationOptions()).build()))
    out = {
        "version": schema["version"],
        "classes": {name: schema["classes"][name] for name in CLASSES},
        "objects": {name: schema["objects"][name] for name in OBJECTS},
        "types": schema["types"],
    }
    for name in OBJECTS:
        own = json.loads((repo_path / "objects" / f"{name}.json").read_text())
        if "constraints" in own:
            out["objects"][name]["constraints"] = own["constraints"]
    out = without_descriptions(out)
    target = Path(__file__).with_name(f"ocsf-{schema['version']}-custos.json")
    target.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()

"""Validates OCSF events against the OCSF 1.8.0 schema (ocsf-1.8.0-custos.json, made by
trim_schema.py with ocsf-lib from the OCSF repository) and, for Detection Findings, with
py-ocsf-models' DetectionFinding model as well.

    validate.py FILE...   each FILE holds one JSON event per line, or JSON arrays of them

Checked for every event, as the OCSF schema states them for a class without profiles:
its class is one of the schema's; class_uid, category_uid and type_uid agree
(type_uid = class_uid * 100 + activity_id); every required attribute is there and every
`at_least_one` and `just_one` constraint holds, in the event and in each object inside it; no attribute
is unknown to its class or object (except inside `unmapped`, which is free by
definition); each value has its type (strings, integers, booleans, timestamps, arrays
where the schema says so) and an enum attribute a value of its enum. Exit status 1, with
every error, if any event fails; the last line says how many passed.
"""

import json
import sys
from pathlib import Path

from py_ocsf_models.events.findings.detection_finding import DetectionFinding

SCHEMA = json.loads(Path(__file__).with_name("ocsf-1.8.0-custos.json").read_text())
CLASSES_BY_UID = {c["uid"]: c for c in SCHEMA["classes"].values()}
BASE_TYPES = {
    "string_t": str,
    "integer_t": int,
    "long_t": int,
    "float_t": (int, float),
    "boolean_t": bool,
}


def base_type(type_name: str) -> str:
    """The primitive a type derives from (timestamp_t → long_t …)."""
    seen = 0
    while type_name in SCHEMA["types"] and type_name not in BASE_TYPES and seen < 8:
        type_name = SCHEMA["types"][type_name].get("type", type_name)
        seen += 1
    return type_name


def required(attribute: dict, profiles: list) -> bool:
    """Whether the event must carry the attribute. One a profile brings is required only
    when the event declares the profile (the compiled schema tags with the profile even
    attributes a class also names, such as API Activity's actor, so it stays allowed)."""
    profile = attribute.get("profile")
    return attribute.get("requirement") == "required" and (
        profile is None or profile in profiles
    )


def check_object(value, spec: dict, where: str, profiles: list, errors: list) -> None:
    attributes = spec["attributes"]
    if not isinstance(value, dict):
        errors.append(f"{where}: must be an object")
        return
    for name, attribute in attributes.items():
        if required(attribute, profiles) and name not in value:
            errors.append(f"{where}.{name}: required")
    constraints = spec.get("constraints") or {}
    if "at_least_one" in constraints:
        names = constraints["at_least_one"]
        if not any(name in value for name in names):
            errors.append(f"{where}: needs at least one of {names}")
    if "just_one" in constraints:
        names = constraints["just_one"]
        if sum(name in value for name in names) != 1:
            errors.append(f"{where}: needs exactly one of {names}")
    for name, item in value.items():
        attribute = attributes.get(name)
        if attribute is None:
            errors.append(f"{where}.{name}: not an attribute of {spec.get('name')}")
            continue
        if name == "unmapped":
            if not isinstance(item, dict):
                errors.append(f"{where}.unmapped: must be an object")
            continue
        if attribute.get("is_array"):
            if not isinstance(item, list):
                errors.append(f"{where}.{name}: must be an array")
                continue
            for i, element in enumerate(item):
                check_value(element, attribute, f"{where}.{name}[{i}]", profiles, errors)
        else:
            check_value(item, attribute, f"{where}.{name}", profiles, errors)


def check_value(value, attribute: dict, where: str, profiles: list, errors: list) -> None:
    type_name = attribute.get("type")
    if type_name in SCHEMA["objects"]:
        check_object(value, SCHEMA["objects"][type_name], where, profiles, errors)
        return
    if type_name == "object":
        if not isinstance(value, dict):
            errors.append(f"{where}: must be an object")
        return
    if type_name not in SCHEMA["types"]:
        errors.append(f"{where}: type {type_name} is outside the schema kept for Custos")
        return
    if base_type(type_name) == "json_t":
        return
    python_type = BASE_TYPES.get(base_type(type_name))
    if python_type is None:
        errors.append(f"{where}: type {type_name} has no known base")
        return
    if isinstance(value, bool) and python_type is not bool:
        errors.append(f"{where}: {value!r} is not a {type_name}")
        return
    if not isinstance(value, python_type):
        errors.append(f"{where}: {value!r} is not a {type_name}")
        return
    enum = attribute.get("enum")
    if enum and str(value) not in enum:
        errors.append(f"{where}: {value!r} is not one of {sorted(enum)}")


def check_event(event: dict) -> list:
    errors: list = []
    spec = CLASSES_BY_UID.get(event.get("class_uid"))
    if spec is None:
        return [f"class_uid {event.get('class_uid')!r} is not a class Custos emits"]
    profiles = (event.get("metadata") or {}).get("profiles") or []
    check_object(event, spec, spec["name"], profiles, errors)
    if event.get("type_uid") != spec["uid"] * 100 + (event.get("activity_id") or 0):
        errors.append("type_uid must be class_uid * 100 + activity_id")
    category = spec.get("category_uid")
    if category is not None and event.get("category_uid") != category:
        errors.append(f"category_uid must be {category}")
    if spec["uid"] == 2004:
        try:
            DetectionFinding.model_validate(event)
        except Exception as e:  # pydantic's ValidationError, whatever the version
            errors.append(f"py-ocsf-models DetectionFinding: {e}")
    return errors


def events_of(path: Path):
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line:
            continue
        parsed = json.loads(line)
        yield from parsed if isinstance(parsed, list) else [parsed]


def main() -> int:
    passed = failed = 0
    for path in map(Path, sys.argv[1:]):
        for event in events_of(path):
            errors = check_event(event)
            if errors:
                failed += 1
                uid = (event.get("metadata") or {}).get("uid")
                for error in errors:
                    print(f"{path.name}: event {uid}: {error}")
            else:
                passed += 1
    print(f"ocsf: {passed} passed, {failed} failed")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())

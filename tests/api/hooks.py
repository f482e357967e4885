"""Schemathesis hooks for the Custos API (loaded by tests/api/schemathesis.sh).

Each one teaches schemathesis something the OpenAPI document states but no generic
tool can act on; none of them loosens a check.
"""

import json
import os

import schemathesis
from hypothesis import strategies as st

# `format: phone` says "a number valid in its numbering plan", which no pattern can
# say. Valid numbers in the notations the server reads; those without a country code
# are Chinese mobiles, read in the demo's default region (CN).
PHONES = [
    "13800138000",
    "139 1111 2222",
    "+86 138-0013-8000",
    "0086 137 1111 2222",
    "１３８００１３８０００",
    "+1 650 253 0000",
    "+44 20 7946 0958",
    "+49 30 901820",
    "(+86) 138.0013.8000",
]
schemathesis.openapi.format("phone", st.sampled_from(PHONES))


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx, value):
    """One JSON document per line: how imports and canaries are sent. A value that is
    not an array (a negative case) goes as one JSON document."""
    if isinstance(value, list):
        return "".join(json.dumps(item) + "\n" for item in value).encode()
    return json.dumps(value).encode()


@schemathesis.hook
def filter_body(context, body):
    """NDJSON carries a sequence: a body that is not one has no NDJSON form at all, so
    a generated non-array (a negative case) cannot be sent as what it claims to be."""
    operation = context.operation
    if operation is not None and operation.path in ("/v1/customers/import", "/v1/canaries"):
        return isinstance(body, list)
    return True


# The staff id whose token this run uses (exported by the script).
OWN_ID = os.environ.get("CUSTOS_ST_STAFF")
# Another staff entry of the same demo, suspended in its place.
STAND_IN = os.environ.get("CUSTOS_ST_STAND_IN")


@schemathesis.hook
def before_call(context, case, kwargs):
    """A run must not suspend the person it runs as: every later request would be
    refused as `suspended`, and nothing after it would be tested. (A stateful run
    learns that id from GET /v1/me.) Suspending someone else exercises the same code."""
    if (
        OWN_ID
        and STAND_IN
        and case.operation.path == "/v1/staff/{id}/suspend"
        and (case.path_parameters or {}).get("id") == OWN_ID
    ):
        case.path_parameters["id"] = STAND_IN

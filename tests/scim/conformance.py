"""SCIM conformance of a running Custos: scim2-tester (PyPI) discovers what the server
publishes and runs its checks of RFC 7643 and RFC 7644 against it (discovery, create,
read, attribute projection, search, replace, delete, PATCH add/replace/remove).

    python conformance.py <base URL ending in /scim/v2> <token of a scim principal>

Prints each check; exits 1 if any check errs (skipped checks are listed, not failures).
"""

import sys

from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server


def main() -> int:
    base, token = sys.argv[1], sys.argv[2]
    http = Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    client = SyncSCIMClient(http)
    results = check_server(client)
    errors = 0
    for r in results:
        status = r.status.name
        if r.status == Status.ERROR:
            errors += 1
        where = f"{r.resource_type}: " if getattr(r, "resource_type", None) else ""
        print(f"{status:8} {where}{r.title}: {r.reason or ''}".rstrip())
    print(f"scim conformance: {len(results)} checks, {errors} errors")
    return 1 if errors or not results else 0


if __name__ == "__main__":
    sys.exit(main())

"""A real SMTP server for the relay tests (aiosmtpd), on a free loopback port.

Prints `listening <port>` once it serves, then one JSON line per message it takes:
{"from": ..., "to": [...], "data": ...}. With --reject it refuses every recipient the
way real servers do, echoing the address in its reply (`550 <addr>: no such user`), so
a test can check that Custos never passes that text on.
"""

import argparse
import asyncio
import json
import socket
import sys

from aiosmtpd.controller import Controller


class Handler:
    def __init__(self, reject):
        self.reject = reject

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.reject:
            return f"550 5.1.1 <{address}>: Recipient address rejected: no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        print(
            json.dumps(
                {
                    "from": envelope.mail_from,
                    "to": envelope.rcpt_tos,
                    "data": envelope.content.decode("utf-8", "replace"),
                }
            ),
            flush=True,
        )
        return "250 Message accepted for delivery"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--reject", action="store_true")
    args = parser.parse_args()
    # aiosmtpd checks that it serves by connecting to its own port: it needs a fixed
    # one, so take a free one first.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Handler(args.reject), hostname="127.0.0.1", port=port)
    controller.start()
    print(f"listening {port}", flush=True)
    try:
        # Until the test closes our stdin (or ends).
        sys.stdin.read()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()

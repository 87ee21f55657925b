#!/usr/bin/env python3
"""A real SMTP server for the tests (aiosmtpd, from PyPI): accepts every message and writes it,
as received, to DIR/<n>.eml (written under a temporary name, then renamed, so a reader never
sees half a message). With --auth USER:PASSWORD it requires that login (AUTH PLAIN or LOGIN,
allowed without TLS: the tests run on loopback). Prints `listening <port>` once it serves.

With --tls CERT KEY it speaks TLS: STARTTLS, required before anything else (a login
included), or with --implicit TLS from the first byte.

    smtp_sink.py DIR [--port N] [--auth USER:PASSWORD] [--tls CERT KEY [--implicit]]
"""

import argparse
import asyncio
import itertools
import os
import signal
import socket
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Sink:
    def __init__(self, directory):
        self.directory = directory
        existing = [int(n.split(".")[0]) for n in os.listdir(directory) if n.endswith(".eml")]
        self.numbers = itertools.count(max(existing, default=0) + 1)

    async def handle_DATA(self, server, session, envelope):
        number = next(self.numbers)
        path = os.path.join(self.directory, f"{number}.eml")
        with open(path + ".part", "wb") as out:
            out.write(envelope.original_content or envelope.content)
        os.rename(path + ".part", path)
        return "250 Message accepted for delivery"


def authenticator_for(credentials):
    user, password = credentials.split(":", 1)

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == user
            and auth_data.password.decode() == password
        )
        return AuthResult(success=ok)

    return authenticate


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("directory")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--auth")
    parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    parser.add_argument("--implicit", action="store_true")
    args = parser.parse_args()
    port = args.port or free_port()
    options = {}
    if args.auth:
        options = dict(
            authenticator=authenticator_for(args.auth),
            auth_required=True,
            # Under STARTTLS a login before the upgrade is refused. (aiosmtpd does not count
            # implicit TLS as TLS here, so there it would refuse every login.)
            auth_require_tls=bool(args.tls) and not args.implicit,
        )
    if args.tls:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*args.tls)
        if args.implicit:
            options["ssl_context"] = context
        else:
            options.update(tls_context=context, require_starttls=True)
    controller = Controller(Sink(args.directory), hostname="127.0.0.1", port=port, **options)
    controller.start()
    print(f"listening {port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.new_event_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.run_until_complete(stop.wait())
    controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

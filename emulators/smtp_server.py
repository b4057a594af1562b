"""An SMTP server for sesroute's tests that keeps what it receives.

Each accepted message is written to DIR as N.eml (the message as received)
and N.json (the envelope: mail_from, rcpt_tos), N counting from 1; the .json
is written last, so a reader that sees it finds the .eml complete.

    smtp_server.py --port PORT --dir DIR

Listens on 127.0.0.1 only; prints "listening on 127.0.0.1:PORT" once ready
and runs until killed.
"""

import argparse
import asyncio
import itertools
import json
import os
import signal

from aiosmtpd.controller import Controller


class Keeper:
    def __init__(self, directory):
        self.directory = directory
        self.counter = itertools.count(1 + len([n for n in os.listdir(directory) if n.endswith(".json")]))

    async def handle_DATA(self, server, session, envelope):
        n = next(self.counter)
        base = os.path.join(self.directory, str(n))
        with open(base + ".eml", "wb") as f:
            f.write(envelope.original_content or envelope.content)
        with open(base + ".json.tmp", "w") as f:
            json.dump({"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos}, f)
        os.replace(base + ".json.tmp", base + ".json")
        return "250 Message accepted for delivery"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", required=True)
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    controller = Controller(Keeper(args.dir), hostname="127.0.0.1", port=args.port)
    controller.start()
    print(f"listening on 127.0.0.1:{args.port}", flush=True)
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.run_until_complete(stop.wait())
    controller.stop()


if __name__ == "__main__":
    main()

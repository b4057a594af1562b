"""An SMTP server for sesroute's tests that keeps what it receives.

Each accepted message is written to DIR as N.eml (the message as received)
and N.json (the envelope: mail_from, rcpt_tos), N counting from 1; the .json
is written last, so a reader that sees it finds the .eml complete.

    smtp_server.py --port PORT --dir DIR [--max-bytes N] [--answer "554 ..."]

--max-bytes refuses messages of more than N bytes, as servers with a size
limit do (aiosmtpd answers "552 Error: Too much mail data"); --answer gives
that answer to every message instead of accepting it (SES's own refusals,
such as "554 Message rejected: Email address is not verified. ...").

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
    def __init__(self, directory, answer=None):
        self.directory = directory
        self.answer = answer
        self.counter = itertools.count(1 + len([n for n in os.listdir(directory) if n.endswith(".json")]))

    async def handle_DATA(self, server, session, envelope):
        if self.answer:
            return self.answer
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
    parser.add_argument("--max-bytes", type=int, default=None)
    parser.add_argument("--answer", default=None)
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    limits = {} if args.max_bytes is None else {"data_size_limit": args.max_bytes}
    controller = Controller(Keeper(args.dir, args.answer), hostname="127.0.0.1", port=args.port, **limits)
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

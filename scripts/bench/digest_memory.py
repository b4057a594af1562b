#!/usr/bin/env python3
"""The driver of scripts/bench-digest-memory (Python standard library only).

Seeds a fauxqs queue with large SNS-enveloped bounces, runs `sesroute run`
under /usr/bin/time -v with one email digest sink (an hour's window) until
every notification is held for a digest or delivered, stops it with SIGTERM
(the pending digest goes out) and prints the peak RSS.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sqsbench import Sqs  # noqa: E402


def bounce(i: int, body_kb: int) -> str:
    """An SNS envelope around a bounce of about `body_kb` KB: a 150 KB
    diagnostic code, the rest in a long subject and tags."""
    diagnostic = "smtp; 550 5.7.1 " + ("the remote server said a great deal " * 4300)[:150_000]
    ses = {
        "notificationType": "Bounce",
        "mail": {
            "timestamp": "2026-11-24T10:00:00.000Z",
            "source": "app@dev.acme.test",
            "messageId": f"big-{i}-{uuid.uuid4()}",
            "destination": [f"user{i}@customer.test"],
            "commonHeaders": {"subject": "s" * 2000},
            "tags": {"filler": ["x" * 1000] * 10},
        },
        "bounce": {
            "bounceType": "Permanent",
            "bounceSubType": "General",
            "timestamp": "2026-11-24T10:00:01.000Z",
            "bouncedRecipients": [
                {"emailAddress": f"user{i}@customer.test", "status": "5.7.1", "diagnosticCode": diagnostic}
            ],
        },
    }
    message = json.dumps(ses, separators=(",", ":"))
    pad = body_kb * 1024 - len(message) - 600
    if pad > 0:
        ses["mail"]["tags"]["pad"] = ["p" * pad]
        message = json.dumps(ses, separators=(",", ":"))
    envelope = {
        "Type": "Notification",
        "MessageId": str(uuid.uuid4()),
        "TopicArn": "arn:aws:sns:us-east-1:000000000000:ses-bounces",
        "Message": message,
        "Timestamp": "2026-11-24T10:00:02.000Z",
        "SignatureVersion": "1",
        "Signature": "x",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-x.pem",
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
    }
    return json.dumps(envelope, separators=(",", ":"))


def metric(text: str, name: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


def main() -> int:
    p = argparse.ArgumentParser()
    for arg in ("--binary", "--endpoint", "--work"):
        p.add_argument(arg, required=True)
    for arg in ("--smtp-port", "--listen-port", "--notifications", "--body-kb"):
        p.add_argument(arg, type=int, required=True)
    a = p.parse_args()

    sqs = Sqs(a.endpoint)
    queue_url = sqs.create_queue(f"digest-memory-{uuid.uuid4().hex[:8]}")
    sizes = []
    for start in range(0, a.notifications, 10):
        entries = []
        for i in range(start, min(start + 10, a.notifications)):
            body = bounce(i, a.body_kb)
            sizes.append(len(body))
            entries.append({"Id": str(i - start), "MessageBody": body})
        # One at a time: a batch call is limited to 256 KiB in all.
        for entry in entries:
            sqs.call("SendMessage", {"QueueUrl": queue_url, "MessageBody": entry["MessageBody"]})
    print(f"seeded {len(sizes)} messages of {min(sizes) // 1024}-{max(sizes) // 1024} KB")

    config = os.path.join(a.work, "config.toml")
    with open(config, "w", encoding="utf-8") as f:
        f.write(
            f"""[aws]
region = "us-east-1"
endpoint_url = "{a.endpoint}"

[server]
listen = "127.0.0.1:{a.listen_port}"

[runtime]
shutdown_grace_secs = 60

[[sources]]
name = "in"
queue_url = "{queue_url}"
wait_time_secs = 1

[sinks.digest]
type = "email"
mode = "digest"
digest_window_secs = 3600
to = "dev@acme.test"
from = "sesroute@acme.test"
host = "127.0.0.1"
port = {a.smtp_port}
tls = "none"

[[routes]]
name = "all"
sinks = ["digest"]
"""
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESROUTE_")}
    env["SESROUTE_LOG"] = "warn"
    time_out = os.path.join(a.work, "time.txt")
    with open(os.path.join(a.work, "daemon.log"), "wb") as log:
        proc = subprocess.Popen(
            ["/usr/bin/time", "-v", "-o", time_out, a.binary, "run", "--config", config, "--log-format", "json"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    url = f"http://127.0.0.1:{a.listen_port}/metrics"
    deadline = time.monotonic() + 300
    settled = None
    while time.monotonic() < deadline:
        time.sleep(0.5)
        try:
            text = urllib.request.urlopen(url, timeout=2).read().decode()
        except OSError:
            continue
        held = metric(text, "sesroute_sink_held_notifications")
        delivered = sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("sesroute_messages_total") and 'outcome="delivered"' in line
        )
        if held + delivered >= a.notifications:
            settled = (held, delivered)
            break
    time.sleep(2)
    # The signal goes to the daemon, not to time(1), which would die of it
    # without a report; the peak (VmHWM) is read before the pending digest goes out.
    with open(f"/proc/{proc.pid}/task/{proc.pid}/children", encoding="utf-8") as f:
        daemon_pid = int(f.read().split()[0])
    with open(f"/proc/{daemon_pid}/status", encoding="utf-8") as f:
        held_kb = int(re.search(r"VmHWM:\s+(\d+) kB", f.read()).group(1))
    os.kill(daemon_pid, signal.SIGTERM)
    proc.wait(timeout=120)
    with open(time_out, encoding="utf-8") as f:
        timing = f.read()
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", timing).group(1))
    print(f"peak RSS while held: {held_kb / 1024:.1f} MiB ({held_kb} kB)")
    mails = sorted(glob.glob(os.path.join(a.work, "mail", "*.eml")))
    left = sum(sqs.depth(queue_url).values())
    print(f"held when settled: {settled}")
    print(f"digests accepted by the SMTP server: {len(mails)} ({sum(os.path.getsize(m) for m in mails) // 1024} KB)")
    print(f"messages left in the queue: {left}")
    print(f"daemon exit status: {proc.returncode}")
    print(f"peak RSS: {rss_kb / 1024:.1f} MiB ({rss_kb} kB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

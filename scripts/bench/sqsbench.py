#!/usr/bin/env python3
"""Helpers for scripts/bench-daemon (Python 3.11 standard library; signed
envelopes, `seed --sign-key`, also need the `cryptography` package).

Talks to an SQS endpoint that speaks the JSON protocol (fauxqs), seeds a queue
with realistic SES notifications, runs `sesroute run` until the queue is
drained and measures it, and prints the final table.

  sqsbench.py create-queue ENDPOINT NAME          -> prints the queue URL
  sqsbench.py seed ENDPOINT QUEUE_URL COUNT [--threads N] [--fixtures DIR]
                  [--sign-key KEY.pem --cert-url URL --topic-arn ARN]
  sqsbench.py depth ENDPOINT QUEUE_URL            -> visible+in flight+delayed
  sqsbench.py run-daemon --binary B --config C --endpoint E --queue-url U
                         --expected N [--sink FILE] --log L --result R ...
  sqsbench.py proxy-check PROXY_ENDPOINT QUEUE_URL [--seconds S] [--connections C]
  sqsbench.py report RESULT.json...
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from emulator_client import sqs_headers

GOAL_RATE = 1000.0  # notifications per second, direct to fauxqs
GOAL_CPU_US = 100.0  # daemon CPU per notification
GOAL_RSS_MB = 64.0  # peak RSS
GOAL_SCALED_RATE = 5000.0  # notifications per second with 16 receivers behind the proxy
GOAL_SCALED_RECEIVERS = 16


def log(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


class SqsError(Exception):
    pass


class Sqs:
    """A minimal SQS JSON-protocol client on one keep-alive connection."""

    def __init__(self, endpoint: str, timeout: float = 30.0):
        u = urllib.parse.urlsplit(endpoint)
        self.host = u.hostname or "127.0.0.1"
        self.port = u.port or 80
        self.timeout = timeout
        self.conn: http.client.HTTPConnection | None = None

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def call(self, action: str, payload: dict) -> dict:
        body = json.dumps(payload).encode()
        headers = sqs_headers(action)
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self.conn.request("POST", "/", body=body, headers=headers)
                resp = self.conn.getresponse()
                data = resp.read()
            except (ConnectionError, http.client.HTTPException, OSError):
                self.close()
                if attempt == 2:
                    raise
                continue
            if resp.status != 200:
                raise SqsError(f"{action}: HTTP {resp.status}: {data[:300]!r}")
            return json.loads(data) if data else {}
        raise AssertionError("unreachable")

    def create_queue(self, name: str) -> str:
        return self.call("CreateQueue", {"QueueName": name})["QueueUrl"]

    def depth(self, queue_url: str) -> dict[str, int]:
        names = [
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ]
        out = self.call("GetQueueAttributes", {"QueueUrl": queue_url, "AttributeNames": names})
        attrs = out.get("Attributes", {})
        return {n: int(attrs.get(n, "0")) for n in names}


# --------------------------------------------------------------------------
# Realistic bodies


def load_templates(fixtures: str) -> list[str]:
    """Bare SES notification JSON documents, compact, with @@MESSAGE_ID@@ where
    mail.messageId (and commonHeaders.messageId) were.

    From the corpus's *-bare.json bodies, and the `Message` of its *-sns.json
    envelopes, keeping only those that expected.jsonl says are notifications
    (so every seeded message is routed and delivered, none ignored)."""
    expected = {}
    with open(os.path.join(fixtures, "expected.jsonl"), encoding="utf-8") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                expected[row["file"]] = row
    templates = []
    for path in sorted(glob.glob(os.path.join(fixtures, "bodies", "*.json"))):
        name = os.path.basename(path)
        if "kind" not in expected.get(name, {}):
            continue
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        if name.endswith("-sns.json"):
            doc = json.loads(doc["Message"])
        elif not name.endswith("-bare.json"):
            continue
        mail = doc.get("mail")
        if not isinstance(mail, dict) or "messageId" not in mail:
            continue
        mail["messageId"] = "@@MESSAGE_ID@@"
        common = mail.get("commonHeaders")
        if isinstance(common, dict) and "messageId" in common:
            common["messageId"] = "@@MESSAGE_ID@@"
        templates.append(json.dumps(doc, separators=(",", ":"), ensure_ascii=False))
    if not templates:
        raise SystemExit(f"no notification templates found under {fixtures}")
    return templates


def make_body(templates: list[str], i: int, run_id: str) -> str:
    # Shaped like an SES message id: 16 hex, a UUID, -000000; unique per message.
    message_id = f"0102{run_id}{i:08x}-{uuid.uuid4()}-000000"
    return templates[i % len(templates)].replace("@@MESSAGE_ID@@", message_id)


class EnvelopeSigner:
    """Wraps a bare body in an SNS Notification envelope signed with
    SignatureVersion 2 (SHA256withRSA) over SNS's string to sign."""

    def __init__(self, key_path: str, cert_url: str, topic_arn: str):
        try:
            from cryptography.hazmat.primitives import hashes, serialization
            from cryptography.hazmat.primitives.asymmetric import padding
        except ImportError as e:
            raise SystemExit("seed --sign-key needs the Python package `cryptography`") from e
        with open(key_path, "rb") as f:
            self.key = serialization.load_pem_private_key(f.read(), password=None)
        self.padding = padding.PKCS1v15()
        self.hash = hashes.SHA256()
        self.cert_url = cert_url
        self.topic_arn = topic_arn

    def wrap(self, message: str) -> str:
        import base64

        fields = {
            "Message": message,
            "MessageId": str(uuid.uuid4()),
            "Timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
            "TopicArn": self.topic_arn,
            "Type": "Notification",
        }
        text = "".join(f"{name}\n{value}\n" for name, value in fields.items())
        signature = self.key.sign(text.encode(), self.padding, self.hash)
        envelope = dict(fields)
        envelope["SignatureVersion"] = "2"
        envelope["Signature"] = base64.b64encode(signature).decode()
        envelope["SigningCertURL"] = self.cert_url
        envelope["UnsubscribeURL"] = f"https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={self.topic_arn}:0"
        return json.dumps(envelope)


def seed(
    endpoint: str, queue_url: str, count: int, threads: int, fixtures: str, signer: EnvelopeSigner | None = None
) -> float:
    templates = load_templates(fixtures)
    run_id = f"{int(time.time()) & 0xFFFF:04x}"
    batches = [(start, min(start + 10, count)) for start in range(0, count, 10)]
    lock = threading.Lock()
    errors: list[str] = []
    next_batch = [0]

    def worker() -> None:
        sqs = Sqs(endpoint)
        try:
            while True:
                with lock:
                    if next_batch[0] >= len(batches) or errors:
                        return
                    start, end = batches[next_batch[0]]
                    next_batch[0] += 1
                bodies = [make_body(templates, i, run_id) for i in range(start, end)]
                if signer is not None:
                    bodies = [signer.wrap(body) for body in bodies]
                entries = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies)]
                out = sqs.call("SendMessageBatch", {"QueueUrl": queue_url, "Entries": entries})
                if out.get("Failed"):
                    with lock:
                        errors.append(json.dumps(out["Failed"])[:300])
                    return
        except Exception as e:  # reported below
            with lock:
                errors.append(repr(e))
        finally:
            sqs.close()

    started = time.perf_counter()
    pool = [threading.Thread(target=worker) for _ in range(max(1, threads))]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise SystemExit(f"seeding failed: {errors[0]}")
    return elapsed


# --------------------------------------------------------------------------
# Running and measuring the daemon


def proc_cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        stat = f.read()
    # Fields after the command name (which is in parentheses and may hold spaces).
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def proc_status_kb(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


class LineCounter:
    """Counts the lines of a growing file, reading only what was appended."""

    def __init__(self, path: str):
        self.path = path
        self.offset = 0
        self.lines = 0

    def poll(self) -> int:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                while chunk := f.read(1 << 20):
                    self.lines += chunk.count(b"\n")
                    self.offset += len(chunk)
        except FileNotFoundError:
            pass
        return self.lines


def fetch_json(url: str) -> dict | None:
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=5)
    try:
        conn.request("GET", u.path)
        return json.loads(conn.getresponse().read())
    except (OSError, ValueError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def run_daemon(a: argparse.Namespace) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESROUTE_")}
    env["SESROUTE_LOG"] = a.log_level
    sqs = Sqs(a.endpoint)
    before = sqs.depth(a.queue_url)
    seeded = sum(before.values())
    if seeded != a.expected:
        log(f"warning: the queue holds {seeded} messages, expected {a.expected}")
    counter = LineCounter(a.sink) if a.sink else None
    proxy_before = fetch_json(a.proxy_stats + "?reset-max") if a.proxy_stats else None

    cmd = [a.binary, "run", "--config", a.config, "--log-format", "json"]
    with open(a.log, "wb") as logf:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, env=env)
    perf = None
    if a.perf:
        with open(a.perf + ".log", "wb") as perf_log:
            perf = subprocess.Popen(
                ["perf", "record", "-F", "1999", "-g", "-o", a.perf, "-p", str(proc.pid)],
                stdout=subprocess.DEVNULL,
                stderr=perf_log,
            )
    deadline = started + a.timeout
    first_line_at = None
    drained_at = None
    failure = None
    lines = 0
    last_depth_check = 0.0
    depth = before
    try:
        while True:
            now = time.perf_counter()
            if proc.poll() is not None:
                failure = f"the daemon exited early with status {proc.returncode}"
                break
            if now > deadline:
                failure = f"not drained after {a.timeout:.0f} s"
                break
            if counter is not None:
                lines = counter.poll()
                if lines and first_line_at is None:
                    first_line_at = now
            sink_done = counter is None or lines >= a.expected
            # Ask the queue only once the sink has everything (or, without a
            # file sink, ten times a second), so polling costs fauxqs little.
            if sink_done and now - last_depth_check >= (0.02 if counter is not None else 0.1):
                last_depth_check = now
                depth = sqs.depth(a.queue_url)
                if sum(depth.values()) == 0:
                    drained_at = time.perf_counter()
                    break
            time.sleep(0.005)

        cpu = vm_hwm = vm_rss = threads = None
        if proc.poll() is None:
            cpu = proc_cpu_seconds(proc.pid)
            vm_hwm = proc_status_kb(proc.pid, "VmHWM")
            vm_rss = proc_status_kb(proc.pid, "VmRSS")
            threads = proc_status_kb(proc.pid, "Threads")
        proxy_after = fetch_json(a.proxy_stats) if a.proxy_stats else None
        if perf is not None:
            perf.send_signal(signal.SIGINT)
            perf.wait(timeout=60)
        exit_status = None
        stop_secs = None
        if proc.poll() is None:
            stop_started = time.perf_counter()
            proc.send_signal(signal.SIGTERM)
            try:
                exit_status = proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                exit_status = "killed after 60 s"
            stop_secs = time.perf_counter() - stop_started
        else:
            exit_status = proc.returncode
    finally:
        if perf is not None and perf.poll() is None:
            perf.send_signal(signal.SIGINT)
            perf.wait(timeout=60)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sqs.close()

    unique_ids = None
    if counter is not None:
        lines = counter.poll()
        # Every line should be a different notification (no double delivery).
        ids = set()
        with open(a.sink, encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    ids.add(json.loads(line).get("message_id"))
                except ValueError:
                    pass
        unique_ids = len(ids)
    wall = (drained_at or time.perf_counter()) - started
    warn_lines = []
    with open(a.log, encoding="utf-8", errors="replace") as f:
        for line in f:
            if '"level":"WARN"' in line or '"level":"ERROR"' in line:
                warn_lines.append(line.rstrip())
    result = {
        "label": a.label,
        "receivers": a.receivers,
        "max_in_flight": a.max_in_flight,
        "via_proxy": bool(a.proxy_stats),
        "expected": a.expected,
        "seeded": seeded,
        "sink_lines": lines if counter is not None else None,
        "unique_message_ids": unique_ids,
        "drained": drained_at is not None,
        "failure": failure,
        "wall_secs": wall,
        "startup_secs": (first_line_at - started) if first_line_at else None,
        "rate": a.expected / wall if drained_at else None,
        "steady_rate": (
            a.expected / (drained_at - first_line_at)
            if drained_at and first_line_at and drained_at > first_line_at
            else None
        ),
        "cpu_secs": cpu,
        "cpu_us_per_msg": (cpu * 1e6 / a.expected) if cpu is not None and drained_at else None,
        "cpu_util": (cpu / wall) if cpu is not None else None,
        "vm_hwm_kb": vm_hwm,
        "vm_rss_kb": vm_rss,
        "threads": threads,
        "exit_status": exit_status,
        "stop_secs": stop_secs,
        "warnings": len(warn_lines),
        "first_warnings": warn_lines[:3],
        "depth_at_end": depth,
        "log_level": a.log_level,
    }
    if proxy_before and proxy_after:
        dt = proxy_after["time"] - proxy_before["time"]
        result["proxy"] = {
            "requests": proxy_after["requests"] - proxy_before["requests"],
            "by_target": {
                k: v - proxy_before["by_target"].get(k, 0)
                for k, v in proxy_after["by_target"].items()
                if v - proxy_before["by_target"].get(k, 0)
            },
            "cpu_util": (proxy_after["cpu"] - proxy_before["cpu"]) / dt if dt > 0 else None,
            "max_concurrent": proxy_after["max_concurrent"],
            "max_concurrent_by_target": proxy_after.get("max_concurrent_by_target", {}),
            "connections": proxy_after["connections"] - proxy_before["connections"],
        }
    with open(a.result, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
    summary = (
        f"{a.label}: {'drained' if drained_at else 'NOT drained'} in {wall:.2f} s"
        + (f", {result['rate']:.0f} notifications/s" if result["rate"] else "")
        + (f", CPU {result['cpu_us_per_msg']:.0f} us/notification" if result["cpu_us_per_msg"] else "")
        + (f", peak RSS {vm_hwm / 1024:.1f} MB" if vm_hwm else "")
        + f", exit {exit_status}"
        + (f", sink lines {lines} ({unique_ids} distinct)" if counter is not None else "")
        + (f", {len(warn_lines)} warn/error log lines" if warn_lines else "")
    )
    log(summary)
    if failure:
        try:
            depth = Sqs(a.endpoint).depth(a.queue_url)
            result["depth_at_end"] = depth
        except (OSError, SqsError, http.client.HTTPException):
            pass
        log(f"FAILED: {failure}; queue now {depth}; daemon log tail:")
        with open(a.result, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1)
        with open(a.log, encoding="utf-8", errors="replace") as f:
            for line in f.readlines()[-10:]:
                print("  " + line.rstrip(), file=sys.stderr)
        return 1
    if warn_lines:
        for line in warn_lines[:3]:
            log("  log: " + line[:300])
    return 0


# --------------------------------------------------------------------------
# Proxy capacity check: many concurrent keep-alive clients through the proxy


async def _hammer(host: str, port: int, queue_url: str, seconds: float, connections: int) -> tuple[int, list[float]]:
    body = json.dumps({"QueueUrl": queue_url, "AttributeNames": ["ApproximateNumberOfMessages"]}).encode()
    # Built once: the loop below only writes it.
    headers = {"Host": f"{host}:{port}", **sqs_headers("GetQueueAttributes"), "Content-Length": str(len(body))}
    head = "POST / HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    request = head.encode() + body
    stop_at = time.perf_counter() + seconds
    done = 0
    latencies: list[float] = []

    async def one() -> None:
        nonlocal done
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while time.perf_counter() < stop_at:
                t = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                await reader.readexactly(length)
                if not head.startswith(b"HTTP/1.1 200"):
                    raise RuntimeError(head[:100])
                done += 1
                latencies.append(time.perf_counter() - t)
        finally:
            writer.close()

    await asyncio.gather(*(one() for _ in range(connections)))
    return done, latencies


def proxy_check(a: argparse.Namespace) -> int:
    u = urllib.parse.urlsplit(a.endpoint)
    started = time.perf_counter()
    done, latencies = asyncio.run(_hammer(u.hostname, u.port, a.queue_url, a.seconds, a.connections))
    elapsed = time.perf_counter() - started
    latencies.sort()
    p50 = latencies[len(latencies) // 2] * 1000 if latencies else 0
    p99 = latencies[int(len(latencies) * 0.99)] * 1000 if latencies else 0
    ideal = a.connections / (a.delay_ms / 1000) if a.delay_ms else 0
    result = {
        "requests_per_sec": done / elapsed,
        "p50_ms": p50,
        "p99_ms": p99,
        "connections": a.connections,
        "ideal": ideal,
    }
    if a.result:
        with open(a.result, "w", encoding="utf-8") as f:
            json.dump(result, f)
    log(
        f"proxy check: {done / elapsed:.0f} requests/s over {a.connections} connections "
        f"(ideal with a {a.delay_ms:.0f} ms delay: {ideal:.0f}/s); latency p50 {p50:.1f} ms, p99 {p99:.1f} ms"
    )
    return 0


# --------------------------------------------------------------------------
# Final table


def fmt(v, spec: str, missing: str = "-") -> str:
    return missing if v is None else format(v, spec)


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("ok" if ok else "MISSED")


def report(a: argparse.Namespace) -> int:
    results = []
    for path in a.results:
        try:
            with open(path, encoding="utf-8") as f:
                results.append(json.load(f))
        except FileNotFoundError:
            pass
    check = None
    if a.proxy_check:
        try:
            with open(a.proxy_check, encoding="utf-8") as f:
                check = json.load(f)
        except FileNotFoundError:
            pass
    direct = [r for r in results if not r["via_proxy"]]
    scaled = [r for r in results if r["via_proxy"]]
    out = []
    if direct:
        r = direct[0]
        out.append(f"Direct to fauxqs: {r['expected']:,} notifications, receivers {r['receivers']}, "
                   f"max_in_flight {r['max_in_flight']}, wait_time_secs 1, SESROUTE_LOG={r['log_level']}")
        out.append(f"  {'measure':34} {'result':>14}   {'goal':>14}   verdict")
        rate_ok = r["rate"] >= GOAL_RATE if r["rate"] else False
        cpu_ok = r["cpu_us_per_msg"] <= GOAL_CPU_US if r["cpu_us_per_msg"] is not None else None
        rss_mb = r["vm_hwm_kb"] / 1024 if r["vm_hwm_kb"] else None
        rss_ok = rss_mb <= GOAL_RSS_MB if rss_mb is not None else None
        lines_ok = r["sink_lines"] == r["expected"] if r["sink_lines"] is not None else None
        unique = r.get("unique_message_ids")
        unique_ok = unique == r["expected"] if unique is not None else None
        cpu_util = fmt(r["cpu_util"] and r["cpu_util"] * 100, ".0f")
        rows = [
            ("wall time, start to drained", fmt(r["wall_secs"], ".2f") + " s", "", ""),
            ("  of which startup to first line", fmt(r["startup_secs"], ".2f") + " s", "", ""),
            ("notifications/s (start to drained)", fmt(r["rate"], ",.0f"), f">= {GOAL_RATE:,.0f}", verdict(rate_ok)),
            ("notifications/s (first line on)", fmt(r["steady_rate"], ",.0f"), "", ""),
            ("daemon CPU per notification", fmt(r["cpu_us_per_msg"], ".1f") + " us", f"<= {GOAL_CPU_US:.0f} us",
             verdict(cpu_ok)),
            ("daemon CPU total / utilisation", f"{fmt(r['cpu_secs'], '.2f')} s / {cpu_util} %", "", ""),
            ("peak RSS (VmHWM)", fmt(rss_mb, ".1f") + " MB", f"<= {GOAL_RSS_MB:.0f} MB", verdict(rss_ok)),
            ("sink lines", f"{fmt(r['sink_lines'], ',')}", f"= {r['expected']:,}", verdict(lines_ok)),
            ("distinct message ids in the sink", f"{fmt(unique, ',')}", f"= {r['expected']:,}", verdict(unique_ok)),
            ("exit status after SIGTERM", f"{r['exit_status']} ({fmt(r['stop_secs'], '.2f')} s)", "0",
             verdict(r["exit_status"] == 0)),
            ("warn/error log lines", str(r["warnings"]), "0", verdict(r["warnings"] == 0)),
        ]
        for name, val, goal, v in rows:
            out.append(f"  {name:34} {val:>14}   {goal:>14}   {v}")
    if scaled:
        delay = a.delay_ms
        out.append("")
        out.append(f"Scaling with receivers, every SQS call delayed {delay:.0f} ms by the proxy "
                   f"({scaled[0]['expected']:,} notifications a round, wait_time_secs 1):")
        out.append(f"  {'receivers':>9} {'in_flight':>9} {'notif/s':>9} {'steady':>7} {'wall s':>7} {'CPU us/n':>8} "
                   f"{'RSS MB':>7} {'receives':>8} {'msgs/rcv':>8} {'deletes':>7} {'msgs/del':>8} {'del||':>5} "
                   f"{'proxy CPU':>9} {'exit':>4}")
        for r in scaled:
            p = r.get("proxy") or {}
            by = p.get("by_target", {})
            receives = by.get("ReceiveMessage", 0)
            deletes = by.get("DeleteMessageBatch", 0)
            per_receive = r["expected"] / receives if receives else None
            per_delete = r["expected"] / deletes if deletes else None
            deletes_at_once = p.get("max_concurrent_by_target", {}).get("DeleteMessageBatch")
            out.append(
                f"  {r['receivers']:>9} {r['max_in_flight']:>9} {fmt(r['rate'], ',.0f'):>9} "
                f"{fmt(r['steady_rate'], ',.0f'):>7} {fmt(r['wall_secs'], '.2f'):>7} "
                f"{fmt(r['cpu_us_per_msg'], '.0f'):>8} {fmt(r['vm_hwm_kb'] and r['vm_hwm_kb'] / 1024, '.1f'):>7} "
                f"{receives:>8} {fmt(per_receive, '.1f'):>8} {deletes:>7} {fmt(per_delete, '.1f'):>8} "
                f"{fmt(deletes_at_once, 'd'):>5} "
                f"{fmt(p.get('cpu_util') and p['cpu_util'] * 100, '.0f') + ' %':>9} {str(r['exit_status']):>4}"
            )
        goal_rows = [r for r in scaled if r["receivers"] == GOAL_SCALED_RECEIVERS]
        goal = f"  goal: >= {GOAL_SCALED_RATE:,.0f} notifications/s with {GOAL_SCALED_RECEIVERS} receivers: "
        if goal_rows:
            r = goal_rows[0]
            ok = bool(r["rate"]) and r["rate"] >= GOAL_SCALED_RATE
            out.append(goal + f"{fmt(r['rate'], ',.0f')} -> {verdict(ok)}")
        else:
            out.append(goal + "not measured")
        out.append("  notif/s: from the daemon's start until drained (the goal's figure); "
                   "steady: from the first sink line on;")
        out.append("  receives/deletes: ReceiveMessage/DeleteMessageBatch calls; "
                   "msgs/rcv, msgs/del: notifications per call;")
        out.append("  del||: most DeleteMessageBatch calls in flight at once; proxy CPU: the proxy's CPU / wall time")
        other = {}
        for r in scaled:
            for k, v in (r.get("proxy") or {}).get("by_target", {}).items():
                if k not in ("ReceiveMessage", "DeleteMessageBatch"):
                    other[k] = other.get(k, 0) + v
        if other:
            calls = ", ".join(f"{k} {v}" for k, v in sorted(other.items()))
            out.append(f"  other calls through the proxy (all rounds): {calls}")
    if check:
        out.append(f"  proxy capacity (GetQueueAttributes, {check['connections']} connections): "
                   f"{check['requests_per_sec']:,.0f} requests/s, p50 {check['p50_ms']:.1f} ms, "
                   f"p99 {check['p99_ms']:.1f} ms (ideal {check['ideal']:,.0f}/s)")
    print("\n".join(out))
    failed = [
        r
        for r in results
        if r["failure"]
        or r["exit_status"] != 0
        or (r["sink_lines"] is not None and r["sink_lines"] != r["expected"])
        or (r.get("unique_message_ids") is not None and r["unique_message_ids"] != r["expected"])
    ]
    return 1 if failed else 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    c = sub.add_parser("create-queue")
    c.add_argument("endpoint")
    c.add_argument("name")

    s = sub.add_parser("seed")
    s.add_argument("endpoint")
    s.add_argument("queue_url")
    s.add_argument("count", type=int)
    s.add_argument("--threads", type=int, default=4)
    s.add_argument("--fixtures", default="tests/fixtures/samples")
    s.add_argument("--sign-key", help="wrap each body in an SNS envelope signed (version 2) with this PEM key")
    s.add_argument("--cert-url", default="https://sns.us-east-1.amazonaws.com/SimpleNotificationService-bench.pem")
    s.add_argument("--topic-arn", default="arn:aws:sns:us-east-1:123456789012:ses-feedback")

    d = sub.add_parser("depth")
    d.add_argument("endpoint")
    d.add_argument("queue_url")

    r = sub.add_parser("run-daemon")
    r.add_argument("--binary", required=True)
    r.add_argument("--config", required=True)
    r.add_argument("--endpoint", required=True, help="fauxqs itself, for queue depth polls")
    r.add_argument("--queue-url", required=True)
    r.add_argument("--expected", type=int, required=True)
    r.add_argument("--sink", help="the file sink's path; without it, wait on the queue only")
    r.add_argument("--log", required=True)
    r.add_argument("--result", required=True)
    r.add_argument("--label", default="run")
    r.add_argument("--receivers", type=int, default=0)
    r.add_argument("--max-in-flight", type=int, default=0)
    r.add_argument("--proxy-stats", help="the proxy's stats URL, to count calls per round")
    r.add_argument("--timeout", type=float, default=600)
    r.add_argument("--log-level", default="warn")
    r.add_argument("--perf", help="perf record the daemon into this file (perf.data)")

    pc = sub.add_parser("proxy-check")
    pc.add_argument("endpoint")
    pc.add_argument("queue_url")
    pc.add_argument("--seconds", type=float, default=3)
    pc.add_argument("--connections", type=int, default=64)
    pc.add_argument("--delay-ms", type=float, default=20)
    pc.add_argument("--result")

    rep = sub.add_parser("report")
    rep.add_argument("results", nargs="*")
    rep.add_argument("--proxy-check")
    rep.add_argument("--delay-ms", type=float, default=20)

    a = p.parse_args()
    if a.cmd == "create-queue":
        print(Sqs(a.endpoint).create_queue(a.name))
    elif a.cmd == "seed":
        signer = EnvelopeSigner(a.sign_key, a.cert_url, a.topic_arn) if a.sign_key else None
        elapsed = seed(a.endpoint, a.queue_url, a.count, a.threads, a.fixtures, signer)
        log(f"seeded {a.count:,} messages in {elapsed:.2f} s ({a.count / elapsed:,.0f}/s, {a.threads} threads)")
    elif a.cmd == "depth":
        print(json.dumps(Sqs(a.endpoint).depth(a.queue_url)))
    elif a.cmd == "run-daemon":
        return run_daemon(a)
    elif a.cmd == "proxy-check":
        return proxy_check(a)
    elif a.cmd == "report":
        return report(a)
    return 0


if __name__ == "__main__":
    sys.exit(main())

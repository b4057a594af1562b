#!/usr/bin/env python3
"""Sums `perf script` samples of the daemon by component (stdlib only).

  perf script -i perf.data | perf_attrib.py

Each sample goes to the first rule below that matches anywhere in its stack
(so a malloc called from the SDK's JSON decoder counts as the decoder, when
the stack shows it). Needs a build with frame pointers and symbols, such as
the one scripts/bench-daemon makes for BENCH_PERF=1; libc has no frame
pointers, so some malloc/free samples have no caller.
"""

from __future__ import annotations

import collections
import sys

# (name, substrings: any of them in the stack's symbols)
RULES: list[tuple[str, tuple[str, ...]]] = [
    ("file sink: spawn_blocking hand-off (pool wake-ups, futex, sched_yield)", ("blocking::pool",)),
    ("file sink: write(2), fstat (statx)", ("ksys_write", "__x64_sys_statx", "Shared::append")),
    ("file sink: line encoding (RawValue re-parse, to_vec)", ("sesroute::sink::file", "serde_json")),
    ("SDK: ReceiveMessage response decode", ("ReceiveMessageResponseDeserializer", "de_message")),
    ("SDK: SigV4 signing", ("aws_sigv4", "SigV4Signer")),
    ("HTTP: hyper and TCP send/receive (kernel included)",
     ("hyper", "tcp_", "sock_", "__x64_sys_recvfrom", "__x64_sys_sendto")),
    ("SDK: orchestrator, interceptors, endpoint, retry, config bag",
     ("aws_smithy", "aws_runtime", "aws_sdk_", "aws_types")),
    ("metrics (counters, gauges, histograms)", ("metrics::", "metrics_exporter", "metrics_util")),
    ("notification parse (sonic-rs)", ("sesroute::notification", "sonic_rs")),
    ("routing", ("sesroute::route",)),
    ("tracing (spans, filter)", ("tracing",)),
    ("tokio: worker park/unpark, epoll, timers", ("park", "epoll", "sched_yield", "tokio::runtime::time")),
    ("sesroute: pipeline, receive loop, delete batcher", ("sesroute::",)),
    ("tokio: task polling and scheduling", ("tokio::",)),
]

# Threads of tokio's blocking pool waiting for work show only these frames
# above the kernel (the pool's loop is inlined into the thread's entry point).
THREAD_ROOT = ("std::sys::backtrace", "core::ops::function", "<std::sys::thread", "start_thread", "[unknown]")


def samples(text: str):
    for block in text.split("\n\n"):
        lines = [line.strip() for line in block.strip().split("\n")[1:] if " " in line.strip()]
        frames = []
        for line in lines:
            rest = line.split(" ", 1)[1]
            dso = rest.rsplit("(", 1)[-1].rstrip(")")
            sym = rest.rsplit(" (", 1)[0].split("+0x")[0]
            frames.append((sym, dso))
        if frames:
            yield frames


def classify(frames: list[tuple[str, str]]) -> str:
    stack = " ".join(sym for sym, _ in frames)
    if "futex" in stack and (
        "sesroute::sink" in stack
        or all("kallsyms" in dso or "libc" in dso or sym.startswith(THREAD_ROOT) for sym, dso in frames)
    ):
        return RULES[0][0]
    for name, needles in RULES:
        if any(n in stack for n in needles):
            return name
    if "libc" in frames[0][1]:
        return "libc: malloc/free/memcpy with no known caller"
    return "kernel: interrupts, scheduler, other"


def main() -> int:
    counts = collections.Counter(classify(f) for f in samples(sys.stdin.read()))
    total = sum(counts.values())
    if not total:
        print("no samples")
        return 1
    print(f"{total} samples of the daemon, by component:")
    for name, n in counts.most_common():
        print(f"  {100 * n / total:5.1f}%  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

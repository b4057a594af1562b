#!/usr/bin/env python3
"""The one client of the local AWS emulator (fauxqs) for the scripts: SQS's
JSON protocol, SNS's query protocol and S3's REST calls, each with the
SigV4-shaped Authorization header fauxqs wants. Python standard library only.

    emulator_client.py [--endpoint URL] [--timeout S] sqs ACTION JSON   # prints the JSON answer
    emulator_client.py [--endpoint URL] [--timeout S] s3 GET|PUT PATH   # prints the body

The endpoint defaults to $FAUXQS_ENDPOINT (what scripts/lib/emulators.sh exports).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

REGION = "us-east-1"
SQS_CONTENT_TYPE = "application/x-amz-json-1.0"
# Names the SQS action; the bench's delaying proxy counts calls by it.
TARGET_HEADER = "X-Amz-Target"


def authorization(service: str) -> str:
    # fauxqs does not check signatures, but takes the region (queues are per
    # region) from the credential scope.
    return (
        f"AWS4-HMAC-SHA256 Credential=test/20250101/{REGION}/{service}/aws4_request, "
        "SignedHeaders=host, Signature=0"
    )


def sqs_headers(action: str) -> dict[str, str]:
    """The headers of an SQS JSON-protocol call, for callers that keep their
    own connection."""
    return {
        TARGET_HEADER: f"AmazonSQS.{action}",
        "Content-Type": SQS_CONTENT_TYPE,
        "Authorization": authorization("sqs"),
    }


def _request(url: str, method: str, headers: dict[str, str], data: bytes | None, timeout: float) -> bytes:
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.read()


def sqs(endpoint: str, action: str, body: dict, timeout: float = 30) -> dict:
    text = _request(endpoint, "POST", sqs_headers(action), json.dumps(body).encode(), timeout)
    return json.loads(text) if text else {}


def sns(endpoint: str, params: dict[str, str], timeout: float = 30) -> str:
    """An SNS query-protocol call; returns the XML answer as text."""
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Authorization": authorization("sns")}
    data = urllib.parse.urlencode({**params, "Version": "2010-03-31"}).encode()
    return _request(endpoint, "POST", headers, data, timeout).decode()


def s3(endpoint: str, path: str, method: str = "GET", timeout: float = 30) -> bytes:
    """PATH is BUCKET, BUCKET/KEY or BUCKET?QUERY."""
    return _request(f"{endpoint}/{path}", method, {"Authorization": authorization("s3")}, None, timeout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", default=os.environ.get("FAUXQS_ENDPOINT"))
    parser.add_argument("--timeout", type=float, default=30, help="seconds")
    calls = parser.add_subparsers(dest="service", required=True)
    sqs_call = calls.add_parser("sqs")
    sqs_call.add_argument("action")
    sqs_call.add_argument("body", type=json.loads)
    s3_call = calls.add_parser("s3")
    s3_call.add_argument("method", choices=["GET", "PUT"])
    s3_call.add_argument("path")
    args = parser.parse_args()
    if not args.endpoint:
        parser.error("no endpoint: pass --endpoint or set FAUXQS_ENDPOINT")
    try:
        if args.service == "sqs":
            print(json.dumps(sqs(args.endpoint, args.action, args.body, args.timeout)))
        else:
            sys.stdout.buffer.write(s3(args.endpoint, args.path, args.method, args.timeout))
    except urllib.error.HTTPError as e:
        # The caller runs under set -e: fail, with the emulator's reason.
        detail = e.read().decode(errors="replace")[:300]
        print(f"emulator_client: {args.service} {args.endpoint}: HTTP {e.code}: {detail}", file=sys.stderr)
        return 1
    except OSError as e:  # refused, timed out, reset
        print(f"emulator_client: {args.service} {args.endpoint}: {getattr(e, 'reason', e)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The demo's driver (scripts/demo): sets up queues, topics and subscriptions
on the local emulator, publishes realistic SES feedback from four sending
environments, waits for sesroute to drain the queues, and reports where each
notification went. Python standard library only.

    demo.py setup ENDPOINT | publish ENDPOINT | wait ENDPOINT | report ENDPOINT
"""

import glob
import gzip
import json
import os
import re
import sys
import time
import urllib.parse
import urllib.request

QUEUES = {"feedback": "demo-ses-feedback", "events": "demo-ses-events"}
# fauxqs reads the region from the signature; it does not check the signature.
AUTH = "AWS4-HMAC-SHA256 Credential=test/20250101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0"


def post(endpoint, data, headers):
    request = urllib.request.Request(endpoint, data=data, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.read().decode()


def sqs(endpoint, action, body):
    headers = {
        "X-Amz-Target": f"AmazonSQS.{action}",
        "Content-Type": "application/x-amz-json-1.0",
        "Authorization": AUTH.format(service="sqs"),
    }
    text = post(endpoint, json.dumps(body).encode(), headers)
    return json.loads(text) if text else {}


def sns(endpoint, params):
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Authorization": AUTH.format(service="sns")}
    text = post(endpoint, urllib.parse.urlencode({**params, "Version": "2010-03-31"}).encode(), headers)
    start = text.index("<TopicArn>") + len("<TopicArn>") if "<TopicArn>" in text else -1
    return text[start : text.index("</TopicArn>")] if start >= 0 else text


def topic_arn(name):
    return f"arn:aws:sns:us-east-1:000000000000:{name}"


BUCKET = "demo-ses-archive"


def s3(endpoint, path, method="GET"):
    headers = {"Authorization": AUTH.format(service="s3")}
    request = urllib.request.Request(f"{endpoint}/{path}", method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.read()


def setup(endpoint):
    s3(endpoint, BUCKET, method="PUT")
    print(f"  archive  bucket {BUCKET}")
    for source, name in QUEUES.items():
        url = sqs(endpoint, "CreateQueue", {"QueueName": name, "Attributes": {"VisibilityTimeout": "30"}})["QueueUrl"]
        arn = sqs(endpoint, "GetQueueAttributes", {"QueueUrl": url, "AttributeNames": ["QueueArn"]})["Attributes"]["QueueArn"]
        topic = sns(endpoint, {"Action": "CreateTopic", "Name": name})
        params = {"Action": "Subscribe", "TopicArn": topic, "Protocol": "sqs", "Endpoint": arn}
        if source == "events":
            params |= {"Attributes.entry.1.key": "RawMessageDelivery", "Attributes.entry.1.value": "true"}
        sns(endpoint, params)
        print(f"  {source:8} topic {topic} -> queue {url}")


def mail(source, message_id, destination, tags=None):
    body = {
        "timestamp": "2025-11-24T10:00:00.000Z",
        "messageId": message_id,
        "source": source,
        "sourceArn": "arn:aws:ses:us-east-1:000000000000:identity/acme.test",
        "sendingAccountId": "000000000000",
        "destination": destination,
    }
    if tags:
        body["tags"] = tags
    return body


def bounce(kind, subtype, recipient):
    return {
        "bounceType": kind,
        "bounceSubType": subtype,
        "bouncedRecipients": [{"emailAddress": recipient, "status": "5.1.1", "action": "failed"}],
        "timestamp": "2025-11-24T10:00:01.000Z",
        "feedbackId": "feedback-" + recipient,
    }


def notifications():
    """(where, SES JSON) pairs: identity notifications go through the feedback
    topic (SNS envelope), configuration-set events through the events topic."""
    marketing = {"ses:configuration-set": ["marketing-weekly"], "campaign": ["black-friday"]}
    yield "feedback", {"notificationType": "Bounce", "mail": mail("ci@dev.acme.test", "demo-dev-1", ["nobody@example.net"]),
                       "bounce": bounce("Permanent", "NoEmail", "nobody@example.net")}
    yield "feedback", {"notificationType": "Complaint", "mail": mail("Build Bot <build@dev.acme.test>", "demo-dev-2", ["qa-lead@example.org"]),
                       "complaint": {"complainedRecipients": [{"emailAddress": "qa-lead@example.org"}], "complaintFeedbackType": "abuse"}}
    yield "feedback", {"notificationType": "Bounce", "mail": mail("release@staging.acme.test", "demo-staging-1", ["tester@example.org"]),
                       "bounce": bounce("Transient", "MailboxFull", "tester@example.org")}
    yield "feedback", {"notificationType": "Delivery", "mail": mail("smoke@staging.acme.test", "demo-staging-2", ["tester@example.org"]),
                       "delivery": {"recipients": ["tester@example.org"], "smtpResponse": "250 OK"}}
    yield "feedback", {"notificationType": "Bounce", "mail": mail("billing@acme.test", "demo-prod-1", ["jane@customer.test"]),
                       "bounce": bounce("Permanent", "General", "jane@customer.test")}
    yield "feedback", {"notificationType": "Complaint", "mail": mail("\"Acme Receipts\" <receipts@acme.test>", "demo-prod-2", ["li@customer.test"]),
                       "complaint": {"complainedRecipients": [{"emailAddress": "li@customer.test"}], "complaintFeedbackType": "fraud"}}
    yield "feedback", {"notificationType": "Delivery", "mail": mail("alerts@acme.test", "demo-prod-3", ["ops@customer.test"]),
                       "delivery": {"recipients": ["ops@customer.test"], "smtpResponse": "250 OK"}}
    yield "events", {"eventType": "Open", "mail": mail("news@marketing.acme.test", "demo-marketing-1", ["reader@example.net"], marketing),
                     "open": {"ipAddress": "192.0.2.1", "timestamp": "2025-11-24T11:00:00.000Z", "userAgent": "Mail"}}
    yield "events", {"eventType": "Click", "mail": mail("news@marketing.acme.test", "demo-marketing-2", ["reader@example.net"], marketing),
                     "click": {"ipAddress": "192.0.2.1", "link": "https://acme.test/sale", "linkTags": {"cta": ["sale"]}}}
    yield "events", {"eventType": "Subscription", "mail": mail("news@marketing.acme.test", "demo-marketing-3", ["reader@example.net"], marketing),
                     "subscription": {"contactList": "readers", "source": "UnsubscribeHeader"}}
    yield "events", {"eventType": "Bounce", "mail": mail("news@marketing.acme.test", "demo-marketing-4", ["gone@example.net"], marketing),
                     "bounce": bounce("Permanent", "General", "gone@example.net")}


def publish(endpoint):
    count = 0
    for where, ses in notifications():
        params = {"Action": "Publish", "TopicArn": topic_arn(QUEUES[where]), "Message": json.dumps(ses)}
        if where == "events":
            params["Subject"] = "Amazon SES Email Event Notification"
        sns(endpoint, params)
        count += 1
    # Setup messages and garbage land on feedback queues too.
    sns(endpoint, {"Action": "Publish", "TopicArn": topic_arn(QUEUES["events"]),
                   "Message": "Successfully validated SNS topic for Amazon SES event publishing."})
    url = f"http://sqs.us-east-1.localhost:4566/000000000000/{QUEUES['feedback']}"
    sqs(endpoint, "SendMessage", {"QueueUrl": url, "MessageBody": "{\"not\": \"ses\"}"})
    print(f"  published {count} notifications, 1 setup message and 1 body that is not SES")


def wait(endpoint, timeout=60):
    deadline = time.monotonic() + timeout
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    while time.monotonic() < deadline:
        left = 0
        for name in QUEUES.values():
            url = f"http://sqs.us-east-1.localhost:4566/000000000000/{name}"
            attributes = sqs(endpoint, "GetQueueAttributes", {"QueueUrl": url, "AttributeNames": names})["Attributes"]
            left += sum(int(attributes.get(n, "0")) for n in names)
        if left == 0:
            print("  both queues are empty")
            return
        time.sleep(0.2)
    sys.exit("demo: the queues did not drain within a minute; see target/demo/sesroute.log")


def report(endpoint):
    print(f"\n{'sink':18} {'kind':14} {'source':28} {'message id':18} routes")
    for path in sorted(glob.glob("target/demo/*.jsonl")):
        sink = path.rsplit("/", 1)[-1].removesuffix(".jsonl")
        with open(path, encoding="utf-8") as lines:
            for line in lines:
                entry = json.loads(line)
                if entry.get("dead_letter"):
                    print(f"{sink:18} {'(dead letter)':14} {entry.get('reason', '')[:60]}")
                    continue
                print(f"{sink:18} {entry['kind']:14} {entry['source']:28} {entry['message_id']:18} {','.join(entry['routes'])}")

    print("\nemails received by the local SMTP server (target/demo/mail/):")
    for path in sorted(glob.glob("target/demo/mail/*.eml"), key=lambda p: int(os.path.basename(p).split(".")[0])):
        with open(path, encoding="utf-8", errors="replace") as eml:
            headers = eml.read().split("\n\n", 1)[0]
        field = lambda name: (re.search(rf"^{name}: (.*)$", headers, re.M | re.I) or [None, ""])[1].strip()
        print(f"  {os.path.basename(path)}  To: {field('To')}  Subject: {field('Subject')}")

    listing = s3(endpoint, f"{BUCKET}?list-type=2").decode()
    print(f"\nS3 archive (s3://{BUCKET}/):")
    for key in re.findall(r"<Key>([^<]+)</Key>", listing):
        lines = gzip.decompress(s3(endpoint, f"{BUCKET}/{key}")).decode().splitlines()
        print(f"  {key}  {len(lines)} notifications")


if __name__ == "__main__":
    command = sys.argv[1]
    {"setup": setup, "publish": publish, "wait": wait, "report": report}[command](sys.argv[2])

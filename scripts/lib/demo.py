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

import emulator_client
from emulator_client import s3, sqs

QUEUES = {"feedback": "demo-ses-feedback", "events": "demo-ses-events"}
BUCKET = "demo-ses-archive"


def sns(endpoint, params):
    """The call's TopicArn, or its whole answer when it has none."""
    text = emulator_client.sns(endpoint, params)
    start = text.index("<TopicArn>") + len("<TopicArn>") if "<TopicArn>" in text else -1
    return text[start : text.index("</TopicArn>")] if start >= 0 else text


def topic_arn(name):
    return f"arn:aws:sns:us-east-1:000000000000:{name}"


def setup(endpoint):
    s3(endpoint, BUCKET, method="PUT")
    print(f"  archive  bucket {BUCKET}")
    for source, name in QUEUES.items():
        url = sqs(endpoint, "CreateQueue", {"QueueName": name, "Attributes": {"VisibilityTimeout": "30"}})["QueueUrl"]
        attributes = sqs(endpoint, "GetQueueAttributes", {"QueueUrl": url, "AttributeNames": ["QueueArn"]})
        arn = attributes["Attributes"]["QueueArn"]
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


def complaint(recipient, feedback_type):
    return {"complainedRecipients": [{"emailAddress": recipient}], "complaintFeedbackType": feedback_type}


def delivery(recipient):
    return {"recipients": [recipient], "smtpResponse": "250 OK"}


def identity(kind, source, message_id, recipient, detail):
    """An identity notification: through the feedback topic (SNS envelope)."""
    return "feedback", {"notificationType": kind, "mail": mail(source, message_id, [recipient]), kind.lower(): detail}


def event(kind, message_id, recipient, detail):
    """A configuration-set event of the marketing sender: through the events topic."""
    tags = {"ses:configuration-set": ["marketing-weekly"], "campaign": ["black-friday"]}
    sent = mail("news@marketing.acme.test", message_id, [recipient], tags)
    return "events", {"eventType": kind, "mail": sent, kind.lower(): detail}


def notifications():
    """(where, SES JSON) pairs."""
    yield identity("Bounce", "ci@dev.acme.test", "demo-dev-1", "nobody@example.net",
                   bounce("Permanent", "NoEmail", "nobody@example.net"))
    yield identity("Complaint", "Build Bot <build@dev.acme.test>", "demo-dev-2", "qa-lead@example.org",
                   complaint("qa-lead@example.org", "abuse"))
    yield identity("Bounce", "release@staging.acme.test", "demo-staging-1", "tester@example.org",
                   bounce("Transient", "MailboxFull", "tester@example.org"))
    yield identity("Delivery", "smoke@staging.acme.test", "demo-staging-2", "tester@example.org",
                   delivery("tester@example.org"))
    yield identity("Bounce", "billing@acme.test", "demo-prod-1", "jane@customer.test",
                   bounce("Permanent", "General", "jane@customer.test"))
    yield identity("Complaint", "\"Acme Receipts\" <receipts@acme.test>", "demo-prod-2", "li@customer.test",
                   complaint("li@customer.test", "fraud"))
    yield identity("Delivery", "alerts@acme.test", "demo-prod-3", "ops@customer.test", delivery("ops@customer.test"))
    yield event("Open", "demo-marketing-1", "reader@example.net",
                {"ipAddress": "192.0.2.1", "timestamp": "2025-11-24T11:00:00.000Z", "userAgent": "Mail"})
    yield event("Click", "demo-marketing-2", "reader@example.net",
                {"ipAddress": "192.0.2.1", "link": "https://acme.test/sale", "linkTags": {"cta": ["sale"]}})
    yield event("Subscription", "demo-marketing-3", "reader@example.net",
                {"contactList": "readers", "source": "UnsubscribeHeader"})
    yield event("Bounce", "demo-marketing-4", "gone@example.net", bounce("Permanent", "General", "gone@example.net"))


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


def header(headers, name):
    found = re.search(rf"^{name}: (.*)$", headers, re.M | re.I)
    return found[1].strip() if found else ""


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
                routes = ",".join(entry["routes"])
                print(f"{sink:18} {entry['kind']:14} {entry['source']:28} {entry['message_id']:18} {routes}")

    print("\nemails received by the local SMTP server (target/demo/mail/):")
    for path in sorted(glob.glob("target/demo/mail/*.eml"), key=lambda p: int(os.path.basename(p).split(".")[0])):
        with open(path, encoding="utf-8", errors="replace") as eml:
            headers = eml.read().split("\n\n", 1)[0]
        print(f"  {os.path.basename(path)}  To: {header(headers, 'To')}  Subject: {header(headers, 'Subject')}")

    listing = s3(endpoint, f"{BUCKET}?list-type=2").decode()
    print(f"\nS3 archive (s3://{BUCKET}/):")
    for key in re.findall(r"<Key>([^<]+)</Key>", listing):
        lines = gzip.decompress(s3(endpoint, f"{BUCKET}/{key}")).decode().splitlines()
        print(f"  {key}  {len(lines)} notifications")


if __name__ == "__main__":
    command = sys.argv[1]
    {"setup": setup, "publish": publish, "wait": wait, "report": report}[command](sys.argv[2])

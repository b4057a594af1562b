"""moto 5.2.5's server for the audit tests, with the SES answers it lacks
completed from its own stored state (see emulators/README.md):

- ses GetIdentityNotificationAttributes: moto stores the topics that
  SetIdentityNotificationTopic sets but leaves them out of the answer; they
  are added (BounceTopic, ComplaintTopic, DeliveryTopic).
- sesv2 identities: moto reports every identity verified (VerificationStatus
  SUCCESS) yet VerifiedForSendingStatus false; it is set to match. Its DKIM
  LastKeyGenerationTimestamp is an ISO string where the API has epoch
  seconds (the Rust SDK refuses the string); it is sent as epoch seconds.
- sesv2 GetAccount / PutAccountSuppressionAttributes and
  CreateConfigurationSetEventDestination / GetConfigurationSetEventDestinations
  are not implemented; they are answered from a small store kept on moto's
  sesv2 backend.

  python moto_server.py -H 127.0.0.1 -p PORT
"""

import datetime
import json

from moto.server import main
from moto.ses import models as ses_models
from moto.sesv2 import urls as sesv2_urls
from moto.sesv2.responses import SESV2Response

_notification_attributes = ses_models.SESBackend.get_identity_notification_attributes


def get_identity_notification_attributes(self, identities):
    response = _notification_attributes(self, identities)
    for identity, attributes in response.items():
        topics = self.sns_topics.get(identity, {})
        for kind in ("Bounce", "Complaint", "Delivery"):
            attributes[f"{kind}Topic"] = topics.get(kind) or ""
    return response


ses_models.SESBackend.get_identity_notification_attributes = get_identity_notification_attributes

_identity_init = ses_models.EmailIdentity.__init__


def identity_init(self, *args, **kwargs):
    _identity_init(self, *args, **kwargs)
    self.verified_for_sending_status = self.verification_status == "SUCCESS"
    stamp = self.dkim_attributes.get("LastKeyGenerationTimestamp")
    if isinstance(stamp, str):
        parsed = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        self.dkim_attributes["LastKeyGenerationTimestamp"] = parsed.timestamp()


ses_models.EmailIdentity.__init__ = identity_init


def _store(response):
    backend = response.sesv2_backend
    if not hasattr(backend, "audit_completions"):
        backend.audit_completions = {"suppressed_reasons": [], "event_destinations": {}}
    return backend.audit_completions


def get_account(self):
    store = _store(self)
    return json.dumps(
        {
            "SendingEnabled": True,
            "ProductionAccessEnabled": True,
            "DedicatedIpAutoWarmupEnabled": False,
            "EnforcementStatus": "HEALTHY",
            "SuppressionAttributes": {"SuppressedReasons": store["suppressed_reasons"]},
        }
    )


def put_account_suppression_attributes(self):
    _store(self)["suppressed_reasons"] = self._get_param("SuppressedReasons") or []
    return "{}"


def create_configuration_set_event_destination(self):
    name = self._get_param("ConfigurationSetName")
    destination = dict(self._get_param("EventDestination") or {})
    destination["Name"] = self._get_param("EventDestinationName")
    _store(self)["event_destinations"].setdefault(name, []).append(destination)
    return "{}"


def get_configuration_set_event_destinations(self):
    name = self._get_param("ConfigurationSetName")
    return json.dumps({"EventDestinations": _store(self)["event_destinations"].get(name, [])})


SESV2Response.get_account = get_account
SESV2Response.put_account_suppression_attributes = put_account_suppression_attributes
SESV2Response.create_configuration_set_event_destination = create_configuration_set_event_destination
SESV2Response.get_configuration_set_event_destinations = get_configuration_set_event_destinations

sesv2_urls.url_paths.update(
    {
        "{0}/v2/email/account$": SESV2Response.dispatch,
        "{0}/v2/email/account/suppression$": SESV2Response.dispatch,
        "{0}/v2/email/configuration-sets/(?P<ConfigurationSetName>[^/]+)/event-destinations$": SESV2Response.dispatch,
    }
)

if __name__ == "__main__":
    main()

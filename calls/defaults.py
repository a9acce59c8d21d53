"""The defaults admins start from: the disposition list and the per-country recording consent table.

Both the data migration and seed_demo create them, given the model classes to use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the migrations pass their historical models
    from calls.models import ConsentRule, DispositionCode

DISPOSITIONS = [
    ("Interested", "Wants to hear more", ""),
    ("Call back later", "Asked to be called again", ""),
    ("Not interested", "Declined", ""),
    ("Left voicemail", "No answer; left a message", ""),
    ("No answer", "Nobody picked up", ""),
    ("Wrong number", "The number is not this contact's", "number_dnc"),
    ("Do not call", "Asked never to be called again", "contact_dnc"),
]

# A cautious starting point, not legal advice: where parts of a country require every party's consent
# (several US states, Australian states), the whole country defaults to TwoParty.
CONSENT = [
    ("GB", "OneParty", "UK: one-party consent (RIPA/IPA); tell callers when recording for business use"),
    ("IE", "OneParty", "Ireland: one-party consent"),
    ("US", "TwoParty", "Some states require all-party consent (CA, FL, IL, PA, WA, ...)"),
    ("CA", "OneParty", "Canada: one-party consent"),
    ("AU", "TwoParty", "Several states require all-party consent"),
    ("NZ", "OneParty", "New Zealand: one-party consent"),
    ("DE", "TwoParty", "Germany: all parties must consent"),
    ("FR", "TwoParty", "France: all parties must be informed"),
    ("ES", "TwoParty", "Spain: inform all parties (GDPR)"),
    ("IT", "TwoParty", "Italy: inform all parties (GDPR)"),
    ("NL", "TwoParty", "Netherlands: inform all parties (GDPR)"),
    ("IN", "OneParty", "India: one-party consent"),
]


def ensure_defaults(disposition_model: type[DispositionCode], consent_rule_model: type[ConsentRule]) -> None:
    """Create any default that is missing; never change or remove what admins have edited."""
    for position, (code, description, action) in enumerate(DISPOSITIONS):
        disposition_model.objects.get_or_create(
            code=code, defaults={"description": description, "action": action, "position": position * 10}
        )
    for country, consent, note in CONSENT:
        consent_rule_model.objects.get_or_create(country=country, defaults={"consent": consent, "note": note})

"""Seed the disposition list and the per-country recording consent defaults that admins then edit."""

from django.db import migrations

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


def seed(apps, schema_editor):
    DispositionCode = apps.get_model("calls", "DispositionCode")
    ConsentRule = apps.get_model("calls", "ConsentRule")
    for position, (code, description, action) in enumerate(DISPOSITIONS):
        DispositionCode.objects.get_or_create(
            code=code, defaults={"description": description, "action": action, "position": position * 10}
        )
    for country, consent, note in CONSENT:
        ConsentRule.objects.get_or_create(country=country, defaults={"consent": consent, "note": note})


class Migration(migrations.Migration):
    dependencies = [("calls", "0003_dispositions_consent_rules")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]

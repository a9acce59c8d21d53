"""Create the click benchmark's users, agents and contacts in the bench database (run by click_bench.py).

Reads a JSON plan on stdin and prints a JSON answer on stdout; the database comes from DATABASE_URL.
Run as a script with the project on PYTHONPATH, never imported by the app.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import time

import django


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vccweb.settings")
    django.setup()

    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.auth.hashers import make_password
    from django.db import transaction

    from calls.models import Agent, AgentGroup, CallbackNumber, CallingHours, Contact, ContactPhone
    from calls.roles import AGENT, assign_role

    def login(user) -> str:
        """A logged-in session for user, as /login/ would store it: the bench need not check hundreds of password
        hashes (each deliberately slow) to log its agents in."""
        session = import_module(settings.SESSION_ENGINE).SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        return session.session_key

    plan = json.load(sys.stdin)
    user_model = get_user_model()
    # One hash for everyone: hashing is deliberately slow, and every bench user has the same password.
    password_hash = make_password(plan["password"])

    with transaction.atomic():
        # The bench clicks at any hour: UK numbers may be called all day, every day (calls/calling/hours.py).
        CallingHours.objects.update_or_create(
            country="GB", defaults={"opens_at": time(0), "closes_at": time.max, "days": "0123456"}
        )
        group = AgentGroup.objects.create(display_id=plan["group"]["display_id"], name=plan["group"]["name"])
        clid = CallbackNumber.objects.create(
            number=plan["clid"]["number"], label=plan["clid"]["label"], is_default=True
        )
        users = []
        for entry in plan["users"]:
            user = user_model.objects.create(
                username=entry["username"], first_name="Bench", last_name=entry["display_id"], password=password_hash
            )
            assign_role(user, AGENT)
            agent = Agent.objects.create(
                display_id=entry["display_id"], name=f"Bench agent {entry['display_id']}", user=user
            )
            agent.default_callback_number = clid
            agent.save(update_fields=["default_callback_number"])
            users.append({"username": user.username, "display_id": agent.display_id, "session": login(user)})
        group.members.set(Agent.objects.filter(display_id__in=[u["display_id"] for u in users]))

        contacts = Contact.objects.bulk_create(
            Contact(name=f"Bench contact {i:05d}", company="vccweb bench") for i in range(len(plan["numbers"]))
        )
        phones = ContactPhone.objects.bulk_create(
            ContactPhone(contact=contact, label=ContactPhone.Label.WORK, number=number, is_primary=True)
            for contact, number in zip(contacts, plan["numbers"], strict=True)
        )

    json.dump(
        {
            "users": users,
            "clicks": [{"contact": p.contact_id, "phone": p.pk, "number": p.number} for p in phones],
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()

"""README's "Use the API" examples, run as written with curl against the running app (pytest-django's live
server, VCC in sandbox mode): what README shows a developer works."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from calls.models import ApiToken, Call, Contact
from calls.models.api import SCOPES
from tests._sim import fresh_simulator
from tests.conftest import create_agent_user

pytestmark = pytest.mark.django_db(transaction=True)

README = Path(__file__).resolve().parent.parent / "README.md"


@pytest.fixture
def sim(monkeypatch):
    yield from fresh_simulator(monkeypatch)


def examples() -> str:
    """The shell block of README's "Use the API" section, without the line that sets the address and token."""
    section = README.read_text().split("## Use the API", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "README's Use the API section has no sh block"
    return "\n".join(line for line in block.group(1).splitlines() if not line.startswith("export VCCWEB="))


def test_the_readmes_curl_examples_work_against_the_running_app(sim, live_server):
    agent = create_agent_user()
    _, token = ApiToken.issue(agent, name="readme", scopes=sorted(SCOPES))
    script = "set -euo pipefail\n" + examples().replace("\n\n", '\necho "--- next"\n\n')

    done = subprocess.run(
        ["bash", "-c", script],
        env={"VCCWEB": live_server.url, "TOKEN": token, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    answers = [json.loads(part) for part in done.stdout.split("--- next") if part.strip().startswith("{")]
    upserted, found, placed, log = answers
    contact = Contact.objects.get(external_id="crm-1001")
    assert upserted["id"] == contact.pk and upserted["phones"][0]["number"] == "+442079460321"
    assert [c["id"] for c in found["items"]] == [contact.pk]
    assert placed["contact"] == contact.pk and placed["state"] in ("live", "ended")
    assert Call.objects.get().pk == placed["id"]
    assert "items" in log and "next" in log

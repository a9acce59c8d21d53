"""What the tests of the gateway's clients (User Admin, Webhooks) share: their hosts, and the settings that point the
clients there with credentials."""

from __future__ import annotations

import pytest
from django.core.cache import cache

AUTH = "https://emea.auth.test"
GATEWAY = "https://emea.api.test"


@pytest.fixture(autouse=True)
def gateway_settings(settings):
    settings.VCC_AUTH_URL = AUTH
    settings.VCC_GATEWAY_URL = GATEWAY
    settings.VCC_CLIENT_ID = "client-1"
    settings.VCC_CLIENT_SECRET = "s3cret"
    settings.VCC_TRANSPORT = ""
    cache.clear()
    yield
    cache.clear()

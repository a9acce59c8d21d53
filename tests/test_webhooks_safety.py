"""Which URLs webhooks may go to (calls/webhooks/safety.py) and how they are signed (calls/webhooks/signing.py)."""

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from calls.webhooks import EVENT_TYPES, check_event_patterns, safety, signing


def resolver(table: dict[str, list[str]]) -> safety.Resolver:
    def resolve(host: str, port: int) -> list[str]:
        return table[host]

    return resolve


PUBLIC = resolver({"hooks.example.com": ["93.184.215.14"], "inside.example": ["10.1.2.3"]})


@pytest.fixture(autouse=True)
def production(settings):
    settings.DEBUG = False
    settings.WEBHOOK_ALLOWED_HOSTS = []


def refused(url: str, table: dict[str, list[str]]) -> str:
    with pytest.raises(ValidationError) as caught:
        safety.check_url(url, resolver=resolver(table))
    return " ".join(caught.value.messages)


def test_a_public_https_url_is_normalised():
    assert safety.check_url(" HTTPS://Hooks.Example.com:443/in?a=1#frag ", resolver=PUBLIC) == (
        "https://hooks.example.com/in?a=1"
    )
    assert safety.check_url("https://hooks.example.com:8443", resolver=PUBLIC) == "https://hooks.example.com:8443/"


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.5", "private"),
        ("172.16.4.4", "private"),
        ("192.168.1.1", "private"),
        ("fd12:3456::1", "private"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("169.254.169.254", "metadata"),
        ("fd00:ec2::254", "metadata"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "metadata"),
        ("fec0::1", "site-local"),
        ("168.63.129.16", "metadata"),  # public, yet Azure's platform service on every VM
    ],
)
def test_every_inside_address_is_refused(address, kind):
    message = refused("https://hooks.example.com/in", {"hooks.example.com": [address]})
    assert address in message
    assert kind in message


def test_a_hostname_resolving_to_loopback_is_refused():
    message = refused("https://innocent.example.net/hook", {"innocent.example.net": ["127.0.0.1"]})
    assert "innocent.example.net resolves to 127.0.0.1, a loopback address" in message


def test_one_inside_address_among_public_ones_refuses_the_host():
    message = refused("https://mixed.example/", {"mixed.example": ["93.184.215.14", "10.0.0.1"]})
    assert "10.0.0.1" in message


def test_ip_literals_are_checked_too():
    assert "loopback" in refused("https://[::1]/", {"::1": ["::1"]})
    assert "private" in refused("https://192.168.0.10/", {"192.168.0.10": ["192.168.0.10"]})


def test_the_real_resolver_sees_through_numeric_tricks():
    # 2130706433 is 127.0.0.1 written as one number: getaddrinfo turns it into the address, which is refused.
    with pytest.raises(safety.Unsafe, match="loopback"):
        safety.check_url("https://2130706433/")
    with pytest.raises(safety.Unsafe, match="loopback"):
        safety.check_url("https://localhost/")


def test_an_allowed_host_may_be_inside_and_plain_http(settings):
    settings.WEBHOOK_ALLOWED_HOSTS = ["inside.example"]
    assert safety.check_url("http://Inside.example:8080/h", resolver=PUBLIC) == "http://inside.example:8080/h"
    assert safety.safe_addresses("inside.example", 8080, resolver=PUBLIC) == ["10.1.2.3"]
    loopback = resolver({"inside.example": ["127.0.0.1"]})
    assert safety.check_url("https://inside.example/", resolver=loopback) == "https://inside.example/"


@pytest.mark.parametrize(
    "address",
    [
        "169.254.169.254",
        "fd00:ec2::254",
        "169.254.10.10",
        "fe80::2",
        # Metadata services outside link-local: an allowed host re-pointed to one must not reach it either.
        "fd20:ce::254",
        "100.100.100.200",
        "192.0.0.192",
        "168.63.129.16",
    ],
)
def test_link_local_and_metadata_are_never_allowed(settings, address):
    settings.WEBHOOK_ALLOWED_HOSTS = ["metadata.internal"]
    settings.DEBUG = True
    message = refused("http://metadata.internal/", {"metadata.internal": [address]})
    assert address in message
    assert "WEBHOOK_ALLOWED_HOSTS" not in message  # no advice that would not help


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("64:ff9b::a9fe:a9fe", "metadata"),  # NAT64 of 169.254.169.254
        ("64:ff9b:1::a9fe:a9fe", "metadata"),  # local-use NAT64, a /96 prefix
        ("64:ff9b:1:a9fe:a9:fe00::", "metadata"),  # local-use NAT64, a /48 prefix (RFC 6052's layout)
        ("2002:a9fe:a9fe::", "metadata"),  # 6to4
        ("2001:0:4136:e378:8000:63bf:5601:5601", "metadata"),  # Teredo, client 169.254.169.254 (bits inverted)
        ("64:ff9b::a9fe:101", "link-local"),  # NAT64 of 169.254.1.1
        ("2002:a9fe:101::1", "link-local"),
    ],
)
def test_link_local_and_metadata_inside_ipv6_are_never_allowed(settings, address, kind):
    settings.WEBHOOK_ALLOWED_HOSTS = ["hooks.internal.example"]
    table = resolver({"hooks.internal.example": [address]})
    with pytest.raises(safety.Unsafe, match=kind) as caught:
        safety.safe_addresses("hooks.internal.example", 443, resolver=table)
    assert address in caught.value.messages[0]


@pytest.mark.parametrize(
    ("address", "kind"),
    [("64:ff9b::a00:5", "private"), ("64:ff9b:1::7f00:1", "loopback"), ("2002:c0a8:101::1", "private")],
)
def test_inside_addresses_within_ipv6_are_named_and_refused_unless_allowed(settings, address, kind):
    assert f"{address}, a {kind} address" in refused("https://hooks.example.com/", {"hooks.example.com": [address]})
    settings.WEBHOOK_ALLOWED_HOSTS = ["hooks.example.com"]
    assert safety.safe_addresses("hooks.example.com", 443, resolver=resolver({"hooks.example.com": [address]}))


def test_plain_http_only_in_debug_or_for_allowed_hosts(settings):
    message = refused("http://hooks.example.com/", {"hooks.example.com": ["93.184.215.14"]})
    assert "https://" in message
    settings.DEBUG = True
    assert safety.check_url("http://hooks.example.com/", resolver=PUBLIC) == "http://hooks.example.com/"
    # DEBUG allows http, not inside addresses
    assert "private" in refused("http://inside.example/", {"inside.example": ["10.1.2.3"]})


@pytest.mark.parametrize(
    ("url", "advice"),
    [
        ("", "Enter the URL"),
        ("ftp://hooks.example.com/", "https://"),
        ("hooks.example.com/in", "https://"),
        ("https://user:pw@hooks.example.com/", "user name"),
        ("https://user@hooks.example.com/", "user name"),
        ("https:///path", "no host"),
        ("https://hooks.example.com:99999/", "port"),
        ("https://hooks.example.com/a b", "spaces"),
        ("https://hooks.example.com/" + "a" * 2000, "longer"),
    ],
)
def test_malformed_urls_say_what_to_fix(url, advice):
    assert advice in refused(url, {"hooks.example.com": ["93.184.215.14"]})


def test_a_host_that_does_not_resolve_is_refused():
    def fails(host: str, port: int) -> list[str]:
        return safety.resolve("no-such-host.invalid", port)

    with pytest.raises(ValidationError, match="could not be resolved"):
        safety.check_url("https://no-such-host.invalid/", resolver=fails)


def test_the_module_resolver_can_be_replaced(monkeypatch):
    """The engine calls safe_addresses(host, port) without a resolver: tests replace safety.resolve."""
    monkeypatch.setattr(safety, "resolve", resolver({"rebound.example": ["127.0.0.1"]}))
    with pytest.raises(safety.Unsafe) as caught:
        safety.safe_addresses("rebound.example", 443)
    assert caught.value.address == "127.0.0.1"
    assert isinstance(caught.value, ValidationError)


def test_event_patterns():
    assert check_event_patterns([" Call.* ", "contact.created", "call.*"]) == ["call.*", "contact.created"]
    assert check_event_patterns(["*"]) == ["*"]
    for wrong in (["calls.*"], ["contact.create"], ["call.placed; drop"], [" ", ""]):
        with pytest.raises(ValidationError):
            check_event_patterns(wrong)
    assert "call.wrapped_up" in EVENT_TYPES


class Endpoint:
    def __init__(self, *secrets: str) -> None:
        self.secrets = list(secrets)

    def signing_secrets(self, now: datetime) -> list[str]:
        return self.secrets


def test_a_new_secret_is_24_random_bytes():
    secret = signing.new_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 24
    assert secret != signing.new_secret()
    assert signing.check_secret(secret) == secret


@pytest.mark.parametrize("wrong", ["abc", "whsec_not base64!", "whsec_" + base64.b64encode(b"short").decode()])
def test_a_given_secret_is_checked(wrong):
    with pytest.raises(ValidationError):
        signing.check_secret(wrong)


def test_signatures_verify_with_the_standardwebhooks_library():
    secret = signing.new_secret()
    now = datetime.now(UTC)
    body = b'{"type":"call.ended","id":"msg_1","data":{"id":1,"name":"Zo\xc3\xab"}}'
    headers = signing.headers(Endpoint(secret), "msg_1", now, body)
    assert headers["webhook-id"] == "msg_1"
    assert headers["webhook-timestamp"] == str(int(now.timestamp()))
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"] == "vccweb-webhooks/1"
    assert Webhook(secret).verify(body, headers)["data"]["name"] == "Zoë"
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body + b" ", headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.new_secret()).verify(body, headers)


def test_during_a_rotation_both_secrets_sign():
    old, new = signing.new_secret(), signing.new_secret()
    now = datetime.now(UTC)
    headers = signing.headers(Endpoint(new, old), "msg_2", now, b"{}")
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert all(part.startswith("v1,") for part in headers["webhook-signature"].split(" "))
    # a receiver still holding the old secret verifies, and so does one already given the new one
    Webhook(old).verify(b"{}", headers)
    Webhook(new).verify(b"{}", headers)
    after = signing.headers(Endpoint(new), "msg_3", now, b"{}")
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(b"{}", after)


def test_the_timestamp_is_the_one_signed():
    secret = signing.new_secret()
    stale = datetime.now(UTC) - timedelta(minutes=10)
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(secret).verify(b"{}", signing.headers(Endpoint(secret), "msg_4", stale, b"{}"))


def test_the_readmes_receiver_verifies_what_vccweb_signs():
    section = (Path(__file__).resolve().parent.parent / "README.md").read_text().split("\n## Webhooks\n", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert len(code.strip().splitlines()) == 5
    secret = signing.new_secret()
    body = b'{"type":"contact.created","id":"msg_5","timestamp":"2026-12-06T10:15:42Z","data":{"id":45}}'
    headers = signing.headers(Endpoint(secret), "msg_5", datetime.now(UTC), body)

    def receive(body: bytes, headers: dict[str, str]) -> dict:
        namespace = {"body": body, "headers": headers}
        exec(code.replace("whsec_…", secret), namespace)  # noqa: S102 - README's own example
        return namespace["event"]

    assert receive(body, {name.title(): value for name, value in headers.items()})["data"] == {"id": 45}
    with pytest.raises(WebhookVerificationError):
        receive(body.replace(b"45", b"46"), headers)

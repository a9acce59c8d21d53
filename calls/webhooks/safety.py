"""Which URLs may receive webhooks: checked when an endpoint is saved (check_url) and again at each delivery
(safe_addresses), after resolving the host, so that a name re-pointed to an inside address (a DNS rebind) between
the two cannot reach it: the engine connects to an address safe_addresses returned, not to the name.

Refused: userinfo in the URL; plain http unless settings.DEBUG or the host is in settings.WEBHOOK_ALLOWED_HOSTS; and
hosts resolving to loopback, private (site-local too), CGNAT, reserved, multicast or unspecified addresses unless the
host is in WEBHOOK_ALLOWED_HOSTS. Link-local addresses and the cloud metadata services are refused even then. An IPv6
address that carries an IPv4 one (IPv4-mapped, NAT64, 6to4, Teredo) is checked, and so is the IPv4 address it carries.
"""

import ipaddress
import socket
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.core.exceptions import ValidationError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]

MAX_URL_LENGTH = 2000
# The clouds' instance metadata and platform services, which hand out credentials and configuration to whatever on
# the machine asks. Some are outside link-local: allowing a host (WEBHOOK_ALLOWED_HOSTS) must not reach them.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address)
    for address in (
        "169.254.169.254",  # AWS, Google Cloud, Azure, Oracle Cloud, DigitalOcean, …
        "fd00:ec2::254",  # AWS, over IPv6
        "fd20:ce::254",  # Google Cloud, over IPv6
        "168.63.129.16",  # Azure's platform address (WireServer), a public one
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud Classic
    )
)
CGNAT = ipaddress.ip_network("100.64.0.0/10")
NAT64 = ipaddress.ip_network("64:ff9b::/96")  # the well-known prefix: the IPv4 address is the last 32 bits
NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # a network's own prefix, /48 to /96 (RFC 8215)


class Unsafe(ValidationError):
    """A host resolved to an address webhooks must not be sent to; `address` names it."""

    def __init__(self, message: str, address: str = "") -> None:
        super().__init__(message)
        self.address = address


def resolve(host: str, port: int) -> list[str]:
    """The addresses the host resolves to now, in the resolver's order, without duplicates (tests replace this)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as e:
        raise ValidationError(f"The host {host} could not be resolved ({e}): check its spelling.") from e
    addresses: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def allowed_host(host: str) -> bool:
    """Whether the host is in settings.WEBHOOK_ALLOWED_HOSTS (names compared in lower case, without a final dot)."""
    name = host.lower().rstrip(".")
    return any(name == entry.lower().rstrip(".").strip("[]") for entry in settings.WEBHOOK_ALLOWED_HOSTS)


def carried_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (IPv4-mapped, NAT64 with a /96 prefix, 6to4, a Teredo client), where a
    gateway or relay would deliver it; None for an IPv4 address or an IPv6 one that carries none."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in NAT64 or address in NAT64_LOCAL:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _nat64_local_layouts(address: IPAddress) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses a local-use NAT64 address carries if its network's prefix is a /48, /56 or /64 (RFC 6052:
    the IPv4 address follows the prefix, skipping bits 64-71); which one the network uses is not known here."""
    if address not in NAT64_LOCAL:
        return []
    bits = int(address)
    without_u = (bits >> 64 << 56) | (bits & ((1 << 56) - 1))  # 120 bits, bits 64-71 dropped
    return [ipaddress.IPv4Address((without_u >> (120 - length - 32)) & 0xFFFFFFFF) for length in (48, 56, 64)]


def refusal(address: IPAddress, *, allowed: bool) -> str:
    """What kind of address this is, or the IPv4 address it carries, when webhooks must not go to it ("" when they
    may)."""
    for one in (carried_ipv4(address), address):
        kind = _refusal(one, allowed=allowed) if one is not None else ""
        if kind:
            return kind
    # A local-use NAT64 address is private (refused above unless the host is allowed); what it may carry is checked
    # against the rules that hold even for allowed hosts.
    for one in _nat64_local_layouts(address):
        kind = _refusal(one, allowed=True)
        if kind:
            return kind
    return ""


def _refusal(address: IPAddress, *, allowed: bool) -> str:
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_link_local:
        return "a link-local address"
    if allowed:
        return ""
    if address.is_loopback:
        return "a loopback address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_multicast:
        return "a multicast address"
    if isinstance(address, ipaddress.IPv4Address) and address in CGNAT:
        return "a carrier-grade NAT address"
    if address.is_reserved:
        return "a reserved address"
    if isinstance(address, ipaddress.IPv6Address) and address.is_site_local:
        return "a site-local address"  # fec0::/10: deprecated, yet routed inside some networks, and "global" to Python
    if address.is_private or not address.is_global:
        return "a private address"
    return ""


def safe_addresses(host: str, port: int, *, resolver: Resolver | None = None) -> list[str]:
    """Resolve the host now and return the addresses to connect to; Unsafe names the first refused one.

    One refused address refuses the host: a name answering both a public and an inside address is how a rebind
    attack looks.
    """
    allowed = allowed_host(host)
    addresses = (resolver or resolve)(host, port)
    if not addresses:
        raise ValidationError(f"The host {host} resolves to no address: check its spelling.")
    for text in addresses:
        try:
            address = ipaddress.ip_address(text.split("%", 1)[0])
        except ValueError:
            raise Unsafe(f"The host {host} resolves to {text}, which is not an IP address.", text) from None
        kind = refusal(address, allowed=allowed)
        if kind:
            advice = "" if "link-local" in kind or "metadata" in kind else " (or add the host to WEBHOOK_ALLOWED_HOSTS)"
            raise Unsafe(
                f"The host {host} resolves to {text}, {kind}: webhooks go only to public addresses; "
                f"use a public host{advice}.",
                text,
            )
    return addresses


def default_port(scheme: str) -> int:
    """The port a URL of this scheme (http or https) means when it names none."""
    return 443 if scheme == "https" else 80


def check_scheme(scheme: str, host: str) -> None:
    """Plain http only with DEBUG on or to a host in WEBHOOK_ALLOWED_HOSTS, else ValidationError saying what to do:
    when a URL is saved, and again at each delivery (one saved with DEBUG on is not sent in clear once it is off)."""
    if scheme.lower() == "http" and not (settings.DEBUG or allowed_host(host)):
        raise ValidationError(
            "Use an https:// URL: plain http is allowed only for hosts in WEBHOOK_ALLOWED_HOSTS (or with DEBUG on)."
        )


def check_url(url: str, *, resolver: Resolver | None = None) -> str:
    """The URL normalised (scheme and host in lower case, no fragment), or ValidationError saying what to fix."""
    url = url.strip()
    if not url:
        raise ValidationError("Enter the URL the webhooks are sent to.")
    if len(url) > MAX_URL_LENGTH:
        raise ValidationError(f"The URL is longer than {MAX_URL_LENGTH} characters: use a shorter one.")
    if any(character.isspace() or ord(character) < 32 or ord(character) == 127 for character in url):
        raise ValidationError("The URL contains spaces or control characters: remove them.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise ValidationError(f"The URL is not valid ({e}): check the host and port.") from e
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ValidationError("The URL must start with https:// (webhooks are sent over HTTPS).")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise ValidationError("Remove the user name and password from the URL: receivers verify the signature.")
    if not parts.hostname:
        raise ValidationError("The URL has no host: write it as https://host/path.")
    host = _ascii_host(parts.hostname)
    check_scheme(scheme, host)
    safe_addresses(host, port or default_port(scheme), resolver=resolver)
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != default_port(scheme):
        netloc += f":{port}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def _ascii_host(hostname: str) -> str:
    """The host in lower case, an international name in its ASCII (punycode) form."""
    try:
        return hostname.encode("idna").decode("ascii").lower()
    except UnicodeError as e:
        raise ValidationError(f"The host {hostname} is not a valid name: check its spelling.") from e

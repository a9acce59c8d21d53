"""Calling hours: whether a number may be called now, in the callee's local time (issue 23).

The one place that knows it. A number's time zones come from phonenumbers' time-zone data (`zone_key`), or from
its contact's own setting, which wins. A number whose zones disagree (an Australian mobile may be anywhere from
Perth to Lord Howe) is open only when it is open in every one of them. Admins set the hours of each country
(calls.models.CallingHours; a country without a row gets 08:00 to 21:00, Monday to Saturday) and holidays
(calls.models.Holiday). `load_hours()` reads them (cached, as the consent table is: calls/directory.py) and
`Hours.check(key, now)` answers for one number at one moment, with no I/O.

Of the zones phonenumbers gives, those of the number's own country are kept when there are any (an Australian mobile
is not taken to be on the Cocos Islands, which share its calling code; a US toll-free number is not in Guam).

A number with no known zone (phonenumbers says Etc/Unknown, and the contact has none) is taken as open: refusing
every such number would stop calls to numbers phonenumbers does not place, and the page says "local time unknown"
so the person can judge.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, available_timezones

import phonenumbers
from phonenumbers import timezone as phone_zones

from calls import directory
from calls.models.hours import DEFAULT_CLOSES, DEFAULT_DAYS, DEFAULT_OPENS, CallingHours, Holiday

if TYPE_CHECKING:
    from calls.models import ContactPhone

DAY_NAMES = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
HOURS_KEY = "calls:calling-hours"
_LOOK_AHEAD_DAYS = 400  # how far ahead to look for the next opening: past a year of holidays, never forever


@dataclass(frozen=True)
class Rule:
    """The hours of one country: open from `opens` until (not at) `closes` on `days` (weekday digits, 0 is Monday).

    `closes` of 00:00 or 23:59:59.999999 means until midnight (the tests' and the benches' always-open rules).
    """

    opens: time = DEFAULT_OPENS
    closes: time = DEFAULT_CLOSES
    days: str = DEFAULT_DAYS

    def open_at(self, clock: time) -> bool:
        return self.opens <= clock and (self.closes in (time(0), time.max) or clock < self.closes)

    def window(self) -> str:
        """ "08:00–21:00, Monday to Saturday" """
        until = "24:00" if self.closes in (time(0), time.max) else f"{self.closes:%H:%M}"
        return f"{self.opens:%H:%M}–{until}, {days_words(self.days)}"


DEFAULT_RULE = Rule()  # countries without a row; the tests' conftest replaces it with an always-open rule


def days_words(days: str) -> str:
    """ "Monday to Saturday", "every day", "Monday, Wednesday and Friday", "no day" """
    numbers = sorted({int(d) for d in days if d in "0123456"})
    if not numbers:
        return "no day"
    if len(numbers) == 7:
        return "every day"
    if len(numbers) > 2 and numbers == list(range(numbers[0], numbers[-1] + 1)):
        return f"{DAY_NAMES[numbers[0]]} to {DAY_NAMES[numbers[-1]]}"
    names = [DAY_NAMES[n] for n in numbers]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


# --- A number's time zones ------------------------------------------------------------------------------


@functools.cache
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def valid_zone(name: str) -> bool:
    """Whether name is a time zone this system knows (America/New_York)."""
    return name in _known_zones()


def zone_key(number: str, contact_zone: str = "") -> str:
    """Where a number is: "CC:Zone1,Zone2" (its ISO region, "" if unknown; its zones, sorted), or "" when no zone is
    known. The contact's own zone, when set and valid, replaces the number's. Cheap: see _region_and_zones."""
    region, zones = _region_and_zones(number)
    if contact_zone and valid_zone(contact_zone):
        return f"{region}:{contact_zone}"
    return f"{region}:{','.join(zones)}" if zones else ""


def _region_and_zones(number: str) -> tuple[str, tuple[str, ...]]:
    # Parsing and typing a number costs phonenumbers some 30 µs: 3 s for a queue of 100,000 numbers. The answer
    # depends on the number's first digits (time-zone prefixes are at most TIMEZONE_LONGEST_PREFIX, 9, digits long)
    # and, through the number's type and region, on patterns of its first digits and on its length: numbers of the
    # same length that share their first 9 digits after the '+' get the same answer. That is not proven from the
    # metadata: tests/test_calling_hours.py holds the cache to the uncached answer on every example number of every
    # region and type, and some 30,000 variations of their last 1 to 6 digits (8 digits gives wrong answers).
    if not number.startswith("+") or len(number) <= _CACHED_DIGITS + 1:
        return _lookup(number)
    return _cached_lookup(number[: _CACHED_DIGITS + 1], len(number), number)


_CACHED_DIGITS = 9  # phonenumbers.tzdata.TIMEZONE_LONGEST_PREFIX


_cache: dict[tuple[str, int], tuple[str, tuple[str, ...]]] = {}
_CACHE_SIZE = 200_000


def _cached_lookup(prefix: str, length: int, number: str) -> tuple[str, tuple[str, ...]]:
    """_lookup(number), remembered by the number's first digits and its length (see _region_and_zones)."""
    found = _cache.get((prefix, length))
    if found is None:
        found = _lookup(number)
        if len(_cache) >= _CACHE_SIZE:
            _cache.clear()
        _cache[(prefix, length)] = found
    return found


def _lookup(number: str) -> tuple[str, tuple[str, ...]]:
    """phonenumbers' region and time zones of number (E.164), without Etc/Unknown: ("", ()) when unknown."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return "", ()
    region = phonenumbers.region_code_for_number(parsed) or ""
    if region == "001":  # non-geographic entities (satellite phones, …)
        region = ""
    zones = [z for z in phone_zones.time_zones_for_number(parsed) if valid_zone(z)]
    # Zones of other countries sharing the calling code go when the number's own country has some: a US toll-free
    # number is given every zone of +1, from Guam to Newfoundland, where no hour is open in all of them at once.
    countries = _zone_countries()
    home = [z for z in zones if countries.get(z) == region]
    return region, tuple(sorted(home or zones))


@functools.lru_cache(maxsize=4096)
def _parse_key(key: str) -> tuple[str, tuple[ZoneInfo, ...]]:
    region, _, zones = key.partition(":")
    return region, tuple(ZoneInfo(z) for z in zones.split(",") if z and valid_zone(z))


@functools.cache
def _zone_countries() -> dict[str, str]:
    """Each zone's country from the tz database's zone.tab (Indian/Cocos is CC, Australia/Perth AU), or {}."""
    text = ""
    try:
        text = resources.files("tzdata.zoneinfo").joinpath("zone.tab").read_text()
    except (ModuleNotFoundError, OSError):
        system = Path("/usr/share/zoneinfo/zone.tab")
        text = system.read_text() if system.exists() else ""
    lines = (line.split("\t") for line in text.splitlines() if line and not line.startswith("#"))
    return {cols[2]: cols[0] for cols in lines if len(cols) >= 3}


def place_name(zone: str) -> str:
    """The city of a zone name: America/New_York is "New York"."""
    return zone.rsplit("/", 1)[-1].replace("_", " ")


def hm(moment: datetime) -> str:
    """22:14, 8:05: 24-hour, no leading zero on the hour."""
    return f"{moment.hour}:{moment.minute:02d}"


# --- The answer ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LocalTime:
    """Whether a number may be called at a moment, and its local time there, in words."""

    open: bool
    local: datetime | None  # the time in the zone that decides (None: no zone known)
    place: str  # "New York" ("" when no zone is known)
    opens_at: datetime | None = None  # UTC: when it next opens in every zone (None when open, or never within a year)
    why_closed: str = ""  # "day", "holiday" or "time" ("" when open)
    holiday: str = ""
    rule: Rule = field(default_factory=Rule)

    @property
    def known(self) -> bool:
        return self.local is not None

    @property
    def words(self) -> str:
        """ "22:14 in New York", or "local time unknown" """
        return f"{hm(self.local)} in {self.place}" if self.local is not None else "local time unknown"

    @property
    def refusal(self) -> str:
        """Why a call now is refused, as a sentence ("" when open)."""
        if self.open or self.local is None:
            return ""
        allowed = f"calls to this number are allowed {self.rule.window()}"
        if self.why_closed == "holiday":
            return f"It is {self.words} and a holiday there ({self.holiday}): {allowed}, not on holidays."
        if self.why_closed == "day":
            return f"It is {DAY_NAMES[self.local.weekday()]} {self.words}: {allowed}."
        return f"It is {self.words}: {allowed}."


UNKNOWN = LocalTime(open=True, local=None, place="")


@dataclass
class Hours:
    """The calling hours of every country and the holidays, read once (load_hours) for a request or a batch."""

    rules: dict[str, Rule] = field(default_factory=dict)
    holidays: dict[tuple[str, date], str] = field(default_factory=dict)  # ("" for every country, day): name

    def rule(self, country: str) -> Rule:
        return self.rules.get(country) or DEFAULT_RULE

    def holiday(self, country: str, day: date) -> str:
        return self.holidays.get((country, day)) or self.holidays.get(("", day)) or ""

    def check(self, key: str, now: datetime) -> LocalTime:
        """Whether the number of `key` (zone_key) may be called at `now` (aware), in every one of its zones."""
        country, zones = _parse_key(key)
        if not zones:
            return UNKNOWN
        rule = self.rule(country)
        answers = [self._in_zone(country, rule, zone, now) for zone in zones]
        closed = [a for a in answers if not a.open]
        # What the page shows is the zone that decides: the one closing first when open (its local time is the
        # latest), the one opening last when closed. Zones of the number's own country come first (an Australian
        # mobile says Perth or Sydney, not the Cocos Islands, which share its country code); then the name.
        countries = _zone_countries()
        never = datetime.max.replace(tzinfo=UTC)

        def deciding(a: LocalTime) -> tuple[bool, timedelta | datetime, str]:
            at_home = countries.get(a.place, country) == country
            if a.open:
                return at_home, (a.local.utcoffset() if a.local else None) or timedelta(0), a.place
            return at_home, a.opens_at or never, a.place

        shown = max(closed or answers, key=deciding)
        return LocalTime(
            open=not closed,
            local=shown.local,
            place=place_name(shown.place),
            opens_at=self._opens_everywhere(country, rule, list(zones), now) if closed else None,
            why_closed=shown.why_closed,
            holiday=shown.holiday,
            rule=rule,
        )

    def _in_zone(self, country: str, rule: Rule, zone: ZoneInfo, now: datetime) -> LocalTime:
        """The answer in one zone (`place` holds the zone's name here; check() turns it into words)."""
        local = now.astimezone(zone)
        holiday = self.holiday(country, local.date())
        why = ""
        if holiday:
            why = "holiday"
        elif str(local.weekday()) not in rule.days:
            why = "day"
        elif not rule.open_at(local.time()):
            why = "time"
        if not why:
            return LocalTime(open=True, local=local, place=zone.key, rule=rule)
        return LocalTime(
            open=False,
            local=local,
            place=zone.key,
            opens_at=self._next_opening(country, rule, zone, now),
            why_closed=why,
            holiday=holiday,
            rule=rule,
        )

    def _next_opening(self, country: str, rule: Rule, zone: ZoneInfo, after: datetime) -> datetime | None:
        """The first moment at or after `after` when the number is open in `zone` (UTC), or None within a year."""
        local = after.astimezone(zone)
        day = local.date()
        for _ in range(_LOOK_AHEAD_DAYS):
            if str(day.weekday()) in rule.days and not self.holiday(country, day):
                start = datetime.combine(day, rule.opens, tzinfo=zone)
                if day == local.date():
                    if local.time() < rule.opens:
                        return start.astimezone(UTC)
                    if rule.open_at(local.time()):
                        return after.astimezone(UTC)
                else:
                    return start.astimezone(UTC)
            day += timedelta(days=1)
        return None

    def _opens_everywhere(self, country: str, rule: Rule, zones: list[ZoneInfo], after: datetime) -> datetime | None:
        """The first moment at or after `after` when the number is open in every zone at once (UTC)."""
        moment: datetime | None = after
        for _ in range(len(zones) * 8 + 8):  # each round moves to a later opening; zones that never overlap give up
            if moment is None:
                return None
            later = [self._next_opening(country, rule, zone, moment) for zone in zones]
            if any(t is None for t in later):
                return None
            latest = max(t for t in later if t is not None)
            if latest == moment.astimezone(UTC):
                return latest
            moment = latest
        return None


def load_hours() -> Hours:
    """Every country's calling hours and the holidays: cached until an admin changes them (calls/directory.py)."""
    return directory.remembered(HOURS_KEY, _read_hours)


def _read_hours() -> Hours:
    rules = {
        row.country: Rule(row.opens_at, row.closes_at, row.days)
        for row in CallingHours.objects.only("country", "opens_at", "closes_at", "days")
    }
    holidays = {(h.country, h.date): h.name for h in Holiday.objects.only("country", "date", "name")}
    return Hours(rules, holidays)


def for_phone(phone: ContactPhone, hours: Hours, now: datetime) -> LocalTime:
    """Whether one of a contact's numbers may be called at `now`, in its local time (the contact's zone wins)."""
    return hours.check(zone_key(phone.number, phone.contact.time_zone), now)

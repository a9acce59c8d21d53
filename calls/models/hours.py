"""Calling hours (issue 23): when a number may be called, in the callee's local time.

CallingHours holds the hours of one country (a country without a row gets DEFAULT_HOURS); Holiday a day on which a
country (or every country) is not called. The work is in calls/calling/hours.py."""

from __future__ import annotations

import datetime as dt

from django.core.validators import RegexValidator
from django.db import models

# Weekdays as Python numbers them (Monday is 0): DEFAULT_DAYS is Monday to Saturday.
WEEKDAYS = [(0, "Mon"), (1, "Tue"), (2, "Wed"), (3, "Thu"), (4, "Fri"), (5, "Sat"), (6, "Sun")]
DEFAULT_OPENS = dt.time(8, 0)
DEFAULT_CLOSES = dt.time(21, 0)
DEFAULT_DAYS = "012345"

country_validator = RegexValidator(r"^[A-Z]{2}$", "Use the two-letter ISO country code in capitals, such as US.")


class CallingHours(models.Model):
    """The local hours within which a country's numbers may be called. No row: 08:00 to 21:00, Monday to Saturday."""

    country = models.CharField(
        max_length=2, unique=True, validators=[country_validator], help_text="ISO 3166 code, such as US or GB."
    )
    opens_at = models.TimeField("from", default=DEFAULT_OPENS, help_text="Local time at the callee's number.")
    closes_at = models.TimeField("until", default=DEFAULT_CLOSES, help_text="Calls may start up to this time.")
    days = models.CharField(
        max_length=7,
        default=DEFAULT_DAYS,
        help_text="The days calls are allowed, as weekday numbers (0 is Monday): 012345 is Monday to Saturday.",
    )
    note = models.CharField(max_length=200, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["country"]
        verbose_name = "calling hours"
        verbose_name_plural = "calling hours"
        constraints = [
            models.CheckConstraint(condition=models.Q(days__regex=r"^[0-6]{0,7}$"), name="callinghours_days"),
            models.CheckConstraint(condition=models.Q(opens_at__lt=models.F("closes_at")), name="callinghours_order"),
        ]

    def __str__(self) -> str:
        return f"{self.country}: {self.opens_at:%H:%M}–{self.closes_at:%H:%M}"


class Holiday(models.Model):
    """A day on which numbers of a country (blank: of every country) are not called, in their local calendar."""

    country = models.CharField(
        max_length=2, blank=True, validators=[country_validator], help_text="Blank: every country."
    )
    date = models.DateField()
    name = models.CharField(max_length=100)

    class Meta:
        ordering = ["date", "country"]
        constraints = [models.UniqueConstraint(fields=["country", "date"], name="holiday_unique_day")]

    def __str__(self) -> str:
        return f"{self.date} {self.country or 'all'}: {self.name}"

"""What admins set for calls: the wrap-up dispositions and the recording consent defaults per country."""

from __future__ import annotations

from django.core.validators import MinLengthValidator, RegexValidator
from django.db import models

from calls.models.common import Consent


class DispositionCode(models.Model):
    """A wrap-up outcome agents pick after a call; the code is sent to VCC verbatim."""

    class Action(models.TextChoices):
        NONE = "", "Nothing else"
        NUMBER_DNC = "number_dnc", "Mark the number do-not-call"
        CONTACT_DNC = "contact_dnc", "Mark the contact do-not-call"

    code = models.CharField(
        max_length=64,
        unique=True,
        validators=[MinLengthValidator(3)],
        help_text="Sent to VCC as the disposition code: 3 to 64 characters.",
    )
    description = models.CharField(max_length=200, blank=True)
    action = models.CharField(max_length=12, choices=Action.choices, blank=True, help_text="Also done when chosen.")

    class QueueEffect(models.TextChoices):
        REACHED = "reached", "Reached: the contact leaves the queue"
        RETRY = "retry", "Not reached: back after the queue's wait"

    queue_effect = models.CharField(
        "in a call queue",
        max_length=8,
        choices=QueueEffect.choices,
        default=QueueEffect.REACHED,
        db_default=QueueEffect.REACHED,
        help_text="What choosing it does to the contact in a call queue.",
    )
    is_active = models.BooleanField("active", default=True)
    position = models.PositiveSmallIntegerField(default=100)

    class Meta:
        ordering = ["position", "code"]

    def __str__(self) -> str:
        return self.code


class ConsentRule(models.Model):
    """The recording consent to send for numbers of a country, unless the contact overrides it."""

    country = models.CharField(
        max_length=2,
        unique=True,
        validators=[RegexValidator(r"^[A-Z]{2}$", "Use the two-letter ISO country code in capitals, such as GB.")],
        help_text="ISO 3166 code, such as GB or US.",
    )
    consent = models.CharField(max_length=10, choices=Consent.choices)
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["country"]
        verbose_name = "recording consent default"

    def __str__(self) -> str:
        return f"{self.country}: {self.get_consent_display()}"

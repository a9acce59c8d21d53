"""What several areas share: the ID and number patterns, their validators, the consent choices, and the columns
of the models whose SQL is written by hand."""

from __future__ import annotations

from typing import Any

from django.core.validators import RegexValidator
from django.db import models

from calls import phones

AGENT_ID_PATTERN = r"^[0-9]{1,11}$"
GROUP_ID_PATTERN = r"^[A-Za-z0-9]{1,32}$"
E164_PATTERN = r"^\+[1-9][0-9]{6,14}$"

agent_id_validator = RegexValidator(
    AGENT_ID_PATTERN, "A VCC agent display ID is 1 to 11 digits, nothing else (for example 1234).", code="agent_id"
)
group_id_validator = RegexValidator(
    GROUP_ID_PATTERN, "A VCC group display ID is 1 to 32 letters or digits (for example 030).", code="group_id"
)


def validate_phone(value: str) -> None:
    phones.to_e164(value)


class Consent(models.TextChoices):
    UNKNOWN = "Unknown", "Unknown"
    ONE_PARTY = "OneParty", "One party"
    TWO_PARTY = "TwoParty", "Two party"


def concrete_field(model: type[models.Model], name: str) -> models.Field[Any, Any]:
    """model's field `name`, which has a column (`_meta.get_field` also finds relations that have none)."""
    field = model._meta.get_field(name)
    assert isinstance(field, models.Field) and field.concrete, f"{name} is not a column"
    return field


def column_of(field: models.Field[Any, Any]) -> str:
    """A concrete field's column (`Field.column` is None only for fields that have none)."""
    assert field.column is not None, f"{field.name} has no column"
    return field.column

"""Failed logins and the lock-outs they lead to, in PostgreSQL: a Redis restart lifts none (calls/logins.py)."""

from __future__ import annotations

from django.db import models


class LoginFailure(models.Model):
    """One failed login, counted against one subject: an account ("account:<hash of the name>") or an address.

    Each failure is two rows, one per subject, so that a success can forget the account's failures and keep the
    address's. Rows older than the window are deleted as new failures come in."""

    subject = models.CharField(max_length=80)
    at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["subject", "at"], name="loginfailure_subject_at_idx"),
            models.Index(fields=["at"], name="loginfailure_at_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.subject} at {self.at:%Y-%m-%d %H:%M:%S}"


class LockOut(models.Model):
    """An account or an address refused logins until `until`; lifting one deletes it."""

    class Kind(models.TextChoices):
        ACCOUNT = "account", "Account"
        ADDRESS = "address", "Address"

    subject = models.CharField(max_length=80, unique=True)  # the key LoginFailure counts under
    kind = models.CharField(max_length=7, choices=Kind.choices)
    # The account's name as typed (lower-cased; it may name no user) or the address (IPv6: its /64).
    name = models.CharField("account or address", max_length=150)
    since = models.DateTimeField()
    until = models.DateTimeField(db_index=True)
    failures = models.PositiveIntegerField()

    class Meta:
        verbose_name = "lock-out"
        ordering = ["-since"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.name}"

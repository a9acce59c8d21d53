"""Privacy (issue 22): how long personal data is kept (RetentionPolicy, and each run of the job that applies it,
RetentionRun), and the do-not-call numbers of erased contacts, kept only as a salted hash (ErasedNumber).

The work is in calls/privacy/: retention.py applies the policy, erasure.py erases a contact, subject.py gathers what
vccweb holds about one person."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class RetentionPolicy(models.Model):
    """After how many days each kind of personal data goes; blank keeps it. One row (pk 1), edited on one page.

    `*_done_before`: every call asked for before that instant has been cleared or masked; the job walks on from there
    (and from the oldest call when it is empty), so a run after the first reads only the calls that aged since."""

    SINGLETON = 1

    notes_days = models.PositiveIntegerField(
        "delete call notes after (days)",
        null=True,
        blank=True,
        help_text="Call notes, wrap-up notes and do-not-call override reasons. Blank: keep them.",
    )
    mask_days = models.PositiveIntegerField(
        "mask called numbers after (days)",
        null=True,
        blank=True,
        help_text=(
            "The number in the call log becomes +44 20 •••• •100 (country, a fixed line's area code, "
            "and the last 3 digits). Blank: keep it."
        ),
    )
    audit_days = models.PositiveIntegerField(
        "delete audit entries after (days)", null=True, blank=True, help_text="Blank: keep them."
    )
    notes_done_before = models.DateTimeField(null=True, blank=True, editable=False)
    masked_done_before = models.DateTimeField(null=True, blank=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = "retention policy"
        verbose_name_plural = "retention policy"
        constraints = [models.CheckConstraint(condition=models.Q(pk=1), name="retentionpolicy_singleton")]

    def __str__(self) -> str:
        return "Retention policy"

    @classmethod
    def current(cls) -> RetentionPolicy:
        """The policy (made, all blank, the first time it is asked for)."""
        policy, _ = cls.objects.get_or_create(pk=cls.SINGLETON)
        return policy

    @property
    def keeps_everything(self) -> bool:
        return self.notes_days is None and self.mask_days is None and self.audit_days is None


class RetentionRun(models.Model):
    """One run of the retention job: what it did, for the health page."""

    started_at = models.DateTimeField(db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    notes_cleared = models.PositiveIntegerField(default=0)
    numbers_masked = models.PositiveIntegerField(default=0)
    audit_deleted = models.PositiveIntegerField(default=0)
    batches = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"Retention run at {self.started_at:%Y-%m-%d %H:%M:%S}"

    @property
    def summary(self) -> str:
        if self.error:
            return f"failed: {self.error}"
        if self.finished_at is None:
            return f"running ({self.notes_cleared} notes cleared, {self.numbers_masked} numbers masked so far)"
        return (
            f"cleared the notes of {self.notes_cleared} call{'s' * (self.notes_cleared != 1)}, masked "
            f"{self.numbers_masked} number{'s' * (self.numbers_masked != 1)}, deleted {self.audit_deleted} audit "
            f"entr{'ies' if self.audit_deleted != 1 else 'y'}"
        )


class ErasedNumber(models.Model):
    """A do-not-call number of an erased or deleted contact, as HMAC-SHA256 of its E.164 (calls/privacy/hashing.py):
    the opt-out outlives the contact, and the number itself is gone. A click to it is refused; an import or a form
    that adds it again makes it do-not-call at once; clearing that number's do-not-call forgets it."""

    digest = models.CharField(max_length=64, primary_key=True)
    erased_at = models.DateTimeField()

    class Meta:
        permissions = [
            ("erase_contact", "Can erase a contact (right to erasure)"),
            ("export_subject_data", "Can download everything held about a contact"),
        ]

    def __str__(self) -> str:
        return f"{self.digest[:12]}… (erased {self.erased_at:%Y-%m-%d})"

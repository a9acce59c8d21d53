"""The salted hash an erased contact's do-not-call numbers are kept as (ErasedNumber): HMAC-SHA256 of the E.164,
keyed with ERASURE_HASH_KEY (SECRET_KEY unless set). Without the key a dump of the database cannot tell which
numbers they are, even by trying every number of a country; with it, a number can be checked, not read back."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.utils import timezone

from calls.models import Contact, ContactPhone, ErasedNumber

_SALT = b"vccweb.erased-do-not-call-number"


def _key() -> bytes:
    key = getattr(settings, "ERASURE_HASH_KEY", "") or settings.SECRET_KEY
    return hashlib.sha256(_SALT + key.encode()).digest()


def number_digest(e164: str) -> str:
    return hmac.new(_key(), e164.encode(), hashlib.sha256).hexdigest()


def erased_do_not_call(e164: str) -> bool:
    """Whether the number was do-not-call on a contact since erased: it stays blocked."""
    return bool(e164) and ErasedNumber.objects.filter(digest=number_digest(e164)).exists()


def erased_among(numbers: Iterable[str]) -> set[str]:
    """Which of numbers were do-not-call on an erased contact (one query)."""
    by_digest = {number_digest(n): n for n in numbers if n}
    if not by_digest:
        return set()
    found = ErasedNumber.objects.filter(digest__in=list(by_digest)).values_list("digest", flat=True)
    return {by_digest[d] for d in found}


def mark_erased_opt_out(sender: type[ContactPhone], instance: ContactPhone, **kwargs: Any) -> None:
    """pre_save of ContactPhone: a number added that an erased contact had as do-not-call is do-not-call at once."""
    if instance._state.adding and not instance.do_not_call and erased_do_not_call(instance.number):
        instance.do_not_call = True


def mark_erased_opt_outs(phones: list[ContactPhone]) -> None:
    """The same for numbers about to be written in bulk (bulk_create sends no signal): one query."""
    erased = erased_among(p.number for p in phones if not p.do_not_call)
    for phone in phones:
        if phone.number in erased:
            phone.do_not_call = True


def keep_opt_outs(numbers: Iterable[str], *, at: Any) -> None:
    """Keep these do-not-call numbers' opt-outs as hashes: their contact is going (erased or deleted)."""
    ErasedNumber.objects.bulk_create(
        [ErasedNumber(digest=number_digest(n), erased_at=at) for n in set(numbers) if n], ignore_conflicts=True
    )


def keep_opt_outs_of_deleted_contact(sender: type[Contact], instance: Contact, **kwargs: Any) -> None:
    """pre_delete of Contact: deleting a contact, like erasing it, keeps its do-not-call numbers blocked (a number
    re-imported later is do-not-call at once), so no deletion undoes an opt-out. Numbers removed one at a time on
    the contact's form are not kept: that form asks why do-not-call is cleared."""
    phones = ContactPhone.objects.filter(contact_id=instance.pk)
    if not instance.do_not_call:
        phones = phones.filter(do_not_call=True)
    keep_opt_outs(phones.values_list("number", flat=True), at=timezone.now())


def forget_cleared_opt_out(sender: type[ContactPhone], instance: ContactPhone, **kwargs: Any) -> None:
    """pre_save of ContactPhone: a number whose do-not-call someone cleared (with the reason the contact's form asks)
    is no longer kept blocked for a contact since erased or deleted. One indexed query a save of a number that is
    not do-not-call; a second only when its opt-out is kept."""
    if instance._state.adding or instance.do_not_call or not erased_do_not_call(instance.number):
        return
    if ContactPhone.objects.filter(pk=instance.pk, do_not_call=True).exists():
        ErasedNumber.objects.filter(digest=number_digest(instance.number)).delete()

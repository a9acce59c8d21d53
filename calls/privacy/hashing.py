"""The salted hash an erased contact's do-not-call numbers are kept as (ErasedNumber): HMAC-SHA256 of the E.164,
keyed with ERASURE_HASH_KEY (SECRET_KEY unless set). Without the key a dump of the database cannot tell which
numbers they are, even by trying every number of a country; with it, a number can be checked, not read back."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from typing import Any

from django.conf import settings

from calls.models import ContactPhone, ErasedNumber

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

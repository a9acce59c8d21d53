"""Filter errors as a person reads them, for the pages whose filters come from the address (call log, audit trail,
a queue's entries): each filter named by its label, not its name in the address."""

from __future__ import annotations

from typing import ClassVar

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS


class NamedProblems(forms.Form):
    """A filter form whose `problems()` says each error after its filter's label. A hidden filter is set by a link a
    person cannot retype: `link_hint` says what to do instead. The errors of `whole_errors` (a page position, the
    form's own) already say everything, and stand alone."""

    link_hint: ClassVar[str] = "The link that set it is damaged: go back and follow the link again."
    whole_errors: ClassVar[tuple[str, ...]] = (NON_FIELD_ERRORS,)

    def problems(self) -> list[str]:
        out = []
        for name, errors in self.errors.items():
            words = " ".join(str(error) for error in errors)
            if name in self.whole_errors or name not in self.fields:
                out.append(words)
            elif self.fields[name].widget.is_hidden:
                out.append(f"{self[name].label}: {words} {self.link_hint}")
            else:
                out.append(f"{self[name].label}: {words}")
        return out

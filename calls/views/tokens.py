"""A person's own API tokens, on their profile: the list, making one (shown once) and revoking one. Every role has
the page; each sees and revokes only their own tokens (admins see everyone's in the admin: calls/admin/tokens.py)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_http_methods, require_POST

from calls import tokens
from calls.forms.once import first_sending
from calls.forms.tokens import TokenForm
from calls.models import ApiToken
from calls.models.api import SCOPES
from calls.views.access import login_required
from calls.views.http import AuthedRequest


@require_http_methods(["GET", "POST"])
@login_required
def token_list(request: AuthedRequest) -> HttpResponse:
    """The person's tokens and the form for a new one. A token made is shown in the answer to the POST itself,
    not after a redirect: it would have to wait in the session, stored where only its hash should be."""
    form = TokenForm(request.POST if request.method == "POST" else None, user=request.user)
    new_token = ""
    if form.is_valid():
        if first_sending(request, form):
            _, new_token = tokens.create_token(user=request.user, by=request.user.get_username(), **form.cleaned_data)
            form = TokenForm(user=request.user)
        else:
            form.add_error(None, "This form was sent already and made its token, shown then. Make another below.")
    context = {
        "form": form,
        "new_token": new_token,
        "tokens": ApiToken.objects.filter(user=request.user),
        "scopes": SCOPES,
    }
    response = render(request, "calls/tokens.html", context)
    add_never_cache_headers(response)  # the page may hold a token: no cache keeps it
    return response


@require_POST
@login_required
def token_revoke(request: AuthedRequest, pk: int) -> HttpResponse:
    """Revoke one of the person's own tokens (someone else's is a 404, as if it did not exist)."""
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)
    if tokens.revoke(ApiToken.objects.filter(pk=token.pk), by=request.user):
        messages.success(request, f"Revoked {token}: whatever uses it is refused from now on.")
    else:
        messages.info(request, f"{token} was already revoked; nothing changed.")
    return redirect("api_tokens")

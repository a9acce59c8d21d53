"""The API's contacts endpoints."""

from __future__ import annotations

from ninja import Router

router = Router(tags=["contacts"])

"""VCC's User Admin API on the regional gateway: users, groups and callback numbers, every page."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Self
from urllib.parse import quote

import httpx
from django.core.cache import cache

from .config import VCCConfig, http_client
from .core import Flow, authorized, error_from_response, json_body, run_sync, text
from .types import Json, VCCCallbackNumber, VCCGroup, VCCUser

ACCEPT = "application/vnd.newvoicemedia.v4+json"
PAGE_SIZE = 100
MAX_PAGES = 1000  # a guard against a server that ignores `page`


def build_page(config: VCCConfig, token: str, path: str, params: dict[str, Any]) -> httpx.Request:
    headers = {"Authorization": f"Bearer {token}", "Accept": ACCEPT}
    return httpx.Request("GET", f"{config.gateway_url}/useradmin/{path}", params=params, headers=headers)


def all_pages(config: VCCConfig, path: str, key: str, params: dict[str, Any] | None = None) -> Flow[list[Json]]:
    """Collect `key` from every page of `path`.

    The docs disagree on whether pages count from 0 or 1, so the first request names no page and the reply's
    `meta.page` says where counting starts. Stops at an empty page, after `meta.pageCount` pages, or (with no
    `meta`) at a short page.
    """
    items: list[Json] = []
    page: int | None = None
    for fetched in range(1, MAX_PAGES + 1):
        query = (params or {}) | {"limit": PAGE_SIZE} | ({} if page is None else {"page": page})
        response = yield from authorized(
            config.gateway_token, functools.partial(build_page, config, path=path, params=query)
        )
        if not response.is_success:
            raise error_from_response(response)
        body = json_body(response)
        listed = body.get(key)
        batch = [item for item in listed if isinstance(item, dict)] if isinstance(listed, list) else []
        items.extend(batch)
        meta = found if isinstance(found := body.get("meta"), dict) else {}
        page_count = meta.get("pageCount")
        if not batch or (fetched >= page_count if isinstance(page_count, int) else len(batch) < PAGE_SIZE):
            break
        current = meta.get("page")
        page = (current if isinstance(current, int) else (page if page is not None else 1)) + 1
    return items


def parse_user(item: Json) -> VCCUser:
    # Users carry agentDisplayId deep in their configuration; group member lists carry it at the top.
    nested: Any = item
    for key in ("userAccountConfiguration", "agentConfiguration", "agentDisplayId"):
        nested = nested.get(key) if isinstance(nested, dict) else None
    display_id = item.get("agentDisplayId") or nested
    return VCCUser(
        user_id=text(item.get("userId")) or "",
        name=text(item.get("name")) or "",
        username=text(item.get("username")) or "",
        email=text(item.get("email")) or "",
        active=item.get("active") is not False,
        agent_display_id=text(display_id),
    )


def parse_group(item: Json) -> VCCGroup:
    return VCCGroup(
        group_id=text(item.get("groupId")) or "",
        name=text(item.get("groupName") or item.get("name")) or "",
        display_id=text(item.get("groupDisplayId")),
    )


def parse_callback_number(item: Json) -> VCCCallbackNumber:
    return VCCCallbackNumber(
        callback_number_id=text(item.get("callbackNumberId")) or "",
        name=text(item.get("callbackNumberName")) or "",
        clid=text(item.get("callbackNumberClid")) or "",
    )


def _parsed[T](flow: Flow[list[Json]], parse: Callable[[Json], T]) -> Flow[list[T]]:
    return [parse(item) for item in (yield from flow)]


class UserAdminClient:
    """Read users, groups and callback numbers for syncing. Needs `VCC_CLIENT_ID`/`VCC_CLIENT_SECRET`."""

    def __init__(self, *, transport: httpx.BaseTransport | None = None, **overrides: Any) -> None:
        self.config = VCCConfig.from_settings(**overrides)
        self._http = http_client(self.config, transport)

    def _list[T](
        self, path: str, key: str, parse: Callable[[Json], T], params: dict[str, Any] | None = None
    ) -> list[T]:
        return run_sync(_parsed(all_pages(self.config, path, key, params), parse), self._http, cache)

    def users(self, include: str = "Active") -> list[VCCUser]:
        return self._list("users", "users", parse_user, {"include": include})

    def groups(self) -> list[VCCGroup]:
        return self._list("groups", "groups", parse_group)

    def group_members(self, group_id: str) -> list[VCCUser]:
        return self._list(f"groups/{quote(group_id, safe='')}/users", "users", parse_user)

    def callback_numbers(self, user_id: str) -> list[VCCCallbackNumber]:
        return self._list(f"users/{quote(user_id, safe='')}/callbackNumbers", "callbackNumbers", parse_callback_number)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def get_user_admin_client() -> UserAdminClient:
    return UserAdminClient()

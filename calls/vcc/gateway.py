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
from .errors import VCCError
from .types import Json, VCCCallbackNumber, VCCGroup, VCCUser

ACCEPT = "application/vnd.newvoicemedia.v4+json"
PAGE_SIZE = 100
MAX_PAGES = 1000  # a guard against a server that ignores `page`


def build_page(config: VCCConfig, token: str, path: str, params: dict[str, Any]) -> httpx.Request:
    headers = {"Authorization": f"Bearer {token}", "Accept": ACCEPT}
    return httpx.Request("GET", f"{config.gateway_url}/useradmin/{path}", params=params, headers=headers)


def all_pages(
    config: VCCConfig, path: str, key: str, id_key: str, params: dict[str, Any] | None = None
) -> Flow[list[Json]]:
    """Collect `key` from every page of `path`, or raise: the sync retires whoever a short list leaves out.

    The docs disagree on whether pages count from 0 or 1, and document `GET /users` without `meta`, so the first
    request names no page. Its `meta.page` says where counting starts; without it page 1 is asked next, and if that
    repeats the first page's items (by `id_key`) pages count from 1: the repeat is dropped and page 2 follows.
    Stops at an empty page, after `meta.pageCount` pages, or (without it) at a short page. A reply without the list,
    or an item seen twice (pages that moved while being read, or a server that ignores `page`), raises.
    """
    items: list[Json] = []
    seen: set[str] = set()
    first: list[str | None] = []
    page: int | None = None  # None: the server's first page
    probing = False  # page 1 was asked for after a first page without `meta.page`
    read = 0  # pages read, a repeated first page not counted
    while read < MAX_PAGES:
        query = (params or {}) | {"limit": PAGE_SIZE} | ({} if page is None else {"page": page})
        response = yield from authorized(
            config.gateway_token, functools.partial(build_page, config, path=path, params=query)
        )
        if not response.is_success:
            raise error_from_response(response)
        body = json_body(response)
        listed = body.get(key)
        if not isinstance(listed, list):
            raise _unfinished(f"VCC's reply to GET useradmin/{path} has no {key} list", response.status_code)
        ids = [text(item.get(id_key)) if isinstance(item, dict) else None for item in listed]
        if page is None:
            first = ids
        elif probing and listed and ids == first:
            page, probing = 2, False  # pages count from 1: that was the first page again
            continue
        if repeated := seen.intersection(ids):
            message = f"GET useradmin/{path} page {page} repeats {id_key} {min(repeated)} of an earlier page"
            raise _unfinished(message, response.status_code)
        seen.update(item_id for item_id in ids if item_id is not None)
        items.extend(item for item in listed if isinstance(item, dict))
        read += 1
        meta = found if isinstance(found := body.get("meta"), dict) else {}
        page_count = meta.get("pageCount")
        # A page is short by what VCC listed, not by what could be read: one odd item does not end the list.
        if not listed or (read >= page_count if isinstance(page_count, int) else len(listed) < PAGE_SIZE):
            return items
        if page is not None:
            page, probing = page + 1, False
        elif isinstance(current := meta.get("page"), int):
            page = current + 1
        else:
            page, probing = 1, True
    raise VCCError(
        f"GET useradmin/{path} had more than {MAX_PAGES} pages",
        user_message=f"VCC's list ran past {MAX_PAGES} pages, more than vccweb reads: please report it.",
    )


def _unfinished(message: str, status: int) -> VCCError:
    return VCCError(
        message,
        status=status,
        user_message="VCC's list could not be read to its end; try again in a moment.",
        retryable=True,
    )


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
        self, path: str, key: str, id_key: str, parse: Callable[[Json], T], params: dict[str, Any] | None = None
    ) -> list[T]:
        return run_sync(_parsed(all_pages(self.config, path, key, id_key, params), parse), self._http, cache)

    def users(self, include: str = "Active") -> list[VCCUser]:
        return self._list("users", "users", "userId", parse_user, {"include": include})

    def groups(self) -> list[VCCGroup]:
        return self._list("groups", "groups", "groupId", parse_group)

    def group_members(self, group_id: str) -> list[VCCUser]:
        return self._list(f"groups/{quote(group_id, safe='')}/users", "users", "userId", parse_user)

    def callback_numbers(self, user_id: str) -> list[VCCCallbackNumber]:
        path = f"users/{quote(user_id, safe='')}/callbackNumbers"
        return self._list(path, "callbackNumbers", "callbackNumberId", parse_callback_number)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def get_user_admin_client() -> UserAdminClient:
    return UserAdminClient()

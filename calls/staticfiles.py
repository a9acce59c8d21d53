"""WhiteNoise, able to run in an async middleware chain.

WhiteNoise's middleware is sync-only, and one sync-only middleware makes Django run the whole chain in a thread
and adapt the async click views back: a thread held per click while VCC answers, and CPU spent on the hops.
This subclass serves static files as WhiteNoise does and passes everything else straight to the async chain.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.http import HttpRequest, HttpResponseBase
from whitenoise.middleware import WhiteNoiseMiddleware


class AsyncWhiteNoiseMiddleware(WhiteNoiseMiddleware):
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any] | None = None) -> None:
        super().__init__(get_response)
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        is_async = iscoroutinefunction(self)  # not in the `if`: the type guard would narrow self to a function
        if is_async:
            return self._acall(request)
        return super().__call__(request)

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        static_file = self.find_file(request.path_info) if self.autorefresh else self.files.get(request.path_info)
        if static_file is not None:
            return await sync_to_async(self.serve, thread_sensitive=False)(static_file, request)  # opens a file
        return await self.get_response(request)

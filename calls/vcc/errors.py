"""The one exception type for everything that can go wrong talking to VCC."""

from __future__ import annotations


class VCCError(Exception):
    """A failed VCC request, or a request refused before it was sent (`local`).

    `message` is VCC's own text verbatim (or a description of the transport failure) for the log;
    `user_message` is what to show a person. `retryable` says whether trying again later could help;
    `may_have_placed` says a call request may have reached VCC, so it must not be retried automatically.
    """

    def __init__(
        self,
        message: str,
        *,
        user_message: str,
        status: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
        may_have_placed: bool = False,
        local: bool = False,
        call_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.user_message = user_message
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after
        self.may_have_placed = may_have_placed
        self.local = local
        # A call VCC placed even though its reply could not be read (named by the Location header).
        self.call_id = call_id

    def __repr__(self) -> str:
        return f"VCCError({self.message!r}, status={self.status}, retryable={self.retryable})"

    @classmethod
    def invalid(cls, message: str) -> VCCError:
        """Input refused by our own checks (VCC's documented validation text); nothing was sent."""
        sentence = message.strip()
        return cls(message, user_message=f"Check the call details: {sentence.rstrip('.')}.", local=True)

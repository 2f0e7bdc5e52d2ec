"""The root of every error the node raises, and the protocol's families below it.

node/ maps each to an HTTP status and application/problem+json in one middleware.
"""

from __future__ import annotations


class NodeError(Exception):
    status = 500
    title = "Internal error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class SignatureError(NodeError):
    """An HTTP signature is missing, malformed, stale, or does not verify."""

    status = 401
    title = "Signature refused"


class MalformedActivity(NodeError):
    status = 400
    title = "Malformed activity"


class Refused(NodeError):
    """Well-formed but not allowed: blocked domain, wrong authority, private address..."""

    status = 403
    title = "Refused"


class RemoteError(NodeError):
    """A remote server failed us; `retryable` tells delivery whether to try again."""

    status = 502
    title = "Remote server error"

    def __init__(self, detail: str, remote_status: int | None = None, retryable: bool = True,
                 retry_after: float | None = None) -> None:  # fmt: skip
        super().__init__(detail)
        self.remote_status, self.retryable, self.retry_after = remote_status, retryable, retry_after


class TooLarge(RemoteError):
    """A response over the client's size limit (a caller may ask for less, e.g. a smaller page)."""

"""The node's errors: one root, families below it, one middleware maps them to HTTP."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    """One bad field: a JSON pointer into the request body and why it is refused."""

    pointer: str
    detail: str


class NodeError(Exception):
    status = 500
    title = "Internal error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(NodeError):
    status = 404
    title = "Not found"


class Gone(NodeError):
    status = 410
    title = "Gone"


class Unauthorized(NodeError):
    status = 401
    title = "Unauthorized"


class Forbidden(NodeError):
    status = 403
    title = "Forbidden"


class Conflict(NodeError):
    status = 409
    title = "Conflict"


class BadRequest(NodeError):
    status = 400
    title = "Bad request"


class NotAcceptable(NodeError):
    status = 406
    title = "Not acceptable"


class UnsupportedMediaType(NodeError):
    status = 415
    title = "Unsupported media type"


class ValidationFailed(NodeError):
    """The record was refused; every bad field is listed, nothing was written."""

    status = 422
    title = "Invalid record"

    def __init__(self, errors: Sequence[FieldError]) -> None:
        summary = "; ".join(f"{e.pointer}: {e.detail}" for e in errors[:5])
        super().__init__(f"{len(errors)} invalid field(s): {summary}")
        self.errors = tuple(errors)


class StoreBusy(NodeError):
    """The embedded RDF store is held by another process (usually `oscartes serve`)."""

    status = 503
    title = "RDF store busy"

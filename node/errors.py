"""The node's errors: the root lives in federation/errors.py; the application's families here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from federation.errors import MalformedActivity, NodeError, Refused, RemoteError, SignatureError


@dataclass(frozen=True)
class FieldError:
    """One bad field: a JSON pointer into the request body and why it is refused."""

    pointer: str
    detail: str


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


__all__ = ["MalformedActivity", "NodeError", "Refused", "RemoteError", "SignatureError"]

"""What a query can be refused or stopped for; each maps to a status and a problem document."""

from __future__ import annotations

from node.errors import BadRequest, Forbidden, NodeError


class QuerySyntaxError(BadRequest):
    title = "Malformed query"


class UpdateRefused(Forbidden):
    title = "Read-only endpoint"


class QueryRefused(BadRequest):
    title = "Query refused"


class QueryTimeout(NodeError):
    status = 503
    title = "Query took too long"


class TooManyResults(NodeError):
    status = 422
    title = "Too many results"


class QueryTooLarge(NodeError):
    """The query's process reached its memory cap and was stopped."""

    status = 422
    title = "Query needs too much memory"


class QueryFailed(NodeError):
    status = 500
    title = "Query failed"


class EndpointBusy(NodeError):
    """Every slot stayed taken while the query waited: come back after `retry_after` seconds."""

    status = 503
    title = "SPARQL endpoint busy"

    def __init__(self, detail: str, retry_after: float) -> None:
        super().__init__(detail)
        self.retry_after = retry_after

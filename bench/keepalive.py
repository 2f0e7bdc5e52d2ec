"""A keep-alive HTTP/1.1 client on one connection, for latency measured request by request.

`http.client` adds little of its own (no pool, no event loop): what is timed is the request
written, the whole body read. One client per thread; loopback only.
"""

from __future__ import annotations

import http.client
import time
from dataclasses import dataclass

from bench.common import HOST


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    ms: float


class KeepAlive:
    def __init__(self, port: int, timeout: float = 120.0) -> None:
        self.port, self.timeout = port, timeout
        self._conn = http.client.HTTPConnection(HOST, port, timeout=timeout)

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> Answer:  # fmt: skip
        """One request, timed from the first byte written to the last byte of the body read;
        a dropped connection is opened again once (outside the timing of the answer)."""
        for attempt in (1, 2):
            started = time.perf_counter()
            try:
                self._conn.request(method, path, body=body, headers=headers or {})
                response = self._conn.getresponse()
                data = response.read()
            except (ConnectionError, http.client.HTTPException):
                self._conn.close()
                self._conn = http.client.HTTPConnection(HOST, self.port, timeout=self.timeout)
                if attempt == 2:
                    raise
                continue
            ms = (time.perf_counter() - started) * 1000
            if response.getheader("Connection", "").lower() == "close":
                self._conn.close()
                self._conn = http.client.HTTPConnection(HOST, self.port, timeout=self.timeout)
            return Answer(response.status, data, ms)
        raise AssertionError("unreachable")

    def get(self, path: str, accept: str = "application/json") -> Answer:
        return self.request("GET", path, headers={"Accept": accept})

    def sparql(self, query: str, accept: str = "application/sparql-results+json") -> Answer:
        """SPARQL 1.1 Protocol, query via POST directly."""
        return self.request("POST", "/sparql", query.encode(), {"Content-Type": "application/sparql-query",
                                                                 "Accept": accept})  # fmt: skip

    def close(self) -> None:
        self._conn.close()

"""The limits around the store: query slots, the deadline, the memory cap, and shutdown.

A query waits for one of `sparql_concurrency` slots at most as long as it may run. On the
embedded store it then runs in a child process (node/sparql/isolate.py) that is killed at the
deadline: its slot and its memory come back at once, whatever Oxigraph was doing. A remote
store runs the query itself, under its own limits: the node stops waiting at the deadline
(the HTTP request is bounded by it). At shutdown every child is killed and reaped.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import pickle
import time

from node.config import Config
from node.errors import NodeError
from node.graph import EmbeddedIndex, RdfIndex, RemoteIndex
from node.sparql import isolate
from node.sparql.description import endpoint_url
from node.sparql.errors import EndpointBusy, QueryFailed, QueryTimeout, QueryTooLarge
from node.sparql.evaluate import Answer, Limits, QueryRequest, check_from, run_embedded, run_remote, timeout_detail
from node.sparql.query import Checked, check_query

log = logging.getLogger(__name__)

#: Forks of one query when its child is seen stuck on a lock held at the fork (isolate.stuck).
FORK_ATTEMPTS = 4


class ShuttingDown(NodeError):
    status = 503
    title = "Shutting down"


class Endpoint:
    """One per application: the slots, the limits and the children running queries."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.base_iri = endpoint_url(config)
        self.limits = Limits(config.sparql_timeout_seconds, config.sparql_max_results)
        self.memory_bytes = config.sparql_memory_mb * 2**20
        self.slots = asyncio.Semaphore(config.sparql_concurrency)
        self.children: dict[int, isolate.Child] = {}
        self.no_children = asyncio.Event()
        self.no_children.set()
        self.threads: set[asyncio.Future[Answer]] = set()
        self.closing = False

    async def answer(self, index: RdfIndex, request: QueryRequest) -> Answer:
        checked = check_query(request.query, self.base_iri)
        if self.closing:
            raise ShuttingDown("the node is shutting down: try again shortly")
        timeout = self.limits.timeout
        try:  # a query waits for a slot at most as long as it may run
            async with asyncio.timeout(timeout):  # not wait_for: on 3.11 it can swallow a cancel
                await self.slots.acquire()
        except TimeoutError:
            raise EndpointBusy(f"all {self.config.sparql_concurrency} query slots stayed busy for {timeout:g} s; "
                               "try again shortly", retry_after=timeout) from None  # fmt: skip
        deadline = time.monotonic() + timeout
        if isinstance(index, EmbeddedIndex) and isolate.AVAILABLE:
            try:
                return await self._in_child(index, request, checked, deadline)
            finally:
                self.slots.release()
        return await self._in_thread(index, request, checked, deadline)

    # ------------------------------------------------------------ embedded: a child per query

    async def _in_child(self, index: EmbeddedIndex, request: QueryRequest, checked: Checked,
                        deadline: float) -> Answer:  # fmt: skip
        work = functools.partial(self._evaluate, index, request, checked, deadline)
        for _ in range(FORK_ATTEMPTS):
            child = isolate.fork(work, self.memory_bytes)
            self.children[child.pid] = child
            self.no_children.clear()
            try:
                how, data = await isolate.collect(child, deadline)
            finally:
                # Killed whatever happened (a cancelled request included), then reaped off the loop:
                # the slot is given back once the child's memory is.
                isolate.kill(child)
                status = await asyncio.shield(self._reap(child))
            if how == "stuck":
                log.info("SPARQL child %d was stuck on a lock held at its fork: forked again", child.pid)
                continue
            if how == "deadline":
                raise QueryTimeout(timeout_detail(self.limits))
            return await self._outcome(data, status)
        raise QueryFailed("the query's process could not start cleanly; try again")

    def _evaluate(self, index: EmbeddedIndex, request: QueryRequest, checked: Checked,
                  deadline: float) -> Answer:  # fmt: skip
        """In the child."""
        check_from(index, request, checked, self.config.graph_iri)
        return run_embedded(index.store, request, checked, self.limits, deadline, self.base_iri)

    async def _reap(self, child: isolate.Child) -> int:
        try:
            return await asyncio.to_thread(isolate.reap, child)
        finally:
            self.children.pop(child.pid, None)
            if not self.children:
                self.no_children.set()

    async def _outcome(self, data: bytes, status: int) -> Answer:
        if not data:
            if self.closing:
                raise ShuttingDown("the node is shutting down: the query was stopped")
            log.warning("SPARQL child ended without an answer (%s)", isolate.describe(status))
            raise self._memory_error() if self.memory_bytes else QueryFailed(
                f"the query's process ended without an answer ({isolate.describe(status)})")  # fmt: skip
        kind, value = await asyncio.to_thread(pickle.loads, data)  # our own child's bytes
        if kind == "answer" and isinstance(value, Answer):
            return value
        if kind == "memory":
            raise self._memory_error()
        if isinstance(value, NodeError):
            raise value
        raise QueryFailed("the query's process sent an answer this node cannot read")

    def _memory_error(self) -> QueryTooLarge:
        return QueryTooLarge(
            f"the query needed more than the {self.config.sparql_memory_mb} MB a query may use and was "
            "stopped: narrow it (fewer graphs, a LIMIT, more selective patterns, no ORDER BY over everything), "
            "or download /dataset.nq and query it locally"
        )

    # ------------------------------------------------------------ remote store (or no fork): a thread

    async def _in_thread(self, index: RdfIndex, request: QueryRequest, checked: Checked,
                         deadline: float) -> Answer:  # fmt: skip
        work = asyncio.ensure_future(asyncio.to_thread(self._run, index, request, checked, deadline))
        self.threads.add(work)
        work.add_done_callback(self._thread_done)
        try:
            # shield: at the deadline the answer leaves; a thread cannot be stopped, so its slot
            # is given back when it ends (a remote store's request is bounded by the deadline).
            async with asyncio.timeout(max(0.0, deadline - time.monotonic()) + 0.05):
                return await asyncio.shield(work)
        except TimeoutError:
            raise QueryTimeout(timeout_detail(self.limits)) from None

    def _thread_done(self, work: asyncio.Future[Answer]) -> None:
        self.threads.discard(work)
        self.slots.release()
        if not work.cancelled():
            work.exception()  # retrieved: a late timeout or failure is not "never retrieved"

    def _run(self, index: RdfIndex, request: QueryRequest, checked: Checked, deadline: float) -> Answer:
        check_from(index, request, checked, self.config.graph_iri)
        if isinstance(index, RemoteIndex):
            return run_remote(index, request, checked, self.limits, deadline)
        if not isinstance(index, EmbeddedIndex):
            raise QueryFailed("this RDF index cannot answer SPARQL queries")
        return run_embedded(index.store, request, checked, self.limits, deadline, self.base_iri)

    # ------------------------------------------------------------ shutdown

    def stop(self) -> None:
        """No new query; every running child is killed (their requests answer 503)."""
        self.closing = True
        for child in list(self.children.values()):
            isolate.kill(child)

    async def drain(self, within: float) -> None:
        """At shutdown, before the store closes: children killed and reaped, threads awaited."""
        self.stop()
        deadline = time.monotonic() + within
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await self.no_children.wait()
        if self.threads:
            await asyncio.wait(list(self.threads), timeout=max(0.0, deadline - time.monotonic()))

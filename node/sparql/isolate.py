"""An embedded query in a child process, so that its deadline and its memory cap are real.

Oxigraph cannot cancel an evaluation and a thread cannot be stopped: a query past its deadline
would go on allocating and holding its slot for hours. So each query on the embedded store is
evaluated in a child forked from the node for it. The child sees the store exactly as the node
does at the fork (copy-on-write memory over immutable files: a consistent snapshot, as fresh as
a thread's, with nothing to reopen), evaluates, writes its answer to a pipe and exits. At the
deadline the node kills it, which gives back its memory and its slot at once; a cap on its
address space stops a query that would exhaust the machine before that.

Fork safety: only the forking thread lives on in the child, so a lock that another thread of
the node held at the fork (RocksDB's own background threads included) stays held there for good.
The child has a single thread, so a sleep on a futex can only be that: the parent looks, and
kills and forks again a child seen so (measured: about one fork in a hundred while the store is
being written, inside RocksDB's snapshot). The child touches nothing else of the node (no
database, no event loop, no logging) and leaves with os._exit, so nothing of the parent's is
flushed or closed twice; it dies with the node (PR_SET_PDEATHSIG) and runs at a lower priority
than the pages and the inbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import faulthandler
import os
import pickle
import resource
import signal
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

from node.errors import NodeError
from node.sparql.errors import QueryFailed

#: Where a stuck child can be told from a busy one (/proc); elsewhere queries run in threads.
AVAILABLE = sys.platform.startswith("linux") and hasattr(os, "fork")
#: Added to the child's niceness: under load the pages, the API and the inbox come first.
NICENESS = 10
_PR_SET_PDEATHSIG = 1
#: When the parent first looks whether a child is stuck, then how often (seconds).
_FIRST_LOOK = 0.02
_LOOK_EVERY = 0.1


@dataclass
class Child:
    pid: int
    fd: int  # the read end of the pipe the answer comes through


def fork(work: Callable[[], object], memory_bytes: int) -> Child:
    """Start `work` in a child. Its outcome, pickled,
    comes through the pipe: ("answer", value), ("error", NodeError) or ("memory", None)."""
    read_fd, write_fd = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns of threads at a fork; the module docstring says why this one is safe.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:
        _child(work, read_fd, write_fd, memory_bytes)
    os.close(write_fd)
    os.set_blocking(read_fd, False)
    return Child(pid, read_fd)


def _child(work: Callable[[], object], read_fd: int, write_fd: int, memory_bytes: int) -> NoReturn:
    code = 70
    try:
        os.close(read_fd)
        _detach(memory_bytes)
        outcome: tuple[str, object]
        try:
            outcome = ("answer", work())
        except NodeError as exc:
            exc.__traceback__ = exc.__cause__ = exc.__context__ = None
            outcome = ("error", exc)
        except MemoryError:
            outcome = ("memory", None)
        except Exception as exc:  # noqa: BLE001 - whatever it is, it leaves as a problem, not a crash
            outcome = ("error", QueryFailed(f"the query failed: {exc}"))
        data = memoryview(pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL))
        while data:
            data = data[os.write(write_fd, data) :]
        code = 0
    finally:
        os._exit(code)


def _detach(memory_bytes: int) -> None:
    """What the child needs before it evaluates: its own signals, a lower priority, its memory
    cap, silence on stderr (an allocation failure prints there), and death with the node."""
    faulthandler.disable()  # a test run's handler would print the node's stacks on an abort
    with contextlib.suppress(ValueError, OSError):
        signal.set_wakeup_fd(-1)  # the event loop's: a signal here must not wake the node
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, signal.SIG_DFL)
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    with contextlib.suppress(OSError):
        os.nice(NICENESS)
    if memory_bytes > 0:
        limit = _address_space() + memory_bytes
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    quiet = os.open(os.devnull, os.O_WRONLY)
    os.dup2(quiet, 1)
    os.dup2(quiet, 2)


def _address_space() -> int:
    """What the child inherited: the cap counts from there (the node's own mappings are shared)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


async def collect(child: Child, deadline: float) -> tuple[str, bytes]:
    """Read the child's answer until it closes the pipe, the deadline (time.monotonic) passes or
    it is seen stuck: ("done", what it wrote), ("deadline", b"") or ("stuck", b"")."""
    loop = asyncio.get_running_loop()
    chunks: list[bytes] = []
    done = loop.create_future()

    def readable() -> None:
        try:
            while True:
                chunk = os.read(child.fd, 1 << 20)
                if not chunk:
                    if not done.done():
                        done.set_result(None)
                    return
                chunks.append(chunk)
        except BlockingIOError:
            return
        except OSError as exc:
            if not done.done():
                done.set_exception(exc)

    loop.add_reader(child.fd, readable)
    try:
        look = _FIRST_LOOK
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return "deadline", b""
            try:
                async with asyncio.timeout(min(remaining, look)):
                    await asyncio.shield(done)
                return "done", b"".join(chunks)
            except TimeoutError:
                if stuck(child.pid):
                    return "stuck", b""
                look = _LOOK_EVERY
    finally:
        loop.remove_reader(child.fd)
        os.close(child.fd)
        if not done.done():
            done.cancel()


def stuck(pid: int) -> bool:
    """Whether the child waits on a lock nobody will release: it has one thread, so a sleep on a
    futex can only be a lock another thread of the node held at the fork (measured: about one
    fork in a hundred while the store flushes, inside RocksDB's snapshot). Linux only."""
    try:
        with open(f"/proc/{pid}/wchan") as wchan:
            waiting = wchan.read()
        with open(f"/proc/{pid}/stat") as stat:
            state = stat.read().rpartition(")")[2].split()[0]
        threads = len(os.listdir(f"/proc/{pid}/task"))
    except (OSError, IndexError):
        return False
    return state == "S" and "futex" in waiting and threads == 1


def kill(child: Child) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(child.pid, signal.SIGKILL)


def reap(child: Child) -> int:
    """Wait for the child's end (blocking: a thread calls it); its wait status."""
    while True:
        try:
            return os.waitpid(child.pid, 0)[1]
        except ChildProcessError:
            return 0  # someone else reaped it: its outcome came through the pipe or not at all
        except InterruptedError:
            continue


def describe(status: int) -> str:
    """A wait status in words, for the logs and the problem detail."""
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            return f"signal {signal.Signals(number).name}"
        except ValueError:
            return f"signal {number}"
    return f"exit status {os.WEXITSTATUS(status)}" if os.WIFEXITED(status) else f"status {status}"

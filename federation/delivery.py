"""Delivery policy as plain functions: when to retry, whom to send to."""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

#: Retries spread over about two days: 1 min doubling to a 12 h cap, 14 attempts.
MAX_ATTEMPTS = 14
FIRST_DELAY = 60.0
MAX_DELAY = 12 * 3600.0
#: A host failing this many times in a row is marked unavailable for a while.
HOST_FAILURES_BEFORE_PAUSE = 5


@dataclass(frozen=True)
class Recipient:
    actor: str
    inbox: str
    shared_inbox: str | None


def next_attempt(attempts: int, status: int | None, retry_after: float | None = None) -> timedelta | None:
    """None: stop (final 4xx, or attempts spent). 429/503 honour Retry-After; others back off."""
    if status is not None and 400 <= status < 500 and status not in (408, 429):
        return None
    if attempts >= MAX_ATTEMPTS:
        return None
    if status in (429, 503) and retry_after is not None:
        return timedelta(seconds=min(max(retry_after, 1.0), MAX_DELAY))
    delay = min(FIRST_DELAY * 2 ** max(attempts - 1, 0), MAX_DELAY)
    return timedelta(seconds=delay * random.uniform(0.8, 1.2))  # noqa: S311 - jitter, not secrecy


def host_pause(failures: int) -> timedelta | None:
    """How long to leave a host alone after `failures` consecutive failures."""
    if failures < HOST_FAILURES_BEFORE_PAUSE:
        return None
    return timedelta(seconds=min(FIRST_DELAY * 2 ** (failures - HOST_FAILURES_BEFORE_PAUSE), MAX_DELAY))


def inboxes(recipients: Iterable[Recipient]) -> list[str]:
    """One inbox per host when the host has a shared inbox; personal inboxes otherwise."""
    chosen: dict[str, str] = {}
    personal: list[str] = []
    for r in recipients:
        if r.shared_inbox:
            chosen.setdefault(urlsplit(r.shared_inbox).netloc, r.shared_inbox)
        else:
            personal.append(r.inbox)
    # A host's shared inbox reaches every recipient there (Mastodon's model), personal ones too.
    return sorted(set(chosen.values()) | {i for i in personal if urlsplit(i).netloc not in chosen})

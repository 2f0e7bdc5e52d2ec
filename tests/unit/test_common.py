from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from node.convert.common import canonical_double, fmt_datetime, fold, human_when, parse_datetime, slugify
from node.convert.parse import luhn_ok
from node.workers.indexer import MAX_ATTEMPTS, next_attempt


def test_datetime_round_trip_keeps_offset() -> None:
    paris = timezone(timedelta(hours=1))
    value = datetime(2025, 12, 13, 14, 0, tzinfo=paris)
    assert fmt_datetime(value) == "2025-12-13T14:00:00+01:00"
    assert parse_datetime(fmt_datetime(value)) == value
    assert fmt_datetime(datetime(2025, 1, 2, 3, 4, 5, 678, tzinfo=UTC)) == "2025-01-02T03:04:05Z"


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="offset"):
        parse_datetime("2025-12-13T14:00:00")


@pytest.mark.parametrize(("value", "lexical"), [(48.7309, "4.87309E1"), (2.2713, "2.2713E0"), (-0.5, "-5.0E-1")])
def test_canonical_double_matches_json_ld(value: float, lexical: str) -> None:
    assert canonical_double(value) == lexical


def test_fold_and_slugify() -> None:
    assert fold("Écologie À Évry") == "ecologie a evry"
    assert slugify("Repair Café de Massy !", 30) == "repair_cafe_de_massy"
    assert slugify("Une très longue association pour la transition", 30) == "une_tres_longue_association_po"
    assert slugify("???", 30) == "x"


def test_human_when_in_event_zone() -> None:
    start = datetime(2025, 12, 13, 13, 0, tzinfo=UTC)
    end = datetime(2025, 12, 13, 17, 30, tzinfo=UTC)
    assert human_when(start, end, "Europe/Paris") == "sam. 13 déc. 2025, 14h–18h30"
    two_days = human_when(start, end + timedelta(days=1), "Europe/Paris")
    assert two_days == "sam. 13 déc. 2025, 14h – dim. 14 déc. 2025, 18h30"


def test_luhn() -> None:
    assert luhn_ok("732829320")  # a real SIREN
    assert not luhn_ok("732829321")
    assert luhn_ok("35600000000048")  # La Poste: the documented exception


def test_retry_schedule_backs_off_and_stops() -> None:
    delays = [next_attempt(n) for n in range(1, 6)]
    assert all(d is not None for d in delays)
    assert delays[-1] > delays[0]  # type: ignore[operator]
    assert next_attempt(MAX_ATTEMPTS) is None
    assert next_attempt(11) <= timedelta(hours=1)  # type: ignore[operator]


def test_rate_limiter_bucket() -> None:
    from node.ratelimit import RateLimiter

    limiter = RateLimiter(per_minute=60, burst=3)
    assert [limiter.take("a", now=0.0) for _ in range(3)] == [None, None, None]
    wait = limiter.take("a", now=0.0)
    assert wait is not None and 0.9 < wait <= 1.0
    assert limiter.take("b", now=0.0) is None, "hosts have their own buckets"
    assert limiter.take("a", now=1.5) is None, "tokens come back with time"

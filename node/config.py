"""The node's configuration: one frozen value, built once, passed to create_app."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_LICENSE = "https://creativecommons.org/licenses/by-sa/4.0/"
EMBEDDED = "embedded"


class ConfigError(ValueError):
    """A setting that cannot work; the message names the setting."""


@dataclass(frozen=True)
class Config:
    data_dir: Path
    base_url: str = "http://127.0.0.1:8000"
    database_url: str = ""
    sparql_store: str = EMBEDDED
    sparql_update: str = ""
    #: /sparql: seconds a query may run, rows or triples it may return, queries run at once.
    sparql_timeout_seconds: float = 10.0
    sparql_max_results: int = 100_000
    sparql_concurrency: int = 2
    #: /sparql: megabytes of memory one query may allocate before it is stopped.
    sparql_memory_mb: int = 2048
    license: str = DEFAULT_LICENSE
    node_name: str = "Oscartes"
    max_body_bytes: int = 1_000_000
    page_size: int = 20
    #: Index work applied per worker pass; bounded so one pass never holds the loop long.
    index_batch: int = 200
    #: Outgoing fetches and deliveries may reach private and loopback addresses (tests only).
    allow_private: bool = False
    #: Signed GETs required for ActivityPub representations (Mastodon's "authorized fetch").
    authorized_fetch: bool = False
    signature_window_seconds: int = 3600
    #: Inbox POSTs accepted per remote host per minute before 429.
    inbox_rate_per_minute: int = 1200
    #: Inbox processing and delivery run in `oscartes worker`, not in `serve`.
    separate_workers: bool = False
    #: Followers/following collections list their members (their counts are always public).
    follower_lists_public: bool = True
    #: Who may follow the node's actor (and copy its directory): open, approval or allowlist.
    follow_policy: str = "open"
    #: Hosts accepted under the allowlist policy (besides the origins this node follows).
    follow_allowlist: tuple[str, ...] = ()
    #: Seconds between two reconciliations with a followed node (catching missed activities).
    reconcile_seconds: int = 900
    #: Records per page of the change stream (/dataset/changes).
    changes_page_size: int = 200
    #: Thematic and local Group actors that boost matching records (docs/groups.md); opt-in.
    group_actors: bool = False
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'oscartes.sqlite3'}"

    @property
    def store_path(self) -> Path:
        return self.data_dir / "rdf"

    @property
    def graph_iri(self) -> str:
        """The named graph holding this node's own records (its dataset IRI)."""
        return f"{self.base_url}/dataset"

    @property
    def context_url(self) -> str:
        return f"{self.base_url}/ns/context.jsonld"

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).netloc

    def with_(self, **changes: object) -> Config:
        return replace(self, **changes)  # type: ignore[arg-type]


def normalise_base_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"base URL must be an absolute http(s) URL, got {url!r}")
    if parts.query or parts.fragment:
        raise ConfigError(f"base URL must not have a query or fragment: {url!r}")
    return url.rstrip("/")


def load_config(
    data_dir: str | Path | None = None,
    *,
    base_url: str | None = None,
    database_url: str | None = None,
    sparql_store: str | None = None,
    allow_private: bool = False,
    env: Mapping[str, str] | None = None,
) -> Config:
    """Options win over OSCARTES_* variables, which win over data_dir/node.toml written by init."""
    env = os.environ if env is None else env
    raw_dir = data_dir or env.get("OSCARTES_DATA")
    if not raw_dir:
        raise ConfigError("no data folder: give --data DIR or set OSCARTES_DATA")
    path = Path(raw_dir).expanduser().resolve()
    saved = read_node_file(path)
    base = base_url or env.get("OSCARTES_BASE_URL") or saved.get("base_url") or Config.base_url
    try:
        max_body = int(env.get("OSCARTES_MAX_BODY_BYTES", "1000000"))
    except ValueError as exc:
        raise ConfigError("OSCARTES_MAX_BODY_BYTES must be an integer") from exc
    store = sparql_store or env.get("OSCARTES_SPARQL_STORE") or saved.get("sparql_store", EMBEDDED)
    if store != EMBEDDED and urlsplit(store).scheme not in ("http", "https"):
        raise ConfigError(f"the SPARQL store is 'embedded' or an http(s) query URL, not {store!r}")
    flags = {name: env.get(var, "").lower() in ("1", "true", "yes", "on")
             for name, var in (("allow_private", "OSCARTES_ALLOW_PRIVATE_ADDRESSES"),
                               ("authorized_fetch", "OSCARTES_AUTHORIZED_FETCH"),
                               ("hide_follower_lists", "OSCARTES_HIDE_FOLLOWER_LISTS"),
                               ("separate_workers", "OSCARTES_SEPARATE_WORKERS"))}  # fmt: skip
    try:
        inbox_rate = int(env.get("OSCARTES_INBOX_RATE_PER_MINUTE", "1200"))
    except ValueError as exc:
        raise ConfigError("OSCARTES_INBOX_RATE_PER_MINUTE must be an integer") from exc
    policy = (env.get("OSCARTES_FOLLOW_POLICY") or saved.get("follow_policy") or "open").lower()
    if policy not in FOLLOW_POLICIES:
        raise ConfigError(f"OSCARTES_FOLLOW_POLICY is one of {', '.join(FOLLOW_POLICIES)}, not {policy!r}")
    allowlist = env.get("OSCARTES_FOLLOW_ALLOWLIST") or saved.get("follow_allowlist") or ""
    try:
        reconcile = int(env.get("OSCARTES_RECONCILE_SECONDS", "900"))
        page_size = int(env.get("OSCARTES_CHANGES_PAGE_SIZE", "200"))
    except ValueError as exc:
        raise ConfigError("OSCARTES_RECONCILE_SECONDS and OSCARTES_CHANGES_PAGE_SIZE are integers") from exc
    if not 1 <= page_size <= 500:
        raise ConfigError("OSCARTES_CHANGES_PAGE_SIZE is between 1 and 500")
    sparql_timeout, sparql_max, sparql_slots, sparql_memory = _sparql_limits(env)
    return Config(
        data_dir=path,
        follow_policy=policy,
        follow_allowlist=tuple(h.strip().lower() for h in allowlist.split(",") if h.strip()),
        reconcile_seconds=max(1, reconcile),
        changes_page_size=page_size,
        inbox_rate_per_minute=inbox_rate,
        allow_private=allow_private or flags["allow_private"],
        authorized_fetch=flags["authorized_fetch"],
        follower_lists_public=not flags["hide_follower_lists"],
        separate_workers=flags["separate_workers"],
        base_url=normalise_base_url(base),
        database_url=database_url or env.get("OSCARTES_DATABASE_URL") or saved.get("database_url", ""),
        sparql_store=store,
        sparql_update=env.get("OSCARTES_SPARQL_UPDATE", ""),
        sparql_timeout_seconds=sparql_timeout,
        sparql_max_results=sparql_max,
        sparql_concurrency=sparql_slots,
        sparql_memory_mb=sparql_memory,
        license=env.get("OSCARTES_LICENSE") or saved.get("license", DEFAULT_LICENSE),
        node_name=env.get("OSCARTES_NODE_NAME") or saved.get("node_name", "Oscartes"),
        max_body_bytes=max_body,
        group_actors=_is_on(env.get("OSCARTES_GROUP_ACTORS") or saved.get("group_actors", "")),
    )


NODE_FILE = "node.toml"


def _sparql_limits(env: Mapping[str, str]) -> tuple[float, int, int, int]:
    """The /sparql limits (docs/sparql.md): each must be positive."""
    names = ("OSCARTES_SPARQL_TIMEOUT", "OSCARTES_SPARQL_MAX_RESULTS", "OSCARTES_SPARQL_CONCURRENCY",
             "OSCARTES_SPARQL_MEMORY_MB")  # fmt: skip
    try:
        timeout = float(env.get(names[0], "10"))
        max_results = int(env.get(names[1], "100000"))
        concurrency = int(env.get(names[2], "2"))
        memory = int(env.get(names[3], "2048"))
    except ValueError as exc:
        raise ConfigError(f"{names[0]} is a number of seconds, {', '.join(names[1:])} are integers") from exc
    if timeout <= 0 or max_results < 1 or concurrency < 1 or memory < 1:
        raise ConfigError(f"{', '.join(names)} must be positive")
    return timeout, max_results, concurrency, memory


def _is_on(value: str) -> bool:
    """An on/off setting, from the environment or node.toml (`true` there reads as "True")."""
    return value.strip().lower() in ("1", "true", "yes", "on")
FOLLOW_POLICIES = ("open", "approval", "allowlist")


def read_node_file(data_dir: Path) -> dict[str, str]:
    import tomllib

    file = data_dir / NODE_FILE
    if not file.exists():
        return {}
    with file.open("rb") as fh:
        values = tomllib.load(fh)
    return {k: str(v) for k, v in values.items()}


def write_node_file(config: Config) -> None:
    """init records the choices so that later commands need only --data."""
    lines = [
        "# Written by `oscartes init`; OSCARTES_* variables and options override it.",
        f"base_url = {_toml_str(config.base_url)}",
        f"node_name = {_toml_str(config.node_name)}",
        f"license = {_toml_str(config.license)}",
    ]
    if config.database_url:
        lines.append(f"database_url = {_toml_str(config.database_url)}")
    if config.sparql_store != EMBEDDED:
        lines.append(f"sparql_store = {_toml_str(config.sparql_store)}")
    (config.data_dir / NODE_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")


def _toml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

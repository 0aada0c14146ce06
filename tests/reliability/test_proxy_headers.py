"""Issue 17, item 4: the rate limiter trusted ``X-Forwarded-For`` from any loopback client.

``credit serve`` ran uvicorn with its defaults: proxy headers on, trusted from 127.0.0.1. A
client on the same machine (or behind a proxy that passes the header on) set
``X-Forwarded-For`` per request: 200 bad keys, each "from" another address, all got 401 and
never 429, and 20 bad keys "from" someone else's address locked that address out.

Now forwarded headers are honoured only from the addresses in
``TRADECREDIT_TRUSTED_PROXIES`` (empty by default). Both cases run against a real
``credit serve`` process on a loopback port.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from credit.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
BAD = "B" * 43


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(data_dir: Path, **env: str) -> tuple[subprocess.Popen[bytes], str, Path]:
    port = _free_port()
    data_dir.mkdir(parents=True)
    full = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("TRADECREDIT_") and k != "FORWARDED_ALLOW_IPS"
    }
    full.update(
        TRADECREDIT_DATA_DIR=str(data_dir),
        TRADECREDIT_API_RELOAD_POLL_SECONDS="0",
        PYTHONPATH=str(ROOT),
        **env,
    )
    log = data_dir / "serve.log"
    proc = subprocess.Popen(  # noqa: S603 - our own command line
        [sys.executable, "-m", "credit.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=full,
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )
    return proc, f"http://127.0.0.1:{port}", log


def _wait(proc: subprocess.Popen[bytes], base: str, log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"credit serve exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"credit serve did not start: {log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Two real services, started side by side: one with the default settings, one behind a
    trusted proxy (127.0.0.1, the test itself)."""
    root = tmp_path_factory.mktemp("proxy")
    started = {
        "default": _start(root / "default"),
        "proxied": _start(root / "proxied", TRADECREDIT_TRUSTED_PROXIES="127.0.0.1, 10.0.0.0/8"),
    }
    try:
        for proc, base, log in started.values():
            _wait(proc, base, log)
        yield {name: base for name, (_, base, _) in started.items()}
    finally:
        for proc, _, _ in started.values():
            proc.terminate()
        for proc, _, _ in started.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def _bad_key(i: int) -> dict[str, str]:
    return {"X-API-Key": f"tck_{i:012x}_{BAD}"}


def _spoofed(i: int) -> str:
    return f"10.{i // 65536}.{i // 256 % 256}.{i % 256 + 1}"


def test_forwarded_for_is_ignored_unless_a_proxy_is_configured(servers: dict[str, str]) -> None:
    with httpx.Client(base_url=servers["default"], timeout=10) as c:
        t0 = time.monotonic()
        codes = [
            c.get("/v1/model", headers={**_bad_key(i), "X-Forwarded-For": _spoofed(i)}).status_code
            for i in range(200)
        ]
        elapsed = time.monotonic() - t0
        assert set(codes) == {401, 429}, "a varying X-Forwarded-For dodged the failure limit"
        # the burst of 20, then one more failure per second at most
        assert codes[:20] == [401] * 20 and codes.count(401) <= 20 + elapsed + 1
        # Nobody can lock out another address by naming it: the header means nothing here.
        victim = {"X-Forwarded-For": "203.0.113.7"}
        assert c.get("/v1/model", headers={**_bad_key(1), **victim}).status_code == 429


def test_forwarded_for_is_honoured_from_a_trusted_proxy(servers: dict[str, str]) -> None:
    with httpx.Client(base_url=servers["proxied"], timeout=10) as c:
        codes = [
            c.get("/v1/model", headers={**_bad_key(i), "X-Forwarded-For": _spoofed(i)}).status_code
            for i in range(60)
        ]
        assert set(codes) == {401}  # one failure per client address, as the proxy says
        one = {"X-Forwarded-For": "203.0.113.7"}
        codes = [c.get("/v1/model", headers={**_bad_key(i), **one}).status_code for i in range(25)]
        assert codes[:20] == [401] * 20 and set(codes[20:]) == {429}
        other = {"X-Forwarded-For": "198.51.100.8"}
        assert c.get("/v1/model", headers={**_bad_key(0), **other}).status_code == 401
        # The proxy's own address list is trusted too (10.0.0.0/8): the client is the
        # rightmost address not in it, so the held-back client cannot hide behind a hop.
        hop = {"X-Forwarded-For": "203.0.113.7, 10.1.2.3"}
        assert c.get("/v1/model", headers={**_bad_key(0), **hop}).status_code == 429


def test_trusted_proxies_must_be_addresses_or_networks() -> None:
    assert Settings().trusted_proxy_list == []
    s = Settings(trusted_proxies=" 127.0.0.1 , 10.0.0.0/8,::1 ")
    assert s.trusted_proxy_list == ["127.0.0.1", "10.0.0.0/8", "::1"]
    for bad in ("*", "proxy.example", "10.0.0.0/33"):
        with pytest.raises(ValueError, match="trusted_proxies"):
            Settings(trusted_proxies=bad)

"""`qeaims bench api`: the API's latency under an open-loop load, on this machine only.

Open loop: request i is due at `start + i / rate` whatever happened to the ones before it, and its
latency is counted from when it was *due*, not from when it was sent: a closed loop (send, wait,
send) slows down with the server and hides its queueing ("coordinated omission"). Half the requests
list the newest events (`GET /api/v1/events?limit=100`), half read one event with its evidence
(`GET /api/v1/events/{block}/{log_index}`), drawn from events sampled before the run.

Bounded on purpose: loopback only (it is a load generator: it must not be pointed at someone
else's server), at most `MAX_RATE` requests per second for `MAX_SECONDS`, and at most `MAX_IN_FLIGHT`
requests outstanding; a request due while that many wait is counted as a `client-backlog` error,
not queued without end.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from core.errors import ConfigError, QeaimsError

__all__ = ["ENDPOINTS", "MAX_RATE", "MAX_SECONDS", "ApiBenchOptions", "ApiBenchResult", "EndpointFigures",
           "check_options", "check_url", "percentile", "result_dict", "run_api_bench"]

MAX_RATE = 2000.0
MAX_SECONDS = 300.0
MAX_IN_FLIGHT = 1000
SAMPLE_PAGES = 4  # pages of 500 events sampled for the one-event requests
ENDPOINTS = ("events?limit=100", "events/{block}/{log_index}")


def check_url(url: str) -> str:
    """The API's base URL without a trailing slash, if it is http(s) on loopback; else one error line."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"--url {url!r} is not an http(s) URL such as http://127.0.0.1:8080")
    host = parts.hostname
    loopback = host == "localhost"
    if not loopback:
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
    if not loopback:
        raise ConfigError(f"--url {url}: bench api loads only a server on this machine (127.0.0.1, ::1, localhost), "
                          f"not {host}")
    if parts.query or parts.fragment:
        raise ConfigError(f"--url {url}: give the server's base URL, without a query")
    try:
        parts.port  # noqa: B018 - raises on a port out of range
    except ValueError:
        raise ConfigError(f"--url {url}: the port is not a number from 1 to 65535") from None
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


@dataclass(frozen=True)
class ApiBenchOptions:
    url: str
    token: str
    rate: float = 200.0  # requests per second, both endpoints together
    seconds: float = 30.0
    timeout_s: float = 10.0
    seed: int = 19


def check_options(options: ApiBenchOptions) -> ApiBenchOptions:
    """The options with a checked URL, or one error line (the command's own limits say the same)."""
    if not 1.0 <= options.rate <= MAX_RATE:
        raise ConfigError(f"--rate {options.rate:g}: choose 1 to {MAX_RATE:g} requests per second")
    if not 1.0 <= options.seconds <= MAX_SECONDS:
        raise ConfigError(f"--seconds {options.seconds:g}: choose 1 to {MAX_SECONDS:g}")
    if not options.token.strip():
        raise ConfigError("no token: pass --token, set QEAIMS_API_TOKEN, or start the city with `qeaims up` "
                          "(it writes development tokens)")
    return ApiBenchOptions(url=check_url(options.url), token=options.token.strip(), rate=options.rate,
                           seconds=options.seconds, timeout_s=options.timeout_s, seed=options.seed)


@dataclass
class EndpointFigures:
    endpoint: str
    sent: int = 0
    ok: int = 0
    errors: Counter[str] = field(default_factory=Counter)  # HTTP status or exception name → count
    latencies_s: list[float] = field(default_factory=list)  # of the successful ones, from when each was due

    @property
    def answered(self) -> int:
        """Requests the server answered or failed (not those the generator dropped as its own backlog)."""
        return self.ok + sum(n for what, n in self.errors.items() if what != "client-backlog")

    def quantile_ms(self, q: float) -> float | None:
        value = percentile(self.latencies_s, q)
        return None if value is None else value * 1000.0


@dataclass
class ApiBenchResult:
    url: str
    target_rate: float
    seconds: float  # from the first due time to the last answer
    sampled_events: int
    max_dispatch_lag_s: float  # how late the generator itself sent a request (it, not the server, was slow)
    endpoints: dict[str, EndpointFigures]

    @property
    def achieved_rate(self) -> float:
        return sum(f.answered for f in self.endpoints.values()) / self.seconds if self.seconds > 0 else 0.0


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of `values`, None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def _fail(response: httpx.Response, what: str) -> QeaimsError:
    try:
        detail = str(response.json().get("error", ""))
    except ValueError:
        detail = ""
    return QeaimsError(f"{what}: HTTP {response.status_code}{' ' + detail if detail else ''}")


def sample_events(client: httpx.Client, base: str) -> list[tuple[int, int]]:
    """(block, log_index) of up to SAMPLE_PAGES × 500 of the newest events."""
    keys: list[tuple[int, int]] = []
    cursor: str | None = None
    for _ in range(SAMPLE_PAGES):
        params: dict[str, str | int] = {"limit": 500}
        if cursor is not None:
            params["cursor"] = cursor
        response = client.get(f"{base}/api/v1/events", params=params)
        if response.status_code != 200:
            raise _fail(response, "listing events to sample failed")
        page = response.json()
        keys += [(int(item["block"]), int(item["log_index"])) for item in page["items"]]
        cursor = page.get("next_cursor")
        if cursor is None:
            break
    return keys


def _preflight(options: ApiBenchOptions) -> list[tuple[int, int]]:
    """The server answers, knows the token, and has events to read; their keys."""
    headers = {"Authorization": f"Bearer {options.token}"}
    try:
        with httpx.Client(headers=headers, timeout=options.timeout_s * 3) as client:
            who = client.get(f"{options.url}/api/v1/whoami")
            if who.status_code == 401:
                raise _fail(who, f"the API at {options.url} refused the token")
            if who.status_code != 200:
                raise _fail(who, f"{options.url}/api/v1/whoami failed")
            keys = sample_events(client, options.url)
    except httpx.TransportError as exc:
        raise QeaimsError(f"no API answers at {options.url} ({type(exc).__name__}): start one with `qeaims up` or "
                          "`qeaims serve`") from None
    if not keys:
        raise QeaimsError(f"the API at {options.url} lists no events yet: let the city run (or run a scenario) first")
    return keys


async def _load(options: ApiBenchOptions, keys: list[tuple[int, int]],
                progress: Callable[[float, int], None] | None) -> ApiBenchResult:
    figures = {name: EndpointFigures(name) for name in ENDPOINTS}
    total = int(options.rate * options.seconds)
    rng = random.Random(options.seed)
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    in_flight = 0
    max_lag = 0.0
    last_done = 0.0

    async def one(client: httpx.AsyncClient, name: str, path: str, due: float) -> None:
        nonlocal in_flight, last_done
        try:
            response = await client.get(path)
            await response.aread()
        except httpx.HTTPError as exc:
            figures[name].errors[type(exc).__name__] += 1
        else:
            if response.status_code == 200:
                figures[name].ok += 1
                figures[name].latencies_s.append(time.perf_counter() - due)
            else:
                figures[name].errors[f"HTTP {response.status_code}"] += 1
        finally:
            in_flight -= 1
            last_done = max(last_done, time.perf_counter())

    async with httpx.AsyncClient(base_url=f"{options.url}/api/v1/", limits=limits, timeout=options.timeout_s,
                                 headers={"Authorization": f"Bearer {options.token}"}) as client:
        tasks: set[asyncio.Task[None]] = set()
        start = time.perf_counter() + 0.05
        for i in range(total):
            due = start + i / options.rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            max_lag = max(max_lag, time.perf_counter() - due)
            name = ENDPOINTS[i % 2]
            block, log_index = keys[rng.randrange(len(keys))]
            path = "events?limit=100" if i % 2 == 0 else f"events/{block}/{log_index}"
            figures[name].sent += 1
            if in_flight >= MAX_IN_FLIGHT:
                figures[name].errors["client-backlog"] += 1
                continue
            in_flight += 1
            task = asyncio.create_task(one(client, name, path, due))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            if progress is not None and i % max(1, int(options.rate)) == 0:
                progress(time.perf_counter() - start, i)
        if tasks:
            await asyncio.gather(*tasks)
    elapsed = (last_done or time.perf_counter()) - start
    return ApiBenchResult(url=options.url, target_rate=options.rate, seconds=elapsed, sampled_events=len(keys),
                          max_dispatch_lag_s=max_lag, endpoints=figures)


def run_api_bench(options: ApiBenchOptions,
                  progress: Callable[[float, int], None] | None = None) -> ApiBenchResult:
    """Check the options and the server, then load it for `options.seconds` at `options.rate`."""
    options = check_options(options)
    keys = _preflight(options)
    return asyncio.run(_load(options, keys, progress))


def result_dict(result: ApiBenchResult) -> dict[str, Any]:
    def rounded(value: float | None) -> float | None:
        return None if value is None else round(value, 2)

    return {
        "url": result.url,
        "target_rate": result.target_rate,
        "achieved_rate": round(result.achieved_rate, 1),
        "seconds": round(result.seconds, 2),
        "sampled_events": result.sampled_events,
        "max_dispatch_lag_ms": round(result.max_dispatch_lag_s * 1000.0, 1),
        "endpoints": {
            name: {"sent": f.sent, "ok": f.ok, "errors": dict(f.errors),
                   "rate": round(f.answered / result.seconds, 1) if result.seconds > 0 else 0.0,
                   "p50_ms": rounded(f.quantile_ms(50)), "p95_ms": rounded(f.quantile_ms(95)),
                   "p99_ms": rounded(f.quantile_ms(99))}
            for name, f in result.endpoints.items()},
    }

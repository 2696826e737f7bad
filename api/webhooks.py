"""Alerts and notices pushed to operators' own endpoints: one webhook URL per registration, one sector each.

A hook of sector S receives S's alerts and the crisis notices for S (`api.live.messages.for_sector`):
those about S, whatever their audience, and those the control room addressed to S as an audience, so a
hospital's or a bank's operator hears the notice another sector's operator posts for `healthcare` or
`banking`. Not every `public` notice: those are for the public pages, and a provider's hook would
otherwise carry every sector's news. A delivery's body names its topic and carries the message under
it (`"alert"` or `"notice"`).

An operator registers a URL for its sector's alerts (`POST /webhooks`); the server answers with a
secret, once. Every delivery is a JSON POST whose body is signed with HMAC-SHA256 under that secret,
in `X-QEAIMS-Signature: sha256=<hex>`, so the receiver can tell the API's deliveries from anyone
else's; the body carries a delivery id and the alert's cursor, so a receiver can drop a replay.

Hooks live in `<home>/api/webhooks.json`, mode 0600: the secrets must be readable to sign with, so the
file is as private as the tokens file. Deliveries never hold the chain follower up: it offers each
alert to a bounded queue (`QUEUE_SIZE`; when full, the alert is dropped for webhooks and counted, and
the stream and the index still have it) and one thread delivers, 3 tries per hook, a 2 s timeout each,
0.5 s then 1 s apart. A URL may be any http(s) host, the loopback included: operators are trusted to
name their own receivers, and a test's receiver is local.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import queue
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from prometheus_client.metrics_core import CounterMetricFamily, Metric
from pydantic import BaseModel, Field, ValidationError

from api.live.messages import Message, for_sector
from core.errors import ConfigError

__all__ = ["MAX_PER_SECTOR", "QUEUE_SIZE", "SIGNATURE_HEADER", "DeliveryCollector", "Dispatcher", "Hook", "HookStore", "check_url", "sign"]

log = logging.getLogger("qeaims.api.webhooks")

HOOKS_FILE = "webhooks.json"
SIGNATURE_HEADER = "X-QEAIMS-Signature"
QUEUE_SIZE = 1000
MAX_PER_SECTOR = 20
TRIES = 3
TIMEOUT_S = 2.0
BACKOFF_S = (0.5, 1.0)
PUSHED = frozenset({"alert", "notice"})


class Hook(BaseModel):
    """One registration as stored (the secret included; never shown again after registration)."""

    id: str = Field(pattern=r"^wh_[0-9a-f]{16}$")
    sector: str
    url: str
    secret: str
    label: str  # the label of the token that registered it
    created: str


def check_url(url: str) -> str:
    """The URL if it is an absolute http(s) URL with a host and no credentials; ValueError otherwise."""
    if len(url) > 2048:
        raise ValueError("a webhook URL is at most 2048 characters")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a bad port
    except ValueError:
        raise ValueError("not a valid URL") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError("a webhook URL must start with http:// or https://")
    if not parts.hostname:
        raise ValueError("a webhook URL must name a host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("a webhook URL must not carry credentials; the signature authenticates the API")
    if parts.fragment:
        raise ValueError("a webhook URL has no #fragment")
    del port
    return url


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class HookStore:
    """The hooks file, read on every use (small), written atomically with mode 0600."""

    def __init__(self, api_dir: Path) -> None:
        self.path = api_dir / HOOKS_FILE
        self._lock = threading.Lock()

    def hooks(self) -> list[Hook]:
        if not self.path.exists():
            return []
        try:
            return [Hook.model_validate(h) for h in json.loads(self.path.read_text())["hooks"]]
        except (OSError, ValueError, KeyError, TypeError, ValidationError) as exc:
            raise ConfigError(f"{self.path} is damaged ({type(exc).__name__}); remove it and register the "
                              "webhooks again") from None

    def add(self, sector: str, url: str, label: str) -> Hook:
        with self._lock:
            hooks = self.hooks()
            if sum(1 for h in hooks if h.sector == sector) >= MAX_PER_SECTOR:
                raise ConfigError(f"{sector} already has {MAX_PER_SECTOR} webhooks; delete one first")
            hook = Hook(id="wh_" + secrets.token_hex(8), sector=sector, url=check_url(url),
                        secret=secrets.token_urlsafe(32), label=label,
                        created=datetime.now(UTC).isoformat(timespec="seconds"))
            self._write([*hooks, hook])
            return hook

    def remove(self, hook_id: str) -> Hook | None:
        with self._lock:
            hooks = self.hooks()
            gone = next((h for h in hooks if h.id == hook_id), None)
            if gone is not None:
                self._write([h for h in hooks if h.id != hook_id])
            return gone

    def _write(self, hooks: list[Hook]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump({"hooks": [h.model_dump() for h in hooks]}, out, indent=1)
        os.replace(tmp, self.path)


@dataclass
class DeliveryStats:
    delivered: int = 0
    failed: int = 0  # gave up after TRIES
    dropped: int = 0  # the queue was full


class Dispatcher:
    """Takes alerts and notices from the hub (on the follower's thread, never blocking) and delivers them on
    its own."""

    def __init__(self, store: HookStore, *, queue_size: int = QUEUE_SIZE, timeout_s: float = TIMEOUT_S,
                 backoff_s: tuple[float, ...] = BACKOFF_S) -> None:
        self.store = store
        self.timeout_s = timeout_s
        self.backoff_s = backoff_s
        self.stats = DeliveryStats()
        self._queue: queue.Queue[Message | None] = queue.Queue(queue_size)
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def offer(self, message: Message) -> None:
        """A hub sink: queue an alert or a notice for delivery (dropped, and counted, when the queue is full)."""
        if message.topic not in PUSHED:
            return
        self._ensure_started()
        try:
            self._queue.put_nowait(message)
        except queue.Full:
            self.stats.dropped += 1
            if self.stats.dropped == 1 or self.stats.dropped % 1000 == 0:
                log.warning(json.dumps({"event": "webhook-queue-full", "dropped": self.stats.dropped}))

    def _ensure_started(self) -> None:
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="qeaims-webhooks", daemon=True)
                self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        with self._start_lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            try:
                self._queue.put(None, timeout=timeout_s)
            except queue.Full:
                pass
            thread.join(timeout_s)

    def _run(self) -> None:
        with httpx.Client(timeout=self.timeout_s, follow_redirects=False) as http:
            while True:
                message = self._queue.get()
                if message is None:
                    return
                try:
                    hooks = [h for h in self.store.hooks() if for_sector(message, h.sector)]
                except ConfigError as exc:
                    log.warning(json.dumps({"event": "webhook-store-unreadable", "error": str(exc)}))
                    continue
                for hook in hooks:
                    self._deliver(http, hook, message)

    def _deliver(self, http: httpx.Client, hook: Hook, message: Message) -> None:
        body = json.dumps(_body(hook, message), separators=(",", ":"), sort_keys=True).encode()
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(hook.secret, body),
                   "X-QEAIMS-Hook": hook.id, "User-Agent": "qeaims-webhooks/1"}
        error = ""
        for attempt in range(TRIES):
            try:
                response = http.post(hook.url, content=body, headers=headers)
                if 200 <= response.status_code < 300:
                    self.stats.delivered += 1
                    return
                error = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                error = type(exc).__name__
            if attempt < TRIES - 1:
                time.sleep(self.backoff_s[min(attempt, len(self.backoff_s) - 1)])
        self.stats.failed += 1
        log.warning(json.dumps({"event": "webhook-failed", "hook": hook.id, "sector": hook.sector,
                                "cursor": message.cursor, "tries": TRIES, "error": error}))


class DeliveryCollector:
    """`qeaims_webhook_deliveries_total{result}`: delivered, failed (after every try), dropped (queue full)."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily("qeaims_webhook_deliveries", "Webhook deliveries by result", labels=["result"])
        stats = self.dispatcher.stats
        for result, count in (("delivered", stats.delivered), ("failed", stats.failed), ("dropped", stats.dropped)):
            family.add_metric([result], count)
        yield family


def _body(hook: Hook, message: Message) -> dict[str, Any]:
    return {"delivery": "dl_" + secrets.token_hex(8), "hook": hook.id, "topic": message.topic,
            "cursor": message.cursor, "sent_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            message.topic: message.data}

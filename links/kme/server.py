"""The KME as a real HTTPS server (uvicorn), which knows each caller by its TLS client certificate.

uvicorn checks the client certificate against the development CA (``CERT_REQUIRED``: no
certificate, or one of another CA, and the TLS handshake fails before any HTTP), but it does not
hand the certificate to the application. `_CertifiedH11` is uvicorn's own HTTP/1.1 protocol that,
when a connection is made, reads the peer certificate's common name and puts it into the
connection's ASGI state (``request.state.sae_id``), which is where the app looks for its caller.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
import threading
import time
from pathlib import Path
from typing import Self

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from core.errors import ConfigError
from core.logs import log_line
from links.kme.app import KmeState, create_app
from links.kme.store import KeyStore
from links.kme.supply import KeySupply
from links.pki import DevPki, sae_of_certificate
from links.plan import LinkPlan

__all__ = ["KmeServer", "serve_forever"]


class _CertifiedH11(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, one instance per connection, that knows the connection's SAE.

    `app_state` is copied into every request's ASGI scope as ``scope["state"]`` (uvicorn
    h11_impl), so a per-connection copy with the certificate's common name reaches the app as
    ``request.state.sae_id``. The name comes from a certificate the TLS layer has already verified
    against the CA (``CERT_REQUIRED``); a connection without one never gets here."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        raw = transport.get_extra_info("socket")
        if raw is not None:  # answers go out at once: with Nagle and delayed ACKs each request waited 40 ms
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        ssl_object = transport.get_extra_info("ssl_object")
        peer = ssl_object.getpeercert() if ssl_object is not None else None
        self.app_state = {**self.app_state, "sae_id": sae_of_certificate(peer)}


class KmeServer:
    """The KME in a thread of this process (tests, benchmarks) or in the foreground (`qeaims kme`)."""

    def __init__(self, plan: LinkPlan, pki: DevPki, *, host: str = "127.0.0.1", port: int = 8443,
                 state_path: Path | None = None, refill: bool = True, seed: int | None = None) -> None:
        pki.ensure_all(plan)
        self.plan, self.pki, self.host, self.port = plan, pki, host, port
        self.store = KeyStore([link.link_id for link in plan.links], state_path=state_path)
        self.supply = KeySupply(plan, self.store, seed=seed)
        self.refill = refill
        cert, key = pki.server_paths()
        self.config = uvicorn.Config(create_app(KmeState(plan, self.store, self.supply)), host=host, port=port,
                                     ssl_certfile=str(cert), ssl_keyfile=str(key), ssl_ca_certs=str(pki.ca_path),
                                     ssl_cert_reqs=ssl.CERT_REQUIRED, http=_CertifiedH11, lifespan="off",
                                     log_level="warning", access_log=False,
                                     # an idle TLS keep-alive connection closes only once its client answers
                                     # the close_notify, which an idle client never reads: without a bound,
                                     # every stop waited out the 10 s join below; key requests take
                                     # milliseconds, so a second is grace enough for one in flight
                                     timeout_graceful_shutdown=1)
        self.server = uvicorn.Server(self.config)
        self._thread: threading.Thread | None = None
        self._failure: list[BaseException] = []

    @property
    def alive(self) -> bool:
        """uvicorn is still serving (it stops by itself only on a failure)."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    def _serve(self, sock: socket.socket) -> None:
        try:
            self.server.run(sockets=[sock])
        except BaseException as exc:  # noqa: BLE001 - reported by start()
            self._failure.append(exc)
        finally:
            sock.close()

    def _bind(self) -> socket.socket:
        """The listening socket, bound here rather than by uvicorn: a port in use is then one plain
        error (uvicorn would log its own and exit the thread)."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: restart over TIME_WAIT
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise ConfigError(f"the KME cannot listen on {self.host}:{self.port}: {exc.strerror or exc}"
                              + (" (is another KME running? choose another --port)"
                                 if exc.errno == errno.EADDRINUSE else "")) from None
        sock.set_inheritable(True)
        return sock

    def start(self, timeout_s: float = 15.0) -> Self:
        sock = self._bind()
        if self.refill:
            self.supply.start()
        self._thread = threading.Thread(target=self._serve, args=(sock,), name="kme-http", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if self._failure or not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                failure = self._failure[0] if self._failure else None
                why = (f": {failure}" if failure is not None and not isinstance(failure, SystemExit)
                       else " (its log says why)")
                raise ConfigError(f"the KME did not start on {self.host}:{self.port}{why}")
            time.sleep(0.02)
        log_line("qeaims.kme", "kme-started", url=self.url, links=len(self.plan.links))
        return self

    def stop(self) -> None:
        """Stop answering, then stop the QKD pairs; the reserved keys are already on disk."""
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.supply.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def serve_forever(plan: LinkPlan, pki: DevPki, *, host: str = "127.0.0.1", port: int = 8443,
                  state_path: Path | None = None, stop: threading.Event) -> None:
    """Serve until `stop` is set (the command sets it on SIGTERM/SIGINT); the server runs in its own
    thread so that the signal handlers stay the caller's, not uvicorn's."""
    with KmeServer(plan, pki, host=host, port=port, state_path=state_path) as server:
        while not stop.wait(0.5):
            if not server.alive:
                raise ConfigError(f"the KME at {server.url} stopped by itself (its log says why)")
        log_line("qeaims.kme", "kme-stopped", url=server.url)

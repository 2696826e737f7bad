"""`qeaims serve`: the audit and operations API and the dashboard, and `qeaims serve token ...` for its tokens.

The server binds loopback by default. It speaks plain HTTP, and what crosses it is bearer tokens and,
at a governor's confirmation step, the passphrase that unlocks that governor's keystore: on any other
interface both would travel in clear, so a public bind needs `--public-bind` (behind a TLS proxy).
The listening socket is bound here, before uvicorn starts, so a port in use is one `error:` line and
not uvicorn's log; the `api-started` line is logged once the server accepts connections (what
`qeaims up`'s supervisor waits for: `Component.ready`).
"""

from __future__ import annotations

import ipaddress
import socket
from types import FrameType
from typing import TYPE_CHECKING, Annotated, cast

import typer
from rich.table import Table

from core.config import Settings
from core.errors import ConfigError
from core.logs import log_line, setup_logging
from qeaims.commands._common import check_sector, console, print_json, settings_of

if TYPE_CHECKING:  # the API (FastAPI, pydantic models) is imported when served: every other command starts faster
    from api.auth import Role, TokenStore

__all__ = ["api_url", "app", "bind_socket", "check_host", "is_loopback"]

app = typer.Typer(help="Serve the audit and operations API and the dashboard (loopback by default).",
                  invoke_without_command=True)
token_app = typer.Typer(help="Bearer tokens for the API: add (printed once), list, remove.", no_args_is_help=True)
app.add_typer(token_app, name="token")

HostOpt = Annotated[str, typer.Option(help="interface to bind (loopback unless --public-bind)")]
PortOpt = Annotated[int, typer.Option(min=1, max=65535, help="TCP port to listen on")]


def is_loopback(host: str) -> bool:
    """`localhost` or a loopback address (127.0.0.0/8, ::1); a name is not resolved: a public one could
    resolve to loopback today and elsewhere tomorrow."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_host(host: str, *, public_bind: bool) -> None:
    if not is_loopback(host) and not public_bind:
        raise ConfigError(f"--host {host} is not a loopback address: the API speaks plain HTTP, so tokens and the "
                          "governors' passphrases would cross the network in clear; put it behind a TLS proxy and "
                          "pass --public-bind to bind it anyway")


def api_url(host: str, port: int) -> str:
    """The URL a browser on this machine opens (IPv6 literals in brackets)."""
    shown = host.strip("[]")
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/"


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or one `error:` line saying why not (in use, not an address here)."""
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ConfigError(f"--host {host}: {exc.strerror}") from None
    family, _, _, _, address = infos[0]
    # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP, and an
    # accepted socket inherits this one's proto. Without it every keep-alive response whose headers and
    # body leave in two writes waited ~40 ms for the client's delayed ACK (Nagle): p50 44 ms, not 2 ms.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart rebinds at once (TIME_WAIT)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == 98:  # EADDRINUSE
            raise ConfigError(f"port {port} on {host} is in use (another `qeaims serve`, `qeaims up`, or another "
                              "program): choose another with --port") from None
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def _run(settings: Settings, host: str, port: int) -> None:
    import uvicorn

    from api.app import create_app

    sock = bind_socket(host, port)
    url = api_url(host, port)

    class _Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:  # accepting connections now: the supervisor may call it running
                log_line("qeaims.api", "api-started", url=url, home=str(settings.home))

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            super().handle_exit(sig, frame)
            # uvicorn re-raises the signal once drained (exit 143); a stop asked for is a clean stop here,
            # exit 0, as every other component of `qeaims up` exits on SIGTERM
            self._captured_signals.clear()

    setup_logging()
    config = uvicorn.Config(create_app(settings), workers=1, log_config=None, access_log=False,
                            timeout_graceful_shutdown=5)
    server = _Server(config)
    try:
        server.run(sockets=[sock])  # until SIGTERM/SIGINT, then drains the requests in flight
    finally:
        sock.close()
    log_line("qeaims.api", "api-stopped", url=url)


@app.callback()
def serve(
    ctx: typer.Context,
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8080,
    public_bind: Annotated[bool, typer.Option("--public-bind", help="allow a non-loopback --host (plain HTTP: "
                                                                     "only behind a TLS proxy)")] = False,
) -> None:
    """Serve the API under /api/v1 and the dashboard at / until stopped (Ctrl-C, SIGTERM)."""
    if ctx.invoked_subcommand is not None:
        return
    check_host(host, public_bind=public_bind)
    _run(settings_of(ctx), host, port)


def _store(ctx: typer.Context) -> TokenStore:
    from api.auth import TokenStore

    return TokenStore(settings_of(ctx).home / "api")


@token_app.command("add")
def token_add(
    ctx: typer.Context,
    role: Annotated[str, typer.Option(help="auditor, operator or governor")],
    label: Annotated[str, typer.Option(help="a name for this token (who holds it); an existing label is replaced")],
    sector: Annotated[str | None, typer.Option(help="the operator's sector")] = None,
    governor: Annotated[str | None, typer.Option(help="the governor's name (its keystore: "
                                                      "keystores/governors/NAME.json)")] = None,
) -> None:
    """A new token, printed once on stdout (only its digest is kept)."""
    if role not in ("auditor", "operator", "governor"):
        raise ConfigError(f"--role {role!r}: choose auditor, operator or governor")
    if role == "operator" and sector is None:
        raise ConfigError("an operator's token needs --sector (the one sector it may read and post notices for)")
    if role != "operator" and sector is not None:
        raise ConfigError(f"--sector is for an operator's token; a {role} reads every sector")
    if role == "governor":
        if governor is None:
            raise ConfigError("a governor's token needs --governor NAME (keystores/governors/NAME.json)")
        keystore = settings_of(ctx).keystore_dir / "governors" / f"{governor}.json"
        if not keystore.is_file():
            raise ConfigError(f"no governor keystore at {keystore}: a governor's token names a governor whose "
                              "keystore this server holds (it signs that governor's approvals)")
    elif governor is not None:
        raise ConfigError(f"--governor is for a governor's token, not a {role}'s")
    if not label.strip() or len(label) > 80:
        raise ConfigError("--label must be 1 to 80 characters")
    store = _store(ctx)
    token = store.add(cast("Role", role), label, sector=check_sector(sector) if sector else None, governor=governor)
    typer.echo(token)
    typer.echo(f"token '{label}' ({role}) added to {store.path}: it is shown only now, keep it safe; "
               "send it as 'Authorization: Bearer <token>'", err=True)


@token_app.command("list")
def token_list(ctx: typer.Context, json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The tokens' labels and roles (the tokens themselves are not kept)."""
    entries = _store(ctx).entries()
    rows = [{"label": e.label, "role": e.role, "sector": e.sector, "governor": e.governor} for e in entries]
    if json_out:
        print_json({"tokens": rows})
        return
    if not rows:
        console.print("no tokens: add one with `qeaims serve token add --role auditor --label NAME`")
        return
    table = Table(title="API tokens")
    for column in ("label", "role", "sector", "governor"):
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(row[c] or "-") for c in ("label", "role", "sector", "governor")))
    console.print(table)


@token_app.command("remove")
def token_remove(ctx: typer.Context,
                 label: Annotated[str, typer.Option(help="the label given at `token add`")]) -> None:
    """Revoke a token at once (a running server reads the file on every request)."""
    if not _store(ctx).remove(label):
        raise ConfigError(f"no token labelled {label!r}: see `qeaims serve token list`")
    console.print(f"token '{label}' removed")

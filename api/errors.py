"""One error shape for the whole API: `{"error": "<one sentence>"}` and the right status, never a trace.

The same exception tree the command turns into one `error:` line (core/errors.py) maps to HTTP here:
a user's mistake is a 4xx that says what is wrong; the chain being down is a 503; anything unexpected
is a 500 whose body carries only an id, the trace going to the server's log under that id.
"""

from __future__ import annotations

import json
import logging
import secrets

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException  # fastapi's is a subclass: also the router's own 404/405

from core.errors import (
    AuditFailed,
    ChainNotRunning,
    ConfigError,
    ContractRejected,
    DeploymentMissing,
    IdentityError,
    QeaimsError,
    TransactionFailed,
    UnknownSector,
)
from keys.errors import KeysError, KeystoreError

__all__ = ["ErrorBody", "install_error_handlers"]

log = logging.getLogger("qeaims.api")

_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (UnknownSector, 404),
    (ConfigError, 422),
    (IdentityError, 403),
    (KeysError, 403),
    (ContractRejected, 409),
    (TransactionFailed, 409),
    (ChainNotRunning, 503),
    (DeploymentMissing, 503),
    (AuditFailed, 422),
    (QeaimsError, 400),
)

class ErrorBody(BaseModel):
    """Every 4xx and 5xx body."""

    error: str


def _body(status_code: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status_code, headers=headers)


def _field(loc: tuple[object, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "cookie")]
    return ".".join(parts) or "request"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        return _body(exc.status_code, str(exc.detail), dict(exc.headers) if exc.headers else None)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [f"{_field(tuple(e.get('loc', ())))}: {str(e.get('msg', 'invalid')).removeprefix('Value error, ')}"
                    for e in exc.errors()]
        return _body(422, "; ".join(problems))

    @app.exception_handler(QeaimsError)
    @app.exception_handler(KeysError)
    async def _known(_: Request, exc: Exception) -> JSONResponse:
        status_code = next(code for kind, code in _STATUS if isinstance(exc, kind))
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if isinstance(exc, KeystoreError):  # the file's name, never where the server keeps it
            message = message.replace(str(exc.path), exc.path.name)
        return _body(status_code, message)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        incident = secrets.token_hex(6)
        log.error(json.dumps({"event": "api-error", "id": incident, "path": request.url.path,
                              "error": type(exc).__name__}), exc_info=exc)
        return _body(500, f"internal error (id {incident}; the server's log has the details)")

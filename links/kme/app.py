"""The KME's HTTP interface: ETSI GS QKD 014 v1.1.1 (clause 5), and two documented extensions.

Standard (the caller is known by its TLS client certificate, `links.kme.server`):

- ``GET  /api/v1/keys/{slave_SAE_ID}/status`` — the caller is the master of a link to that slave;
- ``GET|POST /api/v1/keys/{slave_SAE_ID}/enc_keys`` — new keys for the master (``number``, ``size``);
- ``GET|POST /api/v1/keys/{master_SAE_ID}/dec_keys`` — the same keys for the slave, by ``key_ID``.

Answers: 200 with the standard's containers; 400 for a request that cannot be served as asked (size
not a multiple of 8 or out of range, too many keys, an unknown, foreign or consumed key id, an
extension we do not support, a malformed body); 401 when the caller is not an end of that link (an
unknown SAE id in the path included); 503 when keys are not available (the pool is short, or the
QKD link is compromised: the message says which). Every error body is the standard's Error.

Extensions (not in the standard; the standard's ``status_extension`` also carries the QKD state):

- ``GET /api/v1/links`` — the QKD state of each link the caller is an end of (``controller`` and
  ``operations``: every link);
- ``POST|DELETE /api/v1/links/{link_id}/eavesdropper`` — the simulation's Eve on a link's fibre,
  for the ``operations`` SAE only (403 for anyone else).

Key multicast (``additional_slave_SAE_IDs``) is refused: every link here joins exactly two SAEs
(`links.plan`), so ``max_SAE_ID_count`` is 0.
"""

from __future__ import annotations

import base64
from typing import Annotated, Any, Literal

from fastapi import Body, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.logs import log_line
from links.kme.models import Error, Key, KeyContainer, KeyIds, KeyRequest, LinkState, Status
from links.kme.store import KeyStore, StoreRefused
from links.kme.supply import KeySupply
from links.plan import CONTROLLER_SAE, OPERATIONS_SAE, LinkPlan, LinkSpec
from links.qkd import Eavesdropper

__all__ = ["KEY_SIZE", "KmeState", "create_app"]

KME_ID = "QEAIMS-KME-1"
KEY_SIZE = 256
MIN_KEY_SIZE, MAX_KEY_SIZE = 64, 1024
MAX_KEY_PER_REQUEST = 16
SEES_ALL = frozenset({CONTROLLER_SAE, OPERATIONS_SAE})


class KmeState:
    """What the app serves: the plan (who may ask for what), the keys, and the QKD pairs' state."""

    def __init__(self, plan: LinkPlan, store: KeyStore, supply: KeySupply) -> None:
        self.plan, self.store, self.supply = plan, store, supply


class Refused(Exception):
    """An answer of the standard's Error format with this HTTP status (raised by the handlers)."""

    def __init__(self, status: int, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.details = status, message, details


class EveRequest(BaseModel):
    """The simulation's eavesdropper (extension): which attack, on what fraction of the pulses."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["intercept-resend", "pns"]
    fraction: float = Field(gt=0.0, le=1.0)


def _error(status: int, message: str, details: list[dict[str, Any]] | None = None) -> JSONResponse:
    return JSONResponse(Error(message=message, details=details).model_dump(exclude_none=True), status_code=status)


def _caller(request: Request, plan: LinkPlan) -> str:
    sae = getattr(request.state, "sae_id", None)
    if not sae or sae not in plan.saes():
        raise Refused(401, "the client certificate names no SAE of this KME")
    return str(sae)


def _link(plan: LinkPlan, *, master: str, slave: str) -> LinkSpec:
    known = plan.saes()
    for sae in (master, slave):
        if sae not in known:
            raise Refused(401, f"no SAE {sae!r} in this KME's link plan")
    link = plan.between(master, slave)
    if link is None or link.master != master or link.slave != slave:
        raise Refused(401, f"{master} is not the master of a link to {slave}")
    return link


def _checked(number: int | None, size: int | None) -> tuple[int, int]:
    number = 1 if number is None else number
    size = KEY_SIZE if size is None else size
    if not 1 <= number <= MAX_KEY_PER_REQUEST:
        raise Refused(400, f"number must be 1..{MAX_KEY_PER_REQUEST} (max_key_per_request), not {number}")
    if size % 8 or not MIN_KEY_SIZE <= size <= MAX_KEY_SIZE:
        raise Refused(400, f"size must be a multiple of 8 from {MIN_KEY_SIZE} to {MAX_KEY_SIZE} bits, not {size}")
    return number, size


def _container(keys: list[tuple[str, bytes]]) -> KeyContainer:
    return KeyContainer(keys=[Key(key_ID=k, key=base64.b64encode(v).decode()) for k, v in keys])


def create_app(state: KmeState) -> FastAPI:
    app = FastAPI(title="QEAIMS KME (ETSI GS QKD 014 v1.1.1)", version="1.1.1", docs_url=None, redoc_url=None)
    plan, store, supply = state.plan, state.store, state.supply

    @app.exception_handler(Refused)
    async def _refused(_request: Request, exc: Refused) -> JSONResponse:
        return _error(exc.status, exc.message, exc.details)

    @app.exception_handler(StoreRefused)
    async def _store(_request: Request, exc: StoreRefused) -> JSONResponse:
        return _error(exc.status, str(exc), list(exc.details) or None)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [{"where": ".".join(str(p) for p in e.get("loc", ())), "problem": str(e.get("msg", ""))}
                   for e in exc.errors()]
        first = details[0] if details else {"where": "request", "problem": "not understood"}
        return _error(400, f"malformed request: {first['where']}: {first['problem']}", details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _failed(_request: Request, exc: Exception) -> JSONResponse:
        log_line("qeaims.kme", "kme-request-failed", error=f"{type(exc).__name__}: {exc}")
        return _error(500, "the KME failed to answer this request (its log says why)")

    def status_extension(link: LinkSpec) -> dict[str, Any]:
        qkd = supply.state_of(link.link_id)
        return {"qkd_state": qkd["state"], "qkd_blocks": qkd["blocks"], "qkd_alarms": qkd["alarms"],
                "qkd_alarm_count": qkd["alarm_count"], "distance_km": link.distance_km,
                "keys_delivered_to_master_only": store.reserved_count(link.link_id)}

    @app.get("/api/v1/keys/{slave_SAE_ID}/status", response_model=Status)
    def get_status(slave_SAE_ID: str, request: Request) -> Status:
        master = _caller(request, plan)
        link = _link(plan, master=master, slave=slave_SAE_ID)
        return Status(source_KME_ID=KME_ID, target_KME_ID=KME_ID, master_SAE_ID=master, slave_SAE_ID=slave_SAE_ID,
                      key_size=KEY_SIZE, stored_key_count=store.available_bytes(link.link_id) * 8 // KEY_SIZE,
                      max_key_count=store.max_pool_bytes * 8 // KEY_SIZE, max_key_per_request=MAX_KEY_PER_REQUEST,
                      max_key_size=MAX_KEY_SIZE, min_key_size=MIN_KEY_SIZE, max_SAE_ID_count=0,
                      status_extension=status_extension(link))

    def enc(request: Request, slave: str, number: int | None, size: int | None) -> KeyContainer:
        master = _caller(request, plan)
        link = _link(plan, master=master, slave=slave)
        count, bits = _checked(number, size)
        if supply.compromised(link.link_id):
            raise Refused(503, f"keys not available: the QKD link {link.link_id} is compromised (an eavesdropper "
                               "is suspected from its statistics); its keys were discarded")
        return _container(store.take_for_master(link.link_id, count, bits))

    @app.get("/api/v1/keys/{slave_SAE_ID}/enc_keys", response_model=KeyContainer, response_model_exclude_none=True)
    def get_enc_keys(slave_SAE_ID: str, request: Request,
                     number: Annotated[int | None, Query()] = None,
                     size: Annotated[int | None, Query()] = None) -> KeyContainer:
        return enc(request, slave_SAE_ID, number, size)

    @app.post("/api/v1/keys/{slave_SAE_ID}/enc_keys", response_model=KeyContainer, response_model_exclude_none=True)
    def post_enc_keys(slave_SAE_ID: str, request: Request,
                      body: Annotated[KeyRequest | None, Body()] = None) -> KeyContainer:
        body = body or KeyRequest()
        if body.additional_slave_SAE_IDs:
            raise Refused(400, "additional_slave_SAE_IDs are not supported: every link joins two SAEs "
                               "(max_SAE_ID_count is 0)")
        if body.extension_mandatory:
            raise Refused(400, "not all mandatory extensions are supported",
                          [{"extension_mandatory_unsupported": e} for e in body.extension_mandatory])
        return enc(request, slave_SAE_ID, body.number, body.size)

    def dec(request: Request, master: str, key_ids: list[str]) -> KeyContainer:
        slave = _caller(request, plan)
        link = _link(plan, master=master, slave=slave)
        if not key_ids:
            raise Refused(400, "name at least one key_ID")
        return _container(store.give_to_slave(link.link_id, key_ids))

    @app.get("/api/v1/keys/{master_SAE_ID}/dec_keys", response_model=KeyContainer, response_model_exclude_none=True)
    def get_dec_keys(master_SAE_ID: str, request: Request,
                     key_ID: Annotated[str | None, Query()] = None) -> KeyContainer:
        return dec(request, master_SAE_ID, [key_ID] if key_ID else [])

    @app.post("/api/v1/keys/{master_SAE_ID}/dec_keys", response_model=KeyContainer, response_model_exclude_none=True)
    def post_dec_keys(master_SAE_ID: str, request: Request, body: KeyIds) -> KeyContainer:
        return dec(request, master_SAE_ID, [k.key_ID for k in body.key_IDs])

    @app.get("/api/v1/links", response_model=list[LinkState])
    def get_links(request: Request) -> list[LinkState]:
        caller = _caller(request, plan)
        out = []
        for link in plan.links:
            if caller not in SEES_ALL and caller not in (link.master, link.slave):
                continue
            qkd = supply.state_of(link.link_id)
            out.append(LinkState(link_id=link.link_id, master=link.master, slave=link.slave,
                                 distance_km=link.distance_km, state=qkd["state"], blocks=qkd["blocks"],
                                 alarms=qkd["alarms"], alarm_count=qkd["alarm_count"], keys_available=store.available_bytes(link.link_id) * 8 // KEY_SIZE,
                                 last_block=qkd["last_block"], changed_at=qkd["changed_at"],
                                 eavesdropper=qkd["eavesdropper"] if caller == OPERATIONS_SAE else None))
        return out

    def eve_link(request: Request, link_id: str) -> LinkSpec:
        if _caller(request, plan) != OPERATIONS_SAE:
            raise Refused(403, "only the operations SAE controls the simulation")
        try:
            return plan.get(link_id)
        except Exception:  # noqa: BLE001 - any lookup failure is "no such link"
            raise Refused(400, f"no link {link_id!r}") from None

    @app.post("/api/v1/links/{link_id}/eavesdropper", response_model=LinkState)
    def post_eve(link_id: str, request: Request, body: EveRequest) -> LinkState:
        link = eve_link(request, link_id)
        supply.set_eavesdropper(link.link_id, Eavesdropper(kind=body.kind, fraction=body.fraction))
        return next(s for s in get_links(request) if s.link_id == link.link_id)

    @app.delete("/api/v1/links/{link_id}/eavesdropper", response_model=LinkState)
    def delete_eve(link_id: str, request: Request) -> LinkState:
        link = eve_link(request, link_id)
        supply.set_eavesdropper(link.link_id, None)
        return next(s for s in get_links(request) if s.link_id == link.link_id)

    return app

"""`GET /proofs/{oracle}/{batch}:{index}`: one stored reading proven against its on-chain root.

`oracles.proof_check.check_reading`, the check `qeaims audit proof` runs: the oracle's telemetry store
(under this server's data directory) supplies the reading's exact stored bytes, its leaf and its
siblings; the API's log index supplies the root from the `telemetry-root` event the batch was anchored
as. A reading that does not match is a finding, not an error: 200 with `ok: false` and the reason.

The body is a self-contained proof: `scripts/check_proof.py FILE` re-checks a downloaded one offline
(the leaf from `body`, then the siblings up to `root`), so a regulator needs to trust neither this
server nor its store for the arithmetic, only the root, which it can compare with the event at
`block`/`tx` on any node of the chain.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response, status
from pydantic import BaseModel, Field

from api.auth import Principal, require, require_sector
from api.deps import Ctx, Db
from api.errors import ErrorBody
from api.routers._regulator import check_address
from chain.event_query import node_name
from core.errors import AuditFailed, ConfigError
from oracles.merkle import LEAF_SCHEME
from oracles.proof_check import check_against_chain, local_proof
from oracles.telemetry import parse_reading_ref, telemetry_path

router = APIRouter(tags=["proofs"])

Reader = Annotated[Principal, Depends(require("auditor", "governor", "operator"))]


class ReadingProof(BaseModel):
    """A reading's inclusion proof and its verdict. When `ok` is false because the reading could not be
    proven at all (its store altered, its batch never anchored), the proof fields are null."""

    ok: bool
    reason: str | None = Field(description="why it does not verify; null when it does")
    reading: str = Field(description="BATCH:INDEX in the oracle's store")
    oracle: str
    sector: str
    scheme: str = Field(description="the leaf scheme (oracles/merkle.py): " + LEAF_SCHEME)
    seq: int | None = None
    block: int | None = None
    tx: str | None = None
    leaf: str | None = None
    proof: list[str] | None = Field(default=None, description="the siblings, bottom up (sorted-pair keccak)")
    root: str | None = Field(default=None, description="the root recorded on-chain")
    local_root: str | None = None
    body: str | None = Field(default=None, description="the reading exactly as stored (its leaf commits to it)")
    asset: str | None = None
    sensor: str | None = None
    quantity: str | None = None
    value: float | None = None
    unit: str | None = None
    timestamp: str | None = None


_ERRORS: dict[int | str, dict[str, Any]] = {401: {"model": ErrorBody}, 403: {"model": ErrorBody},
                                            404: {"model": ErrorBody}, 422: {"model": ErrorBody},
                                            503: {"model": ErrorBody}}


@router.get("/proofs/{oracle}/{ref}", response_model=ReadingProof, responses=_ERRORS,
            summary="A reading's Merkle proof against the root its oracle recorded on-chain")
def reading_proof(
    who: Reader,
    ctx: Ctx,
    db: Db,
    response: Response,
    oracle: Annotated[str, Path(description="the oracle's address")],
    ref: Annotated[str, Path(description="the reading's id BATCH:INDEX, e.g. 3:17")],
    download: Annotated[bool, Query(description="send as an attachment (a file to keep)")] = False,
) -> ReadingProof:
    address = check_address("oracle", oracle)
    assert address is not None
    try:
        batch, index = parse_reading_ref(ref)
    except ConfigError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc)) from None
    row = db.execute("SELECT sector FROM oracle_keys WHERE oracle = ? AND epoch = 1", (address,)).fetchone()
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"oracle {oracle} is not registered on this chain")
    sector = node_name(str(row[0]))
    require_sector(who, sector)
    path = telemetry_path(ctx.settings.home, address)
    if not path.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"this server holds no telemetry store for {oracle}")
    if download:
        response.headers["Content-Disposition"] = f'attachment; filename="proof-{address}-{batch}-{index}.json"'
    base: dict[str, Any] = {"reading": f"{batch}:{index}", "oracle": address, "sector": sector, "scheme": LEAF_SCHEME}
    try:
        evidence = local_proof(path, address, f"{batch}:{index}", label=address)
        checked = check_against_chain(evidence, address, db)
    except ConfigError as exc:  # no such batch, or no such index in it
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc).splitlines()[0]) from None
    except AuditFailed as exc:  # a finding: the store was altered, or the batch never reached the chain
        return ReadingProof(ok=False, reason=str(exc).splitlines()[0], **base)
    found = checked.as_dict()
    found.pop("reading")
    found.pop("oracle")
    found.pop("scheme")
    found["reason"] = found.get("reason")
    return ReadingProof(**base, **found, body=evidence.body.decode())

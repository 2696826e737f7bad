"""`POST /audit/verifications`, `GET /audit/verifications/{id}`: the whole audit as a background job.

The job runs `chain.audit_run.audit_afresh`, the code `qeaims audit verify` runs: a fresh index built
from eth_getLogs in a temporary directory (nothing local trusted, not even the API's own index), every
signature, key epoch, sequence, vote, quorum and council decision re-checked, and the anchor of the
audited head plus a finding for each earlier anchor the chain no longer holds. On a storm-day history
that takes minutes, so it is never a request: the POST answers 202 with the job's id at once and the
GET reports the step, its progress and, at the end, the report; the stream's `audit-progress` topic
carries the same (each step, at most five a second, and the end). One job at a time (a second POST while
one runs is a 409 naming it): two full audits would only halve each other's speed on the same cores.
Jobs live in the server's memory (the last 20 are kept); the report is reproducible from the chain.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Request, Response, status
from pydantic import BaseModel, Field

from api.auth import Principal, require
from api.context import ApiContext
from api.errors import ErrorBody
from api.live.hub import hub_of
from api.live.messages import Message
from chain.audit_anchor import parse_anchors
from chain.audit_run import audit_afresh
from chain.connect import connect
from core.config import Settings
from core.errors import QeaimsError

router = APIRouter(tags=["audit"])
log = logging.getLogger("qeaims.api")

Auditor = Annotated[Principal, Depends(require("auditor", "governor"))]
KEEP = 20
PROGRESS_EVERY_S = 0.2
Status = Literal["running", "done", "failed"]


@dataclass
class _Job:
    id: str
    requested_by: str
    anchors: list[tuple[int, str]]
    started: float = field(default_factory=time.time)
    finished: float | None = None
    status: Status = "running"
    step: str = "connecting to the chain"
    done: int = 0
    total: int = 0
    result: dict[str, Any] | None = None
    error: str | None = None


class Verifications:
    """The jobs of this server, one running at a time."""

    def __init__(self, settings: Settings, publish: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.settings = settings
        self._publish = publish or (lambda _data: None)
        self._lock = threading.Lock()
        self._jobs: OrderedDict[str, _Job] = OrderedDict()
        self._running: _Job | None = None

    def start(self, who: Principal, anchors: list[tuple[int, str]]) -> _Job:
        with self._lock:
            if self._running is not None:
                raise HTTPException(status.HTTP_409_CONFLICT,
                                    detail=f"verification {self._running.id} is still running; wait for it "
                                           f"(GET /api/v1/audit/verifications/{self._running.id})")
            job = _Job(id=secrets.token_hex(8), requested_by=who.label, anchors=anchors)
            self._jobs[job.id] = job
            while len(self._jobs) > KEEP:
                self._jobs.popitem(last=False)
            self._running = job
        threading.Thread(target=self._run, args=(job,), name=f"audit-{job.id}", daemon=True).start()
        return job

    def get(self, job_id: str) -> _Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def _tell(self, job: _Job) -> None:
        self._publish({"id": job.id, "status": job.status, "step": job.step, "done": job.done, "total": job.total,
                       "ok": None if job.result is None else job.result["ok"], "error": job.error})

    def _run(self, job: _Job) -> None:
        told = 0.0

        def step(what: str, done: int, total: int) -> None:
            nonlocal told
            changed = what != job.step
            job.step, job.done, job.total = what, done, total
            now = time.monotonic()
            if changed or now - told >= PROGRESS_EVERY_S:  # each step, then at most 5 a second
                told = now
                self._tell(job)

        self._tell(job)
        try:
            client, deployment = connect(self.settings)  # its own client: the job's thread is its only user
            report, anchor = audit_afresh(client, deployment, anchors=job.anchors, progress=step,
                                          max_logs_range=self.settings.max_logs_range)
            job.result = {**report.as_dict(), "ok": report.ok, "anchor": anchor}
            job.status = "done"
        except QeaimsError as exc:
            job.error, job.status = (str(exc).splitlines() or [type(exc).__name__])[0], "failed"
        except Exception as exc:
            incident = secrets.token_hex(6)
            log.error(json.dumps({"event": "api-error", "id": incident, "job": job.id, "error": type(exc).__name__}),
                      exc_info=exc)
            job.error, job.status = f"internal error (id {incident}; the server's log has the details)", "failed"
        finally:
            job.finished = time.time()
            with self._lock:
                self._running = None
            self._tell(job)


def attach(app: FastAPI, ctx: ApiContext, *, follow: bool) -> None:
    """The jobs, telling the stream's `audit-progress` topic how each goes (auditors and governors only)."""
    hub = hub_of(app)
    app.state.verifications = Verifications(ctx.settings,
                                            lambda data: hub.publish([Message(topic="audit-progress", data=data)]))


def _jobs(request: Request) -> Verifications:
    jobs: Verifications = request.app.state.verifications
    return jobs


class VerificationRequest(BaseModel):
    anchors: list[str] = Field(default_factory=list, max_length=100,
                               description="BLOCK:0xHASH anchors printed by earlier audits; the chain must still "
                                           "hold each")


class VerificationStarted(BaseModel):
    id: str
    status: Status


class Progress(BaseModel):
    step: str
    done: int
    total: int


class VerificationResult(BaseModel):
    """The `qeaims audit verify --json` report."""

    ok: bool
    anchor: str = Field(description="BLOCK:0xHASH of the audited head: keep it elsewhere, pass it back later")
    head: int | None
    events: int
    valid: int
    invalid: list[dict[str, Any]]
    batches: int
    oracles: int
    key_epochs: int
    problems: list[dict[str, Any]]
    skipped: list[str]


class Verification(BaseModel):
    id: str
    status: Status
    requested_by: str
    started: float
    finished: float | None
    progress: Progress
    result: VerificationResult | None = Field(description="set when status is done")
    error: str | None = Field(description="set when status is failed (the chain down, say)")


_ERRORS: dict[int | str, dict[str, Any]] = {401: {"model": ErrorBody}, 403: {"model": ErrorBody}}


@router.post("/audit/verifications", status_code=202, response_model=VerificationStarted,
             summary="Start re-verifying the whole on-chain history (a background job)",
             responses={**_ERRORS, 409: {"model": ErrorBody}, 422: {"model": ErrorBody}})
def start_verification(who: Auditor, request: Request, response: Response,
                       body: VerificationRequest | None = None) -> VerificationStarted:
    anchors = parse_anchors((body or VerificationRequest()).anchors, option="anchor")
    job = _jobs(request).start(who, anchors)
    response.headers["Location"] = f"{request.url.path}/{job.id}"
    return VerificationStarted(id=job.id, status=job.status)


@router.get("/audit/verifications/{job_id}", response_model=Verification,
            summary="A verification's step, progress and, when done, its report",
            responses={**_ERRORS, 404: {"model": ErrorBody}})
def get_verification(_: Auditor, request: Request,
                     job_id: Annotated[str, Path(pattern=r"^[0-9a-f]{16}$")]) -> Verification:
    job = _jobs(request).get(job_id)
    if job is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            detail=f"no verification {job_id} on this server (only the last {KEEP} are kept)")
    result = None if job.result is None else VerificationResult.model_validate(job.result)
    return Verification(id=job.id, status=job.status, requested_by=job.requested_by, started=job.started,
                        finished=job.finished, progress=Progress(step=job.step, done=job.done, total=job.total),
                        result=result, error=job.error)

"""`POST /session`: trade a token for a cookie the browser's EventSource and downloads can carry.

The cookie is HttpOnly and SameSite=Strict and is honoured on GET only (api/auth.py), so it cannot be
used to change anything; `DELETE /session` forgets it. `GET /whoami` tells the page what it may show."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel

from api.auth import COOKIE, Principal, authenticated
from api.errors import ErrorBody

router = APIRouter(tags=["session"], responses={401: {"model": ErrorBody}})


class WhoAmI(BaseModel):
    role: Literal["auditor", "operator", "governor"]
    label: str
    sector: str | None
    governor: str | None


def _who(who: Principal) -> WhoAmI:
    return WhoAmI(role=who.role, label=who.label, sector=who.sector, governor=who.governor)


@router.get("/whoami", response_model=WhoAmI, summary="The role behind this token")
def whoami(who: Annotated[Principal, Depends(authenticated)]) -> WhoAmI:
    return _who(who)


@router.post("/session", response_model=WhoAmI, summary="Set the read-only session cookie for this token")
def open_session(request: Request, response: Response,
                 who: Annotated[Principal, Depends(authenticated)]) -> WhoAmI:
    token = request.headers["authorization"].partition(" ")[2].strip()  # authenticated: a Bearer header
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/",
                        secure=request.url.scheme == "https")
    return _who(who)


@router.delete("/session", status_code=204, summary="Forget the session cookie")
def close_session(response: Response) -> Response:
    response.delete_cookie(COOKIE, path="/")
    response.status_code = 204
    return response

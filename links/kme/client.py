"""An SAE's client of the KME: ETSI GS QKD 014 over HTTPS with the SAE's client certificate."""

from __future__ import annotations

import base64
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Self, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from core.errors import QeaimsError
from links.kme.models import KeyContainer, LinkState, Status
from links.pki import DevPki

_M = TypeVar("_M", bound=BaseModel)

__all__ = ["Key", "KmeClient", "KmeError"]


class KmeError(QeaimsError):
    """The KME refused (`status` is its HTTP answer) or could not be reached (`status` 0)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"KME {status}: {message}" if status else message)
        self.status, self.message = status, message


@dataclass(frozen=True)
class Key:
    """One QKD key as an SAE uses it: the standard's id, and the key bytes (decoded from base64)."""

    key_ID: str
    key: bytes

    def __repr__(self) -> str:  # a key in a log or a traceback would no longer be secret
        return f"Key(key_ID={self.key_ID!r}, key=<{len(self.key) * 8} bits>)"



class KmeClient:
    """One SAE's connection to the KME (keep-alive: one TLS handshake for many requests); thread-safe
    as httpx's `Client` is. Every failure is a `KmeError`: the KME's answer, or why it was not reached."""

    def __init__(self, base_url: str, sae_id: str, pki: DevPki, timeout_s: float = 10.0) -> None:
        cert, key = pki.client_paths(sae_id)
        if not cert.is_file():
            raise KmeError(0, f"no client certificate for {sae_id} at {cert}: `qeaims up` makes them")
        self.base_url, self.sae_id = base_url.rstrip("/"), sae_id
        # an SSLContext of our own: httpx 0.29 ignores `cert=` when `verify` is a path
        try:
            context = ssl.create_default_context(cafile=str(pki.ca_path))
            context.load_cert_chain(str(cert), str(key))
        except (OSError, ssl.SSLError) as exc:
            raise KmeError(0, f"cannot use the TLS files of {sae_id} in {pki.directory}: {exc}") from None
        self._http = httpx.Client(base_url=self.base_url, verify=context, timeout=timeout_s)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            answer = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise KmeError(0, f"cannot reach the KME at {self.base_url}: {exc}") from None
        if answer.status_code != 200:
            try:
                message = str(answer.json().get("message", answer.text))
            except ValueError:
                message = answer.text
            raise KmeError(answer.status_code, message)
        try:
            return answer.json()
        except ValueError:
            raise KmeError(answer.status_code, f"the KME at {self.base_url} answered with something not JSON") from None

    def _parse(self, model: type[_M], data: Any) -> _M:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise KmeError(200, f"the KME at {self.base_url} answered with a malformed {model.__name__}: "
                                f"{exc.errors()[0]['msg']}") from None

    def status(self, slave: str) -> Status:
        """The key stream from this SAE (the master) to `slave`."""
        return self._parse(Status, self._call("GET", f"/api/v1/keys/{slave}/status"))

    def _keys(self, data: Any) -> list[Key]:
        container = self._parse(KeyContainer, data)
        try:
            return [Key(k.key_ID, base64.b64decode(k.key, validate=True)) for k in container.keys]
        except ValueError:
            raise KmeError(200, f"the KME at {self.base_url} sent a key that is not base64") from None

    def enc_keys(self, slave: str, number: int = 1, size: int = 256) -> list[Key]:
        """New keys for this SAE (the master) shared with `slave` (POST, the standard's Key request)."""
        return self._keys(self._call("POST", f"/api/v1/keys/{slave}/enc_keys", json={"number": number, "size": size}))

    def dec_keys(self, master: str, key_ids: Sequence[str]) -> list[Key]:
        """The keys `master` was given, by id, for this SAE (its slave): each can be fetched once."""
        return self._keys(self._call("POST", f"/api/v1/keys/{master}/dec_keys",
                                     json={"key_IDs": [{"key_ID": k} for k in key_ids]}))

    def links(self) -> list[LinkState]:
        """Extension: the QKD state of every link this SAE is an end of (controller, operations: all)."""
        data = self._call("GET", "/api/v1/links")
        if not isinstance(data, list):
            raise KmeError(200, f"the KME at {self.base_url} answered /api/v1/links with something not a list")
        return [self._parse(LinkState, s) for s in data]

    def set_eavesdropper(self, link_id: str, kind: str, fraction: float) -> LinkState:
        """Extension, operations only: the simulation's eavesdropper on the link's fibre."""
        return self._parse(LinkState, self._call("POST", f"/api/v1/links/{link_id}/eavesdropper",
                                                 json={"kind": kind, "fraction": fraction}))

    def clear_eavesdropper(self, link_id: str) -> LinkState:
        return self._parse(LinkState, self._call("DELETE", f"/api/v1/links/{link_id}/eavesdropper"))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

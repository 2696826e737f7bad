"""An oracle whose own key rotation was lost with a killed chain's last blocks finishes it and serves again.

Found by the crash campaign (docs/crash-campaign.md, "Clients on a half-replayed chain"): an oracle
read "signs with key epoch 1 but the registry holds epoch 0" and ended. With the gate no half-replay
causes that any more, but a rotation sent in the last, unjournaled fraction of a second before a hard
kill is lost for good, and waiting never brings it back. A keystore exactly one epoch ahead of the
registry is that oracle's own rotation: it is resent (the proof binds the chain id, the registry and
both epochs). Any other mismatch (a registry ahead: someone else rotated the key, or an old keystore
was restored; a keystore two epochs ahead) still ends the oracle.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.mldsa import MLDSA65PrivateKey

from bus.mqtt import EmbeddedBroker
from chain.deploy import oracle_keystore
from chain.recorder import RotationUnfinished
from chain.rotation import rotate_oracle_key
from core.config import Settings
from core.errors import IdentityError
from core.messages import Sector
from keys.keystore import archive_path, read_keystore_header, rotate_keystore
from oracles.process import OracleProcessOptions, run_oracle_host
from oracles.training import save_model, train_sector
from tests.conftest import free_port
from tests.support import wait_until


def _registry_epoch(chain, address: str) -> int:  # type: ignore[no-untyped-def]
    return int(chain.client.call1("Registry", "oracle", address)[3])


def test_one_epoch_ahead_resumes_the_rotation_any_other_mismatch_ends_the_oracle(fresh_chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    chain, settings = fresh_chain, fresh_chain.settings
    keystores = {i: oracle_keystore(settings, "banking", i) for i in (1, 2, 3)}
    address = {i: read_keystore_header(k).address for i, k in keystores.items()}
    start = read_keystore_header(keystores[1]).key_epoch  # the registry's epoch for all three
    rotate_keystore(keystores[1], settings.passphrase, MLDSA65PrivateKey.generate())  # on disk, never on chain
    for _ in range(2):
        rotate_keystore(keystores[2], settings.passphrase, MLDSA65PrivateKey.generate())  # two ahead
    rotate_oracle_key(chain.client, keystores[3], settings.passphrase)  # on chain at epoch 1 ...
    shutil.copy(archive_path(keystores[3], start), keystores[3])  # ... and the older keystore restored
    model_file = save_model(train_sector(Sector.BANKING, rows=240), tmp_path / "banking.joblib")
    port = free_port()
    options = OracleProcessOptions(mqtt_port=port, model=model_file)
    with EmbeddedBroker(port=port):
        for index in (2, 3):
            thread, errors = _host(settings, index, options, stop := threading.Event())
            thread.join(60)  # ends by itself, at its start
            stop.set()
            thread.join(60)
            assert len(errors) == 1 and isinstance(errors[0], IdentityError), errors
            assert not isinstance(errors[0], RotationUnfinished) and "registry holds epoch" in str(errors[0])
        assert (_registry_epoch(chain, address[2]), _registry_epoch(chain, address[3])) == (start, start + 1)

        ready = threading.Event()
        thread, errors = _host(settings, 1, options, stop := threading.Event(), ready)
        try:
            wait_until(ready.is_set, 90, what="the oracle serving after finishing its rotation")
        finally:
            stop.set()
            thread.join(60)
    assert errors == [] and not thread.is_alive()
    assert _registry_epoch(chain, address[1]) == read_keystore_header(keystores[1]).key_epoch == start + 1


def _host(settings: Settings, index: int, options: OracleProcessOptions, stop: threading.Event,
          ready: threading.Event | None = None) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            run_oracle_host(settings, Sector.BANKING, [index], options, stop=stop,
                            on_ready=None if ready is None else ready.set)
        except BaseException as exc:  # noqa: BLE001 - asserted by the caller
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors

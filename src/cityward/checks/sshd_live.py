"""The live sshd against its file on disk (CW-RES-07), for the control checks and the fault tests:
both use the ssh role's files/sshd_offer.py, the KEXINIT reader the role itself runs on the host,
loaded from the installed collection (a role file, not a Python package, so loaded by its path)."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

from cityward.resources import collection_root

_PATH = collection_root() / "roles" / "ssh" / "files" / "sshd_offer.py"
_SPEC = importlib.util.spec_from_file_location("cityward_sshd_offer", _PATH)
offer = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(offer)

# `sshd -T` as the ssh role's check runs it on the host (a login from 127.0.0.1).
SSHD_T = " ".join(offer.sshd_t_command())


def live_and_configured(address: str, port: int, run: Callable[[str], str]) -> tuple[dict, dict]:
    """(what the sshd at address:port offers, what `sshd -T` on the host derives from the file);
    `run` runs a shell command on the host and returns its output."""
    return offer.read_kexinit(address, port), offer.configured(run(SSHD_T))

"""CW-RES-08: no Molecule scenario's output shows a lab secret or a private key. scripts/test.sh
keeps each scenario's whole output and points CITYWARD_TEST_LOGS at it; without that variable
(pytest alone, no scenario ran) there is no output to search and the test says so."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from lab_secrets import lab_secret_values, leaks


def test_the_lab_secrets_are_known_and_found_when_present():
    secrets = lab_secret_values()
    assert {"vault_breakglass_password_hash", "vault_lab_breakglass_password"} <= set(secrets)
    assert any(name.startswith("vault_totp_secrets.") for name in secrets)
    some = next(iter(secrets.items()))
    assert leaks(f"x {some[1]} y", secrets) == [some[0]]
    assert leaks("-----BEGIN OPENSSH PRIVATE KEY-----", {}) == ["a PEM private key block"]


@pytest.mark.control("CW-RES-08")
def test_no_molecule_output_shows_a_secret():
    folder = os.environ.get("CITYWARD_TEST_LOGS")
    if not folder:
        pytest.skip("no Molecule output to search: scripts/test.sh sets CITYWARD_TEST_LOGS after the scenarios")
    logs = sorted(Path(folder).glob("*.log"))
    assert logs, f"{folder}: no scenario logs, although scripts/test.sh ran the scenarios"
    secrets = lab_secret_values()
    found = {log.name: leaks(log.read_text(errors="replace"), secrets) for log in logs}
    assert not {name: what for name, what in found.items() if what}

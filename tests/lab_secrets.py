"""The lab's secret values (from its ansible-vault), for the tests that prove no output shows them
(CW-RES-08). Shared by tests/unit (the Molecule logs) and tests/scenarios (the audit's output)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from ansible.parsing.vault import VaultLib, VaultSecret

ROOT = Path(__file__).resolve().parents[1]
LAB = ROOT / "inventories" / "lab"
# A PEM private key block of any kind (RSA, EC, PKCS#8, OpenSSH).
PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")


def lab_secret_values() -> dict[str, str]:
    """name -> value of every secret in the lab vault (TOTP seeds, break-glass hash and password)."""
    password = (LAB / "vault-password.txt").read_bytes().strip()
    vault = VaultLib([("default", VaultSecret(password))])
    data = yaml.safe_load(vault.decrypt((LAB / "group_vars" / "all" / "vault.yml").read_bytes()))
    values = {f"vault_totp_secrets.{name}": seed for name, seed in data["vault_totp_secrets"].items()}
    values.update({key: value for key, value in data.items() if isinstance(value, str)})
    return values


def leaks(text: str, secrets: dict[str, str]) -> list[str]:
    """What of `secrets` (by name, never by value) and which private key blocks appear in `text`."""
    found = [name for name, value in secrets.items() if value and value in text]
    if PRIVATE_KEY.search(text):
        found.append("a PEM private key block")
    return found

"""The controller-side OpenPGP key reader (plugins/plugin_utils/openpgp.py) against keys made by gpg:
the fingerprint and expiry gpg reports, for public and private blocks, RSA and ed25519; and the
`openpgp_key` filter's refusals (issue 24: a missing, expired or wrong mirror key stops the play
before any host is touched)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.cityward.hardening.plugins.filter.openpgp import openpgp_key
from ansible_collections.cityward.hardening.plugins.plugin_utils.openpgp import KeyReadError, read_key

pytestmark = pytest.mark.skipif(shutil.which("gpg") is None, reason="needs gpg to make test keys")


def make_key(home, uid: str, algo: str, expire: str, faked_time: str | None = None) -> dict:
    env = {**os.environ, "GNUPGHOME": str(home)}
    fake = [f"--faked-system-time={faked_time}"] if faked_time else []
    gpg = ["gpg", "--batch", "--quiet", *fake]
    subprocess.run([*gpg, "--passphrase", "", "--quick-gen-key", uid, algo, "sign", expire], env=env, check=True,
                   capture_output=True)
    colons = subprocess.run(["gpg", "--batch", "--with-colons", "--list-keys", uid], env=env, check=True,
                            capture_output=True, text=True).stdout
    pub = next(line.split(":") for line in colons.splitlines() if line.startswith("pub:"))
    fpr = next(line.split(":")[9] for line in colons.splitlines() if line.startswith("fpr:"))
    export = lambda *args: subprocess.run(["gpg", "--batch", "--armor", *args, uid], env=env, check=True,  # noqa: E731
                                          capture_output=True, text=True).stdout
    return {"fingerprint": fpr, "expires": int(pub[6]) if pub[6] else None,
            "public": export("--export"), "secret": export("--export-secret-keys")}


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    home = tmp_path_factory.mktemp("gnupg")
    home.chmod(0o700)
    made = {"ed25519": make_key(home, "mirror <m@lab.invalid>", "ed25519", "1y"),
            "rsa": make_key(home, "rsa <r@lab.invalid>", "rsa2048", "never"),
            "expired": make_key(home, "old <o@lab.invalid>", "ed25519", "1d", faked_time="20200101T000000")}
    subprocess.run(["gpgconf", "--kill", "all"], env={**os.environ, "GNUPGHOME": str(home)}, check=False)
    return made


@pytest.mark.control("CW-PATCH-06")
@pytest.mark.parametrize("name", ["ed25519", "rsa", "expired"])
@pytest.mark.parametrize("half", ["public", "secret"])
def test_fingerprint_and_expiry_are_the_ones_gpg_reports(keys, name, half):
    key = read_key(keys[name][half])
    assert key.fingerprint == keys[name]["fingerprint"]
    assert key.secret is (half == "secret")
    expected = keys[name]["expires"]
    assert (int(key.expires.timestamp()) if key.expires else None) == expected


@pytest.mark.control("CW-PATCH-06")
def test_the_filter_gives_days_left(keys):
    assert openpgp_key(keys["ed25519"]["public"], "k")["days_left"] in (364, 365)
    assert openpgp_key(keys["rsa"]["public"], "k")["days_left"] is None
    assert openpgp_key(keys["expired"]["public"], "k")["days_left"] < 0


@pytest.mark.control("CW-PATCH-05")
@pytest.mark.parametrize(("text", "message"), [
    ("", "patching_mirror_public_key: no OpenPGP key given"),
    ("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", "no '-----BEGIN PGP PUBLIC KEY BLOCK-----'"),
    ("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n!!!notbase64\n-----END PGP PUBLIC KEY BLOCK-----\n", "not valid base64"),
    ("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nAAAA\n-----END PGP PUBLIC KEY BLOCK-----\n", "is not a packet header"),
])
def test_unreadable_keys_are_refused_in_one_line_naming_the_variable(text, message):
    with pytest.raises(AnsibleFilterError) as refused:
        openpgp_key(text, "patching_mirror_public_key")
    assert message in str(refused.value)
    assert "\n" not in str(refused.value)


@pytest.mark.control("CW-PATCH-05")
def test_a_truncated_key_is_refused(keys):
    text = keys["ed25519"]["public"]
    lines = text.splitlines()
    body = [line for line in lines if line and not line.startswith(("-----", "="))]
    cut = "\n".join([lines[0], "", body[0][:40], lines[-1]]) + "\n"
    with pytest.raises(KeyReadError):
        read_key(cut)

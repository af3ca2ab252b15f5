"""arm64 lab images: the recipe per architecture, and binfmt_misc set up or refused with what to do."""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import asdict

import pytest

from cityward.errors import CitywardError
from cityward.lab import emulation
from cityward.lab.image import EMULATION_SETUP, recipe_for


def test_arm64_recipe_is_its_own_image_with_the_emulation_setup():
    amd64, arm64 = recipe_for("bookworm"), recipe_for("bookworm", "arm64")
    assert amd64.image == "localhost/cityward-debian:bookworm"
    assert arm64.image == "localhost/cityward-debian:bookworm-arm64"
    assert amd64.digest != arm64.digest
    assert EMULATION_SETUP in arm64.setup and EMULATION_SETUP not in amd64.setup


def test_amd64_images_keep_the_hash_they_had_before_arm64():
    # The recipe before the architecture was a field: images, VM and EE built on it are not rebuilt.
    recipe = recipe_for("trixie")
    before = {k: v for k, v in asdict(recipe).items() if k != "arch"}
    assert recipe.digest == hashlib.sha256(json.dumps(before, sort_keys=True).encode()).hexdigest()[:16]


@pytest.mark.parametrize(("release", "arch", "message"), [
    ("bookworm", "armhf", r"unknown architecture 'armhf': choose one of amd64, arm64"),
    ("buster", "arm64", r"unknown release 'buster'"),
])
def test_unknown_release_or_architecture_is_refused(release, arch, message):
    with pytest.raises(CitywardError, match=message):
        recipe_for(release, arch)


@pytest.fixture
def fake_binfmt(tmp_path, monkeypatch):
    """A binfmt_misc folder in tmp_path on an amd64 machine, with the tools present."""
    monkeypatch.setattr(emulation, "BINFMT", tmp_path)
    monkeypatch.setattr(emulation, "native_arch", lambda: "amd64")
    monkeypatch.setattr(emulation, "ensure_commands", lambda *commands: None)
    return tmp_path


def test_the_native_architecture_needs_nothing(fake_binfmt):
    assert emulation.ensure_emulation("amd64") == "native"
    assert not any(fake_binfmt.iterdir())


def test_unmounted_binfmt_without_root_names_the_mount_command(fake_binfmt, monkeypatch):
    monkeypatch.setattr(emulation.os, "geteuid", lambda: 1000)
    with pytest.raises(CitywardError, match=r"binfmt_misc is not mounted at .* needs root: run `mount -t binfmt_misc "):
        emulation.ensure_emulation("arm64")


def test_a_kernel_without_binfmt_misc_is_refused_with_what_to_do(fake_binfmt, monkeypatch):
    monkeypatch.setattr(emulation.os, "geteuid", lambda: 0)
    failed = subprocess.CompletedProcess([], 32, "", "mount: unknown filesystem type 'binfmt_misc'.")
    monkeypatch.setattr(emulation.subprocess, "run", lambda *a, **k: failed)
    with pytest.raises(CitywardError, match=r"cannot mount binfmt_misc .*unknown filesystem.*modprobe binfmt_misc"):
        emulation.ensure_emulation("arm64")


def test_a_registration_without_the_f_flag_is_refused(fake_binfmt):
    (fake_binfmt / "register").write_text("")
    (fake_binfmt / "qemu-aarch64").write_text("enabled\ninterpreter /usr/bin/qemu-aarch64\nflags: P\n")
    with pytest.raises(CitywardError, match=r"qemu-aarch64 is registered without the F flag \(flags: P\)"):
        emulation.ensure_emulation("arm64")


def test_a_missing_registration_is_made_with_update_binfmts(fake_binfmt, monkeypatch):
    (fake_binfmt / "register").write_text("")
    calls = []

    def register(cmd, **kwargs):
        calls.append(cmd)
        (fake_binfmt / "qemu-aarch64").write_text("enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\n"
                                                  "flags: PF\n")
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(emulation.subprocess, "run", register)
    assert emulation.ensure_emulation("arm64") == str(fake_binfmt / "qemu-aarch64")
    assert calls == [["update-binfmts", "--enable", "qemu-aarch64"]]

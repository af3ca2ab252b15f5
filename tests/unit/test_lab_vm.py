"""The VM tier's pure parts: recipe hash, cache paths, the QEMU and SSH command lines, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cityward.cli import build_parser, main
from cityward.errors import CitywardError
from cityward.lab import vm
from cityward.lab.image import BASE_PACKAGES, SETUP_SCRIPT, Recipe
from cityward.lab.vm_image import VM_PACKAGES, VmImage, VmRecipe, image_for
from cityward.paths import cache_dir


@pytest.fixture(autouse=True)
def cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg"


def _instance(tmp_path) -> vm.Instance:
    return vm.Instance(tmp_path / "inst")


def _image(tmp_path) -> VmImage:
    return VmImage(tmp_path / "img" / "0123456789abcdef")


def test_cache_is_outside_the_checkout_and_follows_xdg(cache_home, monkeypatch):
    assert cache_dir() == cache_home / "cityward"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_dir() == Path.home() / ".cache" / "cityward"


def test_vm_recipe_extends_the_container_recipe():
    recipe = VmRecipe()
    assert recipe.rootfs.packages[: len(BASE_PACKAGES)] == BASE_PACKAGES
    assert "linux-image-amd64" in recipe.rootfs.packages and set(VM_PACKAGES) <= set(recipe.rootfs.packages)
    # The container image's own setup runs first, unchanged, and the fields still format.
    assert recipe.rootfs.setup.startswith(SETUP_SCRIPT)
    script = recipe.rootfs.setup.format(mirror="http://mirror.invalid/debian", release="bookworm")
    assert "cityward-vm-access" in script and "http://mirror.invalid/debian-security bookworm-security" in script


def test_vm_recipe_hash_is_stable_and_changes_with_the_recipe():
    base = VmRecipe()
    assert base.digest == VmRecipe().digest and len(base.digest) == 16
    assert base.digest != VmRecipe(release="trixie").digest
    assert base.digest != VmRecipe(disk_size="8G").digest
    # Never the container image's hash: the two are cached in different places anyway.
    assert base.digest != Recipe(release="bookworm").digest


def test_image_is_cached_by_recipe_hash(cache_home):
    image = image_for(VmRecipe())
    assert image.folder == cache_home / "cityward" / "vm" / VmRecipe().digest
    assert (image.kernel.name, image.initrd.name, image.disk.name) == ("vmlinuz", "initrd.img", "disk.raw")
    assert not image.complete()
    image.folder.mkdir(parents=True)
    for path in (image.kernel, image.initrd):
        path.write_bytes(b"x")
    assert not image.complete(), "an image without its disk is not complete"
    image.disk.write_bytes(b"x")
    assert image.complete()


def test_instances_live_in_the_cache_by_name(cache_home):
    assert vm.instance_dir("cw-vm-1") == cache_home / "cityward" / "vm" / "instances" / "cw-vm-1"


def test_qemu_boots_the_overlay_in_tcg_with_ssh_on_loopback_only(tmp_path):
    spec = vm.VmSpec(name="cw-vm-1", user="robot", memory_mb=1024, cpus=1)
    inst, image = _instance(tmp_path), _image(tmp_path)
    args = vm.qemu_args(spec, image, inst, 2240)
    joined = " ".join(args)
    assert args[0] == "qemu-system-x86_64"
    assert "-accel tcg -cpu max -smp 1 -m 1024" in joined
    assert f"-kernel {image.kernel} -initrd {image.initrd}" in joined
    assert f"file={inst.overlay},format=qcow2,if=virtio" in joined
    assert str(image.disk) not in joined, "QEMU must never open the cached disk itself, only the overlay"
    assert "hostfwd=tcp:127.0.0.1:2240-:22" in joined and "hostfwd=tcp::" not in joined
    assert f"-serial file:{inst.console}" in joined
    assert args[-3:] == ["-pidfile", str(inst.pidfile), "-daemonize"]
    # The guest gets the user name and the public key, never the private key.
    assert "name=opt/io.cityward/user,string=robot" in args
    assert f"name=opt/io.cityward/authorized_keys,file={inst.key}.pub" in args
    assert f"file={inst.key}," not in joined and not joined.endswith(str(inst.key))
    assert "systemd.hostname=cw-vm-1" in vm.kernel_cmdline(spec) and "console=ttyS0" in vm.kernel_cmdline(spec)


def test_ssh_logs_in_with_the_instance_key_in_batch_mode(tmp_path):
    inst = _instance(tmp_path)
    args = vm.ssh_args(inst, "robot", 2240)
    assert args[:5] == ["ssh", "-i", str(inst.key), "-p", "2240"]
    assert "BatchMode=yes" in args and "IdentitiesOnly=yes" in args
    assert args[-1] == "robot@127.0.0.1"


@pytest.mark.parametrize(("spec", "message"), [
    (vm.VmSpec(name="Bad_Name"), "VM name"),
    (vm.VmSpec(name="x" * 41), "VM name"),
    (vm.VmSpec(user="root"), "other than root"),
    (vm.VmSpec(user="a b"), "VM user"),
    (vm.VmSpec(port=70000), "port 70000"),
])
def test_bad_specs_are_refused_before_anything_runs(spec, message):
    with pytest.raises(CitywardError, match=message):
        spec.check()


def test_free_port_is_on_loopback():
    port = vm.free_port()
    assert 1024 <= port <= 65535


def test_status_of_unknown_and_stopped_instances(cache_home):
    assert vm.status("cw-none") == [{"name": "cw-none", "state": "absent"}]
    inst = vm.Instance(vm.instance_dir("cw-old"))
    inst.folder.mkdir(parents=True)
    inst.record.write_text(json.dumps({"port": 2240, "user": "robot", "image": "0123456789abcdef"}))
    inst.pidfile.write_text("1\n")  # pid 1 is not our QEMU: the instance is stopped, never "running"
    (row,) = vm.status()
    assert row["state"] == "stopped" and row["port"] == 2240 and row["identity_file"] == str(inst.key)


def test_down_removes_a_stopped_instance_and_tolerates_a_missing_one(cache_home, capsys):
    inst = vm.Instance(vm.instance_dir("cw-old"))
    inst.folder.mkdir(parents=True)
    inst.overlay.write_bytes(b"")
    vm.down("cw-old")
    assert not inst.folder.exists()
    vm.down("cw-old")
    assert "nothing to do" in capsys.readouterr().err


def test_cli_status_json_and_exit_code(capsys):
    assert main(["lab", "vm", "status", "--name", "cw-none", "--format", "json"]) == 1
    assert json.loads(capsys.readouterr().out) == [{"name": "cw-none", "state": "absent"}]


def test_cli_up_defaults_and_bad_name_is_one_clear_line(capsys):
    args = build_parser().parse_args(["lab", "vm", "up"])
    assert (args.name, args.user, args.port, args.memory, args.cpus) == ("cityward-vm", "cityward-automation", 0,
                                                                         2048, 2)
    assert main(["lab", "vm", "down", "--name", "Bad Name"]) == 2
    assert "VM name" in capsys.readouterr().err

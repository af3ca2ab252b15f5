"""The execution environment: the definition a connected shop builds with ansible-builder
(awx/execution-environment.yml and its requirement files), and the offline twin `cityward lab ee`
builds with Podman from the same files."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from cityward import cli
from cityward.errors import CitywardError
from cityward.lab import ee

ROOT = Path(__file__).resolve().parents[2]
AWX = ROOT / "awx"
DEFINITION = yaml.safe_load((AWX / "execution-environment.yml").read_text())
VERSION = yaml.safe_load((ROOT / "galaxy.yml").read_text())["version"]
REQUIREMENT_FILES = ("requirements.yml", "requirements.txt", "bindep.txt")


@pytest.fixture(scope="module")
def context(tmp_path_factory) -> Path:
    """The build context `ansible-builder create` makes from the definition."""
    out = tmp_path_factory.mktemp("ee") / "context"
    definition = AWX / "execution-environment.yml"
    cmd = [sys.executable, "-m", "ansible_builder", "create", "-f", str(definition), "-c", str(out)]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def _stages(containerfile: str) -> dict[str, str]:
    """The stages of a multi-stage Containerfile by name (`FROM ... AS name`)."""
    parts = re.split(r"^FROM \S+ AS (\w+)$", containerfile, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_the_context_holds_the_requirement_files(context):
    for name in REQUIREMENT_FILES:
        assert (context / "_build" / name).read_bytes() == (AWX / name).read_bytes(), name


def test_the_containerfile_installs_collections_python_requirements_and_system_packages(context):
    text = (context / "Containerfile").read_text()
    stages = _stages(text)
    assert list(stages) == ["base", "galaxy", "builder", "final"]
    assert f'ARG EE_BASE_IMAGE="{DEFINITION["images"]["base_image"]["name"]}"' in text
    assert f'ARG PYCMD="{DEFINITION["dependencies"]["python_interpreter"]["python_path"]}"' in text
    assert 'ARG PKGMGR="/usr/bin/microdnf"' in text
    # ansible-core and ansible-runner, as the definition pins them, into the base every stage starts from.
    deps = DEFINITION["dependencies"]
    refs = f'{deps["ansible_core"]["package_pip"]} {deps["ansible_runner"]["package_pip"]}'
    assert f'ARG ANSIBLE_INSTALL_REFS="{refs}"' in text
    assert "pip install --no-cache-dir $ANSIBLE_INSTALL_REFS" in stages["base"]
    # The galaxy requirements, into the collection path the final image gets.
    assert re.search(r"ansible-galaxy collection install .*-r requirements\.yml "
                     r"--collections-path \"/usr/share/ansible/collections\"", stages["galaxy"])
    assert "COPY --from=galaxy /usr/share/ansible /usr/share/ansible" in stages["final"]
    # The Python requirements and the bindep packages, resolved in the builder, installed in the final image.
    assert "introspect --user-pip=requirements.txt --user-bindep=bindep.txt" in stages["builder"]
    assert "RUN /output/scripts/assemble" in stages["builder"]
    assert "RUN /output/scripts/install-from-bindep" in stages["final"]
    # ansible-runner's image layout: /runner for an arbitrary uid of group 0, user 1000, dumb-init.
    final = stages["final"]
    assert "WORKDIR /runner" in final and "USER 1000" in final and "chgrp 0 /runner" in final
    assert "pip install --no-cache-dir 'dumb-init==" in final
    assert final.rstrip().endswith('ENTRYPOINT ["/opt/builder/bin/entrypoint", "dumb-init"]\nCMD ["bash"]')
    assert (context / "_build" / "scripts" / "entrypoint").is_file()


def test_the_definition_installs_this_release_and_an_ssh_client():
    collections = yaml.safe_load((AWX / "requirements.yml").read_text())["collections"]
    assert {"name": "cityward.hardening", "version": VERSION} in collections
    assert f"cityward=={VERSION}" in (AWX / "requirements.txt").read_text().splitlines()
    bindep = (AWX / "bindep.txt").read_text()
    assert "openssh-clients [platform:rpm]" in bindep and "openssh-client [platform:dpkg]" in bindep


def test_the_ee_carries_lynis_from_debian_or_from_epel(context):
    """Lynis for the audit's scanners (CW-GOV-07): Debian's package, or EPEL's on UBI, whose
    repository the final image gets before it installs bindep.txt's packages (not bindep's `epel`
    profile, which ansible-builder installs on CentOS images only)."""
    bindep = (AWX / "bindep.txt").read_text().splitlines()
    assert "lynis [platform:dpkg]" in bindep and "lynis [platform:rpm]" in bindep
    assert not [line for line in bindep if re.search(r"\[.*\bepel\b", line)]
    final = _stages((context / "Containerfile").read_text())["final"]
    epel = final.index("rpm -i https://dl.fedoraproject.org/pub/epel/epel-release-latest-9.noarch.rpm")
    assert final.index("rpm --import https://dl.fedoraproject.org/pub/epel/RPM-GPG-KEY-EPEL-9") < epel
    assert epel < final.index("RUN /output/scripts/install-from-bindep")


def test_the_awx_folder_names_nothing_outside_itself():
    """A shop gets awx/ alone (in the collection, or copied): every file the definition names is
    next to it, and no requirement is a path into a checkout."""
    deps = DEFINITION["dependencies"]
    for key in ("galaxy", "python", "system"):
        assert "/" not in deps[key] and (AWX / deps[key]).is_file(), key
    assert "additional_build_files" not in DEFINITION
    for name in REQUIREMENT_FILES:
        lines = [line for line in (AWX / name).read_text().splitlines() if line.strip() and not line.startswith("#")]
        assert not [line for line in lines if re.search(r"\.\./|file:|(^|\s)/|^-[re]\b|source:", line)], name


# --- cityward lab ee: the same files, built offline on the Debian image -------------------------

def _wheel(path: Path, files: dict[str, bytes], date=(2026, 1, 1, 0, 0, 0)) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=date), data)
    return path


MANIFEST = b'{"collection_info": {"dependencies": {"ansible.posix": ">=1.5.0", "containers.podman": ">=1.10.0"}}}'


def test_the_lab_ee_reads_the_same_requirements():
    definition = ee.read_definition(AWX)
    names = [re.split(r"[<>=!~ ]", r)[0] for r in definition.python]
    assert "cityward" not in names, "the cityward wheel built from the checkout replaces the released one"
    assert {"ssh-audit", "ansible-core", "ansible-runner"} <= set(names)
    assert definition.packages == ("openssh-client", "lynis")
    assert definition.collections == ("cityward.hardening",)


@pytest.mark.parametrize(("line", "wanted"), [
    ("openssh-client [platform:dpkg]", True),
    ("openssh-clients [platform:rpm]", False),
    ("git", True),
    ("libxml2-dev [platform:dpkg test]", False),
    ("gcc [!platform:dpkg]", False),
    ("rsync [platform:rpm platform:debian]", True),
    ("lynis [platform:dpkg]", True),
    ("lynis [platform:rpm]", False),
    ("lynis [platform:rpm epel]", False),
])
def test_bindep_entries_for_debian(line, wanted):
    assert (ee.dpkg_packages(f"# comment\n{line}\n") == [line.split()[0]]) is wanted


def test_a_requirement_the_lab_cannot_read_is_one_line():
    with pytest.raises(CitywardError, match=r"^x/requirements\.txt, line 2: '-r other\.txt' is not a requirement"):
        ee.python_requirements("cityward==1\n-r other.txt\n", "x/requirements.txt")


def test_the_wheel_hash_follows_the_content_not_the_timestamps(tmp_path):
    files = {"a.py": b"print(1)\n", "ansible_collections/cityward/hardening/MANIFEST.json": MANIFEST}
    one = ee.wheel_digest(_wheel(tmp_path / "one.whl", files))
    assert one == ee.wheel_digest(_wheel(tmp_path / "two.whl", files, date=(2026, 6, 1, 12, 0, 0)))
    assert one != ee.wheel_digest(_wheel(tmp_path / "three.whl", {**files, "a.py": b"print(2)\n"}))


def test_the_lab_containerfile_has_the_ee_layout_and_never_reaches_an_index(tmp_path):
    definition = ee.read_definition(AWX)
    wheel = _wheel(tmp_path / f"cityward-{VERSION}-py3-none-any.whl",
                   {"ansible_collections/cityward/hardening/MANIFEST.json": MANIFEST})
    text = ee.containerfile(definition, wheel, "localhost/cityward-debian:bookworm")
    assert text.startswith("FROM localhost/cityward-debian:bookworm\n")
    assert re.search(r"apt-get install -y -q --no-install-recommends dumb-init lynis openssh-client python3-venv", text)
    installs = [line for line in text.splitlines() if "pip install" in line]
    assert len(installs) == 2 and all("--no-index" in line for line in installs)
    assert f"/output/cityward/{wheel.name} ssh-audit==2.5.0 'ansible-core>=2.19,<2.20'" in text
    for collection in ("cityward.hardening", "ansible.posix", "containers.podman"):
        assert f"ansible-galaxy collection list {collection} " in text
    assert "HOME=/runner" in text and "WORKDIR /runner\nUSER 1000\n" in text
    assert text.rstrip().endswith('ENTRYPOINT ["/usr/bin/dumb-init"]\nCMD ["bash"]')
    # The recipe's hash follows the definition's files as well as the Containerfile and the wheel.
    digest = ee.recipe_digest(text, wheel, definition, "base1")
    assert digest == ee.recipe_digest(text, wheel, definition, "base1")
    assert digest != ee.recipe_digest(text, wheel, definition, "base2")
    changed = ee.Definition(**{**definition.__dict__, "files": (*definition.files, ("bindep.txt", b"curl\n"))})
    assert digest != ee.recipe_digest(text, wheel, changed, "base1")


def test_a_machine_without_podman_is_told_what_to_do_before_anything_starts(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert cli.main(["lab", "ee"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "podman" in err and "apt-get install -y podman runc" in err and "ansible-builder" in err
    assert not (tmp_path / "cache").exists(), "nothing was built or downloaded"


@pytest.mark.parametrize(("name", "message"), [
    ("missing.whl", "no such wheel"),
    ("notes.txt", "not a wheel"),
    ("other-1.0-py3-none-any.whl", "not a cityward wheel"),
])
def test_a_wheel_that_is_not_cityward_is_one_line(tmp_path, name, message):
    if name != "missing.whl":
        (tmp_path / name).write_bytes(b"")
    with pytest.raises(CitywardError, match=message):
        ee.wheel_version(tmp_path / name)
    assert ee.wheel_version(_wheel(tmp_path / "cityward-1.2.3-py3-none-any.whl", {})) == "1.2.3"

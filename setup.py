"""The wheel carries two things: the `cityward` package (src/cityward) and the Ansible collection
cityward.hardening, installed as `ansible_collections/cityward/hardening` next to it (as the
`ansible` package ships its collections), where ansible-core finds it and the package reads the
catalog and the roles' files. The collection in the wheel is exactly what `ansible-galaxy
collection build` makes from this folder (galaxy.yml's build_ignore decides), and the version of
both is galaxy.yml's. pyproject.toml holds everything else."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import yaml
from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
GALAXY = yaml.safe_load((ROOT / "galaxy.yml").read_text(encoding="utf-8"))


class BuildPyWithCollection(build_py):
    """build_py, plus the collection as ansible-galaxy builds it. An editable install skips it:
    there scripts/bootstrap.sh links the checkout in as the collection."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "ansible_collections" / GALAXY["namespace"] / GALAXY["name"]
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([sys.executable, "-m", "ansible.cli.galaxy", "collection", "build", "--force",
                            "--output-path", tmp, str(ROOT)], check=True, stdout=subprocess.DEVNULL)
            tarball = next(Path(tmp).glob("*.tar.gz"))
            with tarfile.open(tarball) as archive:
                archive.extractall(target, filter="data")


setup(version=GALAXY["version"], cmdclass={"build_py": BuildPyWithCollection})

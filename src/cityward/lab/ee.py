"""`cityward lab ee`: an execution environment (EE) built with Podman on the offline Debian lab
image, for machines that reach no container registry (ansible-builder only builds on RPM-based
images pulled from one).

It holds what awx/execution-environment.yml gives the image ansible-builder makes, read from that
definition and its requirement files: the Python requirements, with the cityward wheel built from
this checkout in place of the released one (the wheel carries the collection cityward.hardening,
where Ansible finds it, and pulls in ansible, whose collections include cityward.hardening's
dependencies), ansible-core and ansible-runner, and the Debian packages of bindep.txt. Its layout
is ansible-builder's: WORKDIR and HOME /runner, writable by group 0, user 1000 (here with a
passwd entry whose home is /runner), dumb-init as the entrypoint (Debian's package instead of the
pip one). The container never reaches PyPI: the wheels are downloaded on this machine and
installed inside with `pip install --no-index`.

Like the lab images (cityward.lab.image), the image carries the hash of its recipe (Containerfile,
wheel, requirement files, base image) in a label, and a build is skipped while the label is current.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shlex
import shutil
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import yaml
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from cityward.errors import CitywardError
from cityward.lab.image import LABEL, build_image, current_digest
from cityward.lab.podman import podman
from cityward.lab.tools import ensure_commands, run_step
from cityward.paths import cache_dir
from cityward.resources import collection_root

BASE_RELEASE = "bookworm"
IMAGE = "localhost/cityward-ee"
DEFINITION = Path("awx") / "execution-environment.yml"
# The Python environment of the EE: Debian's Python in a virtualenv (Debian's own packages in
# /usr/lib/python3 stay as apt left them), first on PATH, so ansible_playbook_python is its python.
VENV = "/opt/cityward-ee"
# What this Debian build needs beyond bindep.txt: the virtualenv, and dumb-init as PID 1.
OWN_PACKAGES = ("python3-venv", "dumb-init")
COLLECTION_MANIFEST = "ansible_collections/cityward/hardening/MANIFEST.json"
# Not copied when the wheel is built from a checkout: version control, virtualenvs, caches and
# earlier builds (the collection in the wheel leaves them out anyway: galaxy.yml's build_ignore).
NOT_SOURCE = (".git", ".venv", ".cache", ".ansible", "build", "dist", "*.egg-info", "__pycache__",
              ".pytest_cache", ".ruff_cache", ".hypothesis", "reports")
NO_PODMAN = ("; or, where a container registry is reachable, build awx/execution-environment.yml with "
             "ansible-builder instead (docs/awx-ee.md)")


def _say(msg: str) -> None:
    print(f"cityward lab ee: {msg}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Definition:
    """What awx/execution-environment.yml and its requirement files put into an EE."""

    folder: Path
    python: tuple[str, ...]  # requirement specifiers, the cityward wheel's own line left out
    packages: tuple[str, ...]  # Debian packages (bindep's dpkg platform)
    collections: tuple[str, ...]  # collections of the galaxy requirements
    files: tuple[tuple[str, bytes], ...]  # (name, content) of the definition and its files


def dpkg_packages(bindep: str) -> list[str]:
    """The packages a bindep file asks for on Debian by default: entries without a platform selector
    or with dpkg's, and without another profile (such as `test`, or ansible-builder's `epel`)."""
    wanted = {"platform:dpkg", "platform:debian"}
    packages = []
    for raw in bindep.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, _, rest = line.partition(" ")
        selectors = rest.strip().strip("[]").split()
        positive = [s for s in selectors if not s.startswith("!")]
        negative = {s[1:] for s in selectors if s.startswith("!")}
        platforms = [s for s in positive if s.startswith("platform:")]
        if negative & wanted or (platforms and not wanted & set(platforms)) or len(platforms) < len(positive):
            continue
        packages.append(name)
    return packages


def python_requirements(text: str, where: str) -> list[str]:
    """The requirement specifiers of a requirements.txt, without cityward's own (a wheel replaces it)."""
    found = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            raise CitywardError(f"{where}, line {number}: {line!r} is not a requirement specifier "
                                "(pip options and file references are not supported here)") from None
        if canonicalize_name(requirement.name) != "cityward":
            found.append(line)
    return found


def read_definition(folder: Path) -> Definition:
    """Read an ansible-builder v3 definition (execution-environment.yml) and its requirement files."""
    path = folder / DEFINITION.name
    if not path.is_file():
        raise CitywardError(f"{path}: no execution environment definition here")
    definition = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    deps = definition.get("dependencies") or {}
    files = [(DEFINITION.name, path.read_bytes())]
    texts = {}
    for key in ("python", "system", "galaxy"):
        if not isinstance(deps.get(key), str):
            raise CitywardError(f"{path}: dependencies.{key} must name a file next to it")
        source = folder / deps[key]
        if not source.is_file():
            raise CitywardError(f"{path}: dependencies.{key}: {source} does not exist")
        texts[key] = source.read_text(encoding="utf-8")
        files.append((deps[key], source.read_bytes()))
    pinned = [deps.get(key, {}).get("package_pip") for key in ("ansible_core", "ansible_runner")]
    if not all(pinned):
        raise CitywardError(f"{path}: dependencies.ansible_core and ansible_runner need a package_pip")
    galaxy = yaml.safe_load(texts["galaxy"]) or {}
    collections = [c["name"] if isinstance(c, dict) else str(c) for c in galaxy.get("collections") or []]
    return Definition(
        folder=folder,
        python=tuple(python_requirements(texts["python"], str(folder / deps["python"])) + pinned),
        packages=tuple(dpkg_packages(texts["system"])),
        collections=tuple(collections),
        files=tuple(files),
    )


def wheel_digest(wheel: Path) -> str:
    """A hash of what a wheel holds (names and contents), not of the zip: two builds of the same
    source differ only in their files' timestamps."""
    digest = hashlib.sha256()
    with zipfile.ZipFile(wheel) as archive:
        for name in sorted(archive.namelist()):
            digest.update(name.encode() + b"\0" + archive.read(name) + b"\0")
    return digest.hexdigest()


def collection_dependencies(wheel: Path) -> list[str]:
    """The collections cityward.hardening depends on, from the manifest of the one in the wheel."""
    with zipfile.ZipFile(wheel) as archive:
        try:
            manifest = json.loads(archive.read(COLLECTION_MANIFEST))
        except KeyError:
            raise CitywardError(f"{wheel.name}: no collection cityward.hardening in this wheel") from None
    return sorted(manifest["collection_info"].get("dependencies") or {})


def containerfile(definition: Definition, wheel: Path, base: str) -> str:
    """The Containerfile of the lab EE. Its build context holds the wheels of the dependencies in
    wheels/ and the cityward wheel in cityward/, installed in two steps so that a new cityward
    wheel with the same dependencies reuses the layer of the dependencies."""
    packages = " ".join(sorted({*OWN_PACKAGES, *definition.packages}))
    requirements = " ".join(shlex.quote(r) for r in (f"/output/cityward/{wheel.name}", *definition.python))
    collections = sorted({*definition.collections, *collection_dependencies(wheel)})
    checks = " && ".join(["ansible-runner --version", "python -m cityward --version",
                          *(f"ansible-galaxy collection list {c} >/dev/null" for c in collections)])
    return f"""\
FROM {base}
USER root
RUN apt-get update -q \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends {packages} \\
 && apt-get clean && rm -rf /var/lib/apt/lists/*
COPY wheels/ /output/wheels/
RUN python3 -m venv {VENV} \\
 && {VENV}/bin/pip install --no-index --no-cache-dir /output/wheels/*.whl \\
 && rm -rf /output
COPY cityward/ /output/cityward/
RUN {VENV}/bin/pip install --no-index --no-cache-dir {requirements} \\
 && rm -rf /output
ENV PATH={VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/runner
RUN useradd --uid 1000 --gid 0 --home-dir /runner --no-create-home --shell /bin/bash runner \\
 && mkdir -p /runner && chgrp 0 /runner && chmod -R ug+rwx /runner
WORKDIR /runner
USER 1000
RUN {checks}
LABEL ansible-execution-environment=true
ENTRYPOINT ["/usr/bin/dumb-init"]
CMD ["bash"]
"""


def recipe_digest(text: str, wheel: Path, definition: Definition, base_digest: str | None) -> str:
    """The recipe's hash: the Containerfile, the wheel's content, the definition's files, the base's recipe."""
    digest = hashlib.sha256(text.encode())
    digest.update(wheel_digest(wheel).encode())
    for name, content in definition.files:
        digest.update(name.encode() + b"\0" + content + b"\0")
    digest.update((base_digest or "").encode())
    return digest.hexdigest()[:16]


def ensure_podman() -> None:
    """Podman and runc (installed from Debian's packages where possible), or one line saying what to do."""
    try:
        ensure_commands("podman", "runc")
    except CitywardError as exc:
        raise CitywardError(f"{exc}{NO_PODMAN}") from None


def source_tree() -> Path:
    """The cityward checkout the wheel is built from: the collection root, when it is one."""
    root = collection_root().resolve()
    if not ((root / "setup.py").is_file() and (root / "pyproject.toml").is_file()):
        raise CitywardError(f"{root}: the installed collection is not a cityward checkout, so no wheel can be built "
                            "from it: pass --wheel with a cityward wheel, or run from a checkout")
    return root


def build_wheel(source: Path, work: Path) -> Path:
    """`python -m build --wheel --no-isolation` on a copy of the checkout (the checkout stays clean)."""
    if importlib.util.find_spec("build") is None:
        raise CitywardError("the Python package 'build' is needed to build the cityward wheel: pip install build "
                            "(it comes with cityward[dev]), or pass --wheel with a cityward wheel")
    copy = work / "source"
    shutil.copytree(source, copy, symlinks=True, ignore=shutil.ignore_patterns(*NOT_SOURCE))
    _say(f"building the cityward wheel from {source}")
    run_step([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(work / "dist"), str(copy)],
             "building the cityward wheel")
    return next((work / "dist").glob("cityward-*.whl"))


def target_python(base: str) -> tuple[str, str, str]:
    """(Python X.Y, machine, glibc version) of the base image: the wheels are chosen for it."""
    out = podman("run", "--rm", "--name", f"cw-ee-probe-{os.getpid()}", "--network", "none", base, "python3", "-c",
                 "import platform, sys; print('%d.%d' % sys.version_info[:2], platform.machine(), "
                 "platform.libc_ver()[1])").stdout.decode().split()
    return out[0], out[1], out[2]


def download_wheels(requirements: list[str], dest: Path, target: tuple[str, str, str]) -> None:
    """Every wheel the requirements resolve to for the target Python, from this machine's pip
    configuration (the container never reaches PyPI)."""
    version, machine, glibc = target
    platforms = [f"manylinux2014_{machine}"] + [f"manylinux_2_{minor}_{machine}"
                                                 for minor in range(17, int(glibc.split(".")[1]) + 1)]
    _say(f"downloading the wheels for Python {version} on {machine} into {dest}")
    run_step([sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(dest), "--only-binary=:all:",
              "--implementation", "cp", "--python-version", version,
              *(arg for p in platforms for arg in ("--platform", p)), *requirements],
             "pip download (the EE's wheels)")


def _image_id(image: str) -> str | None:
    result = podman("image", "inspect", "--format", "{{.Id}}", image, check=False)
    return result.stdout.decode().strip() or None if result.returncode == 0 else None


def wheel_version(wheel: Path) -> str:
    """The version of a cityward wheel, from its file name; anything else is one clear line."""
    if not wheel.is_file():
        raise CitywardError(f"{wheel}: no such wheel")
    try:
        name, version, _, _ = parse_wheel_filename(wheel.name)
    except InvalidWheelFilename:
        raise CitywardError(f"{wheel}: not a wheel (name-version-python-abi-platform.whl)") from None
    if name != "cityward":
        raise CitywardError(f"{wheel.name}: not a cityward wheel")
    return str(version)


def build_ee(force: bool = False, wheel: Path | None = None) -> dict:
    """Build the lab EE unless its image has the current recipe; return what was done."""
    ensure_podman()
    if wheel is not None:
        wheel_version(wheel)
    source = source_tree() if wheel is None else None
    definition = read_definition((source or collection_root()) / DEFINITION.parent)
    base, _ = build_image(BASE_RELEASE)
    (cache_dir() / "ee").mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="build-", dir=cache_dir() / "ee"))
    try:
        if source is not None:
            wheel = build_wheel(source, work)
        image = f"{IMAGE}:{wheel_version(wheel)}"
        text = containerfile(definition, wheel, base)
        digest = recipe_digest(text, wheel, definition, current_digest(base))
        if not force and current_digest(image) == digest:
            _say(f"{image} is up to date (recipe {digest}), nothing to do")
            return {"image": image, "built": False, "recipe": digest, "base": base}
        context = work / "context"
        wheels = context / "wheels"
        wheels.mkdir(parents=True)
        download_wheels([str(wheel), *definition.python], wheels, target_python(base))
        (context / "cityward").mkdir()
        (wheels / wheel.name).replace(context / "cityward" / wheel.name)
        (context / "Containerfile").write_text(text, encoding="utf-8")
        previous = _image_id(image)
        _say(f"building {image} on {base} (podman build)")
        result = podman("build", "--label", f"{LABEL}={digest}", "-t", image, "-f", str(context / "Containerfile"),
                        str(context), check=False)
        if result.returncode != 0:
            tail = (result.stdout + result.stderr).decode(errors="replace").strip().splitlines()[-8:]
            raise CitywardError("podman build of the EE failed:\n" + "\n".join(tail))
        if previous and previous != _image_id(image):
            # The image this one replaces, now untagged (kept when a container still uses it).
            podman("rmi", previous, check=False)
        _say(f"built {image} (recipe {digest})")
        return {"image": image, "built": True, "recipe": digest, "base": base}
    finally:
        shutil.rmtree(work, ignore_errors=True)


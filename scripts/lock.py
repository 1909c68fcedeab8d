"""The lock files in requirements/: exact versions, with hashes, of everything each role installs,
resolved by uv from pyproject.toml for the images' platform (Linux x86_64, CPython 3.11), wheels
only, so that no install ever builds a dependency from source.

    python scripts/lock.py            # `make lock`: refresh them (kept pins stay where allowed)
    python scripts/lock.py --upgrade  # `make lock-upgrade`: everything to its newest allowed
    python scripts/lock.py --check    # exit 1 naming each lock that pyproject.toml disagrees with

Roles (ROLES): `dev` is the test environment, the `dev` extra (which holds every other extra
but `bench`) plus the build-system requirements, as `make install` builds the project without build
isolation; `api` is the `api` extra alone, without the base dependencies, so the API image has
no lxml; `worker` is the base dependencies with the `worker` and `flower` extras; `build` is the
build-system requirements the images build the project's wheel with; `bench` is the `bench`
extra, the dense benchmark's peers, installed by `make bench` on top of `dev`. `dev` is
resolved first and constrains the others: the images run exactly the versions the tests ran
(and the extension is compiled against the lxml it runs with).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = REPO / "pyproject.toml"
LOCK_DIR = Path("requirements")  # relative: the lock files' annotations name it so
PYTHON_VERSION = "3.11"
PLATFORM = "x86_64-manylinux_2_28"  # python:3.11-slim (Debian, glibc >= 2.28) on x86_64


@dataclass(frozen=True)
class Role:
    extras: tuple[str, ...]
    base: bool = False  # the base dependencies (the converter: lxml, orjson, PyYAML)
    build: bool = False  # pyproject's [build-system] requires


ROLES = {
    "dev": Role(("dev",), base=True, build=True),
    "api": Role(("api",)),
    "worker": Role(("worker", "flower"), base=True),
    "build": Role((), build=True),
    "bench": Role(("bench",)),  # make bench's peers (bench/peers.py), on top of dev
}
CONSTRAINED_BY = "dev"


def requirements(role: Role, pyproject: Path = PYPROJECT) -> list[str]:
    """A role's direct requirements as pyproject.toml states them; references to the project's
    own extras (`its-convert-xml[service]`) are expanded, so the project itself is never one."""
    data = tomllib.loads(pyproject.read_text())
    project = data["project"]
    own = re.compile(rf"^{re.escape(project['name'])}\[(?P<extras>[^\]]+)\]$")
    optional = project.get("optional-dependencies", {})
    found: list[str] = list(project.get("dependencies", [])) if role.base else []
    if role.build:
        found += [r for r in data["build-system"]["requires"] if r not in found]
    pending, seen = list(role.extras), set()
    while pending:
        extra = pending.pop(0)
        if extra in seen:
            continue
        if extra not in optional:
            raise SystemExit(f"no extra {extra!r} in {pyproject.name}")
        seen.add(extra)
        for requirement in optional[extra]:
            match = own.match(requirement.replace(" ", ""))
            if match:
                pending.extend(match["extras"].split(","))
            elif requirement not in found:
                found.append(requirement)
    return found


def lock_path(name: str) -> Path:
    return LOCK_DIR / f"{name}.txt"


def compile_role(name: str, workdir: Path, upgrade: bool) -> None:
    """uv pip compile into workdir/requirements/NAME.txt, the role's requirements on stdin. The
    file's current pins are kept unless pyproject.toml no longer allows them (or `upgrade`)."""
    command = [sys.executable, "-m", "uv", "pip", "compile", "-",
               "--output-file", str(lock_path(name)), "--generate-hashes",
               "--only-binary", ":all:", "--python-version", PYTHON_VERSION,
               "--python-platform", PLATFORM, "--custom-compile-command", "make lock", "--quiet"]
    if name != CONSTRAINED_BY:
        command += ["--constraint", str(lock_path(CONSTRAINED_BY))]
    if upgrade:
        command.append("--upgrade")
    done = subprocess.run(command, input="\n".join(requirements(ROLES[name])) + "\n", text=True,
                          cwd=workdir, capture_output=True)
    if done.returncode != 0:
        raise SystemExit(f"{lock_path(name)}: uv pip compile failed\n{done.stderr}")


def resolve(upgrade: bool) -> dict[str, str]:
    """Every role resolved again, from a copy of its lock: name -> the lock file's new text. The
    copies sit in a scratch directory laid out like the repository, so that the files' notes
    (`# via -c requirements/dev.txt`) are the same; the constraining role goes first, then the
    others side by side (uv mostly waits on the network)."""
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        (workdir / LOCK_DIR).mkdir()
        for name in ROLES:
            if (REPO / lock_path(name)).exists():
                shutil.copyfile(REPO / lock_path(name), workdir / lock_path(name))
        compile_role(CONSTRAINED_BY, workdir, upgrade)
        with ThreadPoolExecutor() as pool:
            for future in [pool.submit(compile_role, name, workdir, upgrade)
                           for name in ROLES if name != CONSTRAINED_BY]:
                future.result()
        return {name: (workdir / lock_path(name)).read_text() for name in ROLES}


def lock(upgrade: bool = False) -> None:
    """Writes only the files that changed: an unchanged lock keeps its mtime, and so `make`'s
    installed venv stays up to date."""
    (REPO / LOCK_DIR).mkdir(exist_ok=True)
    for name, text in resolve(upgrade).items():
        path = REPO / lock_path(name)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            print(f"wrote {lock_path(name)}")


_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", re.MULTILINE)


def pins(text: str) -> dict[str, str]:
    """name -> version of every package a lock file pins (names normalised as pip does)."""
    return {re.sub(r"[-_.]+", "-", name).lower(): version for name, version in _PIN.findall(text)}


def stale() -> list[str]:
    """The locks whose pins a fresh resolution from pyproject.toml changes. Pins that still fit
    are kept, so a newer release upstream changes nothing; a requirement added, removed or
    narrowed does. Hashes are not compared: a release may gain files for other platforms."""
    fresh = resolve(upgrade=False)
    return [str(lock_path(name)) for name, text in fresh.items()
            if not (REPO / lock_path(name)).exists()
            or pins((REPO / lock_path(name)).read_text()) != pins(text)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="change nothing, exit 1 when stale")
    mode.add_argument("--upgrade", action="store_true", help="ignore the current pins")
    args = parser.parse_args(argv)
    if args.check:
        found = stale()
        for path in found:
            print(f"{path} disagrees with pyproject.toml: run `make lock`", file=sys.stderr)
        return 1 if found else 0
    lock(upgrade=args.upgrade)
    return 0


if __name__ == "__main__":
    sys.exit(main())

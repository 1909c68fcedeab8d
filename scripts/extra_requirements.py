"""Print what pyproject.toml's optional extras require, one requirement a line.

    python scripts/extra_requirements.py api              # the API's packages only
    python scripts/extra_requirements.py --base worker    # plus the base dependencies

References to the project's own extras (`its-convert-xml[service]`) are expanded. Without
--base the converter's dependencies (lxml, ...) are left out: Dockerfile.api installs this list
and the project's wheel with --no-deps, so the API image carries no lxml. Reads only
pyproject.toml, so the images' dependency layers are rebuilt only when it changes.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def requirements(extras: list[str], base: bool, pyproject: Path = PYPROJECT) -> list[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    own = re.compile(rf"^{re.escape(project['name'])}\[(?P<extras>[^\]]+)\]$")
    optional = project.get("optional-dependencies", {})
    found: list[str] = list(project.get("dependencies", [])) if base else []
    pending, seen = list(extras), set()
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("extras", nargs="+")
    parser.add_argument("--base", action="store_true", help="include the base dependencies")
    args = parser.parse_args(argv)
    print("\n".join(requirements(args.extras, args.base)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

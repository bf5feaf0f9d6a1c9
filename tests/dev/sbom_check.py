#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""`./dev sbom`'s document names every direct dependency with its version.

usage: sbom_check.py ROOT SBOM.json   (with build/audit-venv's python, which
has the CycloneDX library; build/pbring built)

The direct dependencies come from their sources of truth, not from a list
here: ./dev's Debian packages (its sbom_apt function, over BUILD_APT and
TEST_APT), the require lines of go/go.mod, go/prom/go.mod and
go/otel/go.mod that are not "// indirect", and python/pyproject.toml's
[project] dependencies. Their versions are checked against what is
installed (dpkg-query), what go.mod says, and the pyproject's specifiers;
pbring's own against CMakeLists.txt and `build/pbring --version`
(pbr_version()). The document must be valid CycloneDX 1.6, and a broken
copy of it must not be (so that the validation is not a no-op).
"""
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from packaging.requirements import Requirement
from packaging.version import Version

ROOT, SBOM = Path(sys.argv[1]), Path(sys.argv[2])
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
    return cond


def go_direct(gomod):
    """(module, version) of the require lines not marked indirect."""
    out, block = [], False
    for line in gomod.read_text().splitlines():
        s = line.strip()
        if s.startswith("require ("):
            block = True
            continue
        if block and s == ")":
            block = False
            continue
        m = re.match(r"(?:require\s+)?(\S+)\s+(v\S+)(.*)$", s) \
            if block or s.startswith("require ") else None
        if m and "// indirect" not in m.group(3):
            out.append((m.group(1), m.group(2)))
    return out


doc_text = SBOM.read_text()
doc = json.loads(doc_text)
comps = doc["components"]
by_name = {}
for c in comps:
    by_name.setdefault(c["name"].lower(), []).append(c)
main = doc["metadata"]["component"]
root_deps = next((d["dependsOn"] for d in doc["dependencies"]
                  if d["ref"] == main["bom-ref"]), [])

# pbring itself.
cm = (ROOT / "CMakeLists.txt").read_text()
version = re.search(r"project\(pbring\s+VERSION\s+(\d+\.\d+\.\d+)", cm).group(1)
cli = subprocess.run([ROOT / "build/pbring", "--version"], capture_output=True,
                     text=True, check=True).stdout.split()
check(main["name"] == "pbring" and main["version"] == version,
      f"main component {main.get('name')} {main.get('version')}, want pbring {version}")
check(cli[:2] == ["pbring", version], f"pbring --version says {cli}, CMakeLists {version}")

# The Debian packages.
apt = subprocess.run(["bash", "-c", 'f=$1; set --; source "$f"; sbom_apt', "-", ROOT / "dev"],
                     capture_output=True, text=True, check=True).stdout.split("\n")
debs = [line.split()[0] for line in apt if line.strip()]
for want in ("libnanopb-dev", "nanopb", "liburcu-dev", "check", "libprotobuf-dev"):
    check(want in debs, f"./dev's sbom_apt lacks {want}")
for name in debs:
    v = subprocess.run(["dpkg-query", "-W", "-f=${Version}", name],
                       capture_output=True, text=True, check=True).stdout
    found = [c for c in by_name.get(name, []) if c.get("purl", "").startswith("pkg:deb/")]
    if check(found, f"no component for the Debian package {name}"):
        c = found[0]
        check(c.get("version") == v, f"{name}: version {c.get('version')}, installed {v}")
        check(c["purl"].startswith(f"pkg:deb/debian/{name}@{v}?arch="), f"{name}: purl {c['purl']}")
        check(c["bom-ref"] in root_deps, f"{name}: not a direct dependency of pbring")

# The Go modules: pbring's own, and their direct requirements.
go_seen = 0
for mod in ("go", "go/prom", "go/otel"):
    gomod = ROOT / mod / "go.mod"
    path = re.search(r"^module\s+(\S+)", gomod.read_text(), re.M).group(1)
    own = by_name.get(path.lower(), [])
    if check(own, f"no component for the Go module {path}"):
        check(own[0].get("version") == "v" + version, f"{path}: version {own[0].get('version')}")
        check(own[0]["bom-ref"] in root_deps, f"{path}: not a direct dependency of pbring")
    for dep, v in go_direct(gomod):
        if dep.startswith("github.com/pbring/pbring/"):
            continue  # our own module, replaced by ../
        go_seen += 1
        check(any(c.get("version") == v for c in by_name.get(dep.lower(), [])),
              f"{mod}/go.mod requires {dep} {v}: not in the SBOM with that version")
check(go_seen >= 3, f"only {go_seen} direct Go requirements found: go.mod not read?")
check(any(c.get("version") for c in by_name.get("google.golang.org/protobuf", [])),
      "google.golang.org/protobuf missing")

# The Python package and its dependencies.
pyproject = tomllib.loads((ROOT / "python/pyproject.toml").read_text())["project"]
py = [c for c in by_name.get("pbring", []) if c.get("purl", "").startswith("pkg:pypi/")]
if check(py, "no component for the Python package pbring"):
    check(py[0].get("version") == pyproject["version"] == version,
          f"Python pbring {py[0].get('version')}, pyproject {pyproject['version']}")
    check(py[0]["bom-ref"] in root_deps, "Python pbring: not a direct dependency of pbring")
for spec in pyproject.get("dependencies", []):
    req = Requirement(spec)
    found = [c for c in by_name.get(req.name.lower(), [])
             if c.get("purl", "").startswith("pkg:pypi/")]
    if check(found, f"no component for the Python dependency {req.name}"):
        v = found[0].get("version")
        check(v and Version(v) in req.specifier, f"{req.name} {v} does not satisfy {spec}")
check(any(c.get("purl", "").startswith("pkg:pypi/protobuf@") for c in comps),
      "Python protobuf missing")

# Every component has a version; the document is valid CycloneDX, and the
# validation can fail.
for c in comps:
    check(c.get("version"), f"{c['name']}: no version")
validator = JsonStrictValidator(SchemaVersion.V1_6)
check(validator.validate_str(doc_text) is None, "not valid CycloneDX 1.6")
broken = json.loads(doc_text)
broken["components"][0]["type"] = "no-such-type"
check(validator.validate_str(json.dumps(broken)) is not None,
      "the validator accepted a broken document")

if failures:
    print("sbom check: FAILED\n  " + "\n  ".join(failures), file=sys.stderr)
    sys.exit(1)
print(f"sbom check: ok: pbring {version}, {len(debs)} Debian packages, "
      f"{go_seen} direct Go requirements, {len(pyproject.get('dependencies', []))} "
      f"Python dependencies, {len(comps)} components")

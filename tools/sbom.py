#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The pieces of `./dev sbom` that are easier in Python.

  sbom.py pydeps PYPROJECT
      the [project] dependencies of a pyproject.toml, one a line (what the
      SBOM's Python environment installs)
  sbom.py merge ROOT OUT DEB-TSV PART.cdx.json...
      one CycloneDX 1.6 JSON document: pbring (the version of CMakeLists.txt,
      which must be include/pbring.h's) as the main component; the Debian
      packages of DEB-TSV (name, version, arch, scope, source per line) and
      the main component of each PART (the Go modules, the Python package)
      as its direct dependencies; every PART's components and dependency
      graph under them. Validated against the CycloneDX schema.
"""
import datetime
import json
import re
import sys
import tomllib
import uuid
from pathlib import Path

SPEC = "1.6"


def pbring_version(root):
    cm = (root / "CMakeLists.txt").read_text()
    m = re.search(r"project\(pbring\s+VERSION\s+(\d+\.\d+\.\d+)", cm)
    if not m:
        sys.exit("sbom: no project(pbring VERSION x.y.z) in CMakeLists.txt")
    h = (root / "include/pbring.h").read_text()
    parts = [re.search(rf"#define PBRING_VERSION_{p}\s+(\d+)", h) for p in
             ("MAJOR", "MINOR", "PATCH")]
    if not all(parts):
        sys.exit("sbom: include/pbring.h lacks PBRING_VERSION_MAJOR/MINOR/PATCH")
    hv = ".".join(p.group(1) for p in parts)
    if hv != m.group(1):
        sys.exit(f"sbom: CMakeLists.txt says {m.group(1)}, include/pbring.h {hv}")
    return hv


def deb_components(tsv, distro):
    comps = []
    for line in Path(tsv).read_text().splitlines():
        name, version, arch, scope, source = line.split("\t")
        purl = f"pkg:deb/debian/{name}@{version}?arch={arch}&distro={distro}"
        c = {"type": "library", "bom-ref": purl, "name": name,
             "version": version, "purl": purl, "scope": scope,
             "properties": [{"name": "pbring:source", "value": "debian"}]}
        if source and source != name:
            c["properties"].append({"name": "debian:source", "value": source})
        comps.append(c)
    return comps


def merge(root, out, deb_tsv, parts):
    version = pbring_version(root)
    distro = "debian-" + Path("/etc/debian_version").read_text().strip() \
        if Path("/etc/debian_version").exists() else "debian"
    main_ref = f"pkg:generic/pbring@{version}"
    components, deps, direct, tools = [], {}, [], []
    seen = set()

    def add(c):
        ref = c.get("bom-ref") or c.get("purl") or f"{c['name']}@{c.get('version')}"
        c["bom-ref"] = ref
        if ref not in seen:
            seen.add(ref)
            components.append(c)
        return ref

    for c in deb_components(deb_tsv, distro):
        direct.append(add(c))
    docs = [json.loads(Path(p).read_text()) for p in parts]
    # The parts' main components are pbring's own Go modules and Python
    # package: they are pbring's version. (From the tree, cyclonedx-gomod
    # gives a Go module no version, or a pseudo-version of the commit,
    # kept as a property; cyclonedx-py gives a generic bom-ref.)
    renames, own = {}, {}
    for doc in docs:
        top = doc["metadata"]["component"]
        old = top.get("bom-ref")
        if top.get("purl", "").startswith("pkg:golang/"):
            if top.get("version") and top["version"] != "v" + version:
                top.setdefault("properties", []).append(
                    {"name": "pbring:vcs-version", "value": top["version"]})
            top["version"] = "v" + version
            base, _, q = top["purl"].partition("?")
            top["purl"] = f"{base.split('@')[0]}@v{version}" + (f"?{q}" if q else "")
        if not top.get("purl") and top.get("name") == "pbring":
            top["purl"] = f"pkg:pypi/pbring@{version}"
        renames[old] = top["bom-ref"] = top["purl"]
        own[top["purl"]] = top
    for doc in docs:
        top = dict(doc["metadata"]["component"])
        top.pop("components", None)  # nested ones come in the list below
        direct.append(add(top))
        for c in doc.get("components", []):
            ref = renames.get(c.get("bom-ref"))
            add(dict(own[ref]) if ref else c)
        for d in doc.get("dependencies", []):
            ref = renames.get(d["ref"], d["ref"])
            deps.setdefault(ref, set()).update(
                renames.get(x, x) for x in d.get("dependsOn", []))
        t = doc.get("metadata", {}).get("tools", {})
        tools += t.get("components", []) if isinstance(t, dict) else []
    deps[main_ref] = set(direct)
    for ref in seen:
        deps.setdefault(ref, set())
    bom = {
        "bomFormat": "CycloneDX",
        "specVersion": SPEC,
        "serialNumber": f"urn:uuid:{uuid.uuid4()}",
        "version": 1,
        "metadata": {
            "timestamp": datetime.datetime.now(datetime.timezone.utc)
            .strftime("%Y-%m-%dT%H:%M:%SZ"),
            "tools": {"components": dedupe_tools(tools)},
            "component": {
                "type": "library", "bom-ref": main_ref, "name": "pbring",
                "version": version, "purl": main_ref,
                "description": "Protobuf messages between processes through "
                               "a ring of slots in POSIX shared memory",
                "licenses": [{"license": {"id": "MIT"}}],
            },
        },
        "components": components,
        "dependencies": [{"ref": r, "dependsOn": sorted(d & (seen | {main_ref}))}
                         for r, d in sorted(deps.items())],
    }
    text = json.dumps(bom, indent=1) + "\n"
    validate(text)
    Path(out).write_text(text)
    print(f"sbom: {out}: pbring {version}, {len(components)} components "
          f"({len(direct)} direct)")


def dedupe_tools(tools):
    out, seen = [], set()
    for t in tools:
        key = (t.get("name"), t.get("version"))
        if key not in seen:
            seen.add(key)
            out.append(t)
    return out


def validate(text):
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    err = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    if err:
        sys.exit(f"sbom: not valid CycloneDX {SPEC}: {err}")


def main(argv):
    if len(argv) == 3 and argv[1] == "pydeps":
        with open(argv[2], "rb") as f:
            print("\n".join(tomllib.load(f)["project"].get("dependencies", [])))
    elif len(argv) >= 5 and argv[1] == "merge":
        merge(Path(argv[2]), argv[3], argv[4], argv[5:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)

"""Regenerate ``pressreview/data/geo_hdf.json`` from the official administrative division.

Usage (npm is needed here only, never at runtime)::

    cd /tmp && npm pack @etalab/decoupage-administratif@6.0.0
    python scripts/make_geo.py /tmp/etalab-decoupage-administratif-6.0.0.tgz

The tarball is read in place (never commit it). The output holds:

- the Hauts-de-France région, its five départements, every commune
  (INSEE code, name, population, EPCI SIREN) and every EPCI (SIREN, name,
  kind, member communes);
- to recognise another region: every other région and département name, the
  other communes of at least ``--elsewhere-population`` inhabitants (name,
  département, population) and the other urban intercommunalities (name,
  département). Smaller places rarely carry a contrat de ville story on
  their own, and their names collide with ordinary words more often.
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
from pathlib import Path
from typing import Any

REGION = "32"
#: Intercommunalities of other regions shipped by name (those that carry most
#: contrats de ville): métropoles, communautés urbaines and d'agglomération,
#: the Greater Paris territories (EPT).
URBAN_KINDS = {"METRO", "MET69", "CU", "CA", "EPT"}
OUT = Path(__file__).resolve().parent.parent / "pressreview" / "data" / "geo_hdf.json"


def _member(tar: tarfile.TarFile, name: str) -> Any:
    f = tar.extractfile(f"package/{name}")
    if f is None:
        raise SystemExit(f"{name}: not in the tarball")
    return json.load(f)


def build(tarball: Path, elsewhere_population: int) -> dict[str, Any]:
    with tarfile.open(tarball) as tar:
        meta = _member(tar, "package.json")
        regions = _member(tar, "data/regions.json")
        departements = _member(tar, "data/departements.json")
        communes = _member(tar, "data/communes.json")
        epcis = _member(tar, "data/epci.json")
        epts = _member(tar, "data/ept.json")
    actual = [c for c in communes if c.get("type") == "commune-actuelle"]
    hdf_deps = sorted(d["code"] for d in departements if d.get("region") == REGION)
    epci_of: dict[str, str] = {}
    hdf_epci = []
    for e in sorted(epcis, key=lambda e: e["code"]):
        members = sorted(m["code"] for m in e["membres"])
        if not any(m[:2] in hdf_deps for m in members):
            continue
        for m in members:
            epci_of[m] = e["code"]
        hdf_epci.append(
            {"siren": e["code"], "name": e["nom"], "kind": e["type"], "members": members}
        )
    hdf_communes = [
        [c["code"], c["nom"], int(c.get("population") or 0), epci_of.get(c["code"])]
        for c in sorted(actual, key=lambda c: c["code"])
        if c.get("region") == REGION
    ]
    others = [
        [c["nom"], c["departement"], int(c.get("population") or 0)]
        for c in sorted(actual, key=lambda c: c["code"])
        if c.get("region") != REGION and int(c.get("population") or 0) >= elsewhere_population
    ]
    dep_of = {c["code"]: c["departement"] for c in actual}
    other_epci = []
    for e in sorted([*epcis, *epts], key=lambda e: e["code"]):
        if e["type"] not in URBAN_KINDS:
            continue
        deps = [dep_of.get(m["code"], "") for m in e["membres"]]
        if any(d in hdf_deps for d in deps):
            continue
        main = max(set(deps), key=deps.count) if deps else ""
        other_epci.append([e["nom"], main])
    return {
        "source": meta["name"],
        "version": meta["version"],
        "license": meta.get("license", ""),
        "generated_by": "scripts/make_geo.py",
        "elsewhere_population": elsewhere_population,
        "region": next(
            {"code": r["code"], "name": r["nom"]} for r in regions if r["code"] == REGION
        ),
        "departements": [
            {"code": d["code"], "name": d["nom"]} for d in departements if d["code"] in hdf_deps
        ],
        "communes": hdf_communes,
        "epci": hdf_epci,
        "elsewhere": {
            "regions": sorted(r["nom"] for r in regions if r["code"] != REGION),
            "departements": [
                [d["code"], d["nom"]] for d in departements if d.get("region") != REGION
            ],
            "communes": others,
            "epci": other_epci,
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tarball", type=Path, help="the file npm pack wrote")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--elsewhere-population", type=int, default=5000)
    args = parser.parse_args(argv)
    try:
        data = build(args.tarball, args.elsewhere_population)
    except (OSError, tarfile.TarError, KeyError, ValueError) as exc:
        print(f"{args.tarball}: cannot read the package: {exc}", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    # One line per record keeps the committed file's diffs readable.
    for key in ('],["', '},{"'):
        text = text.replace(key, key[:2] + "\n" + key[2:])
    args.out.write_text(text + "\n", encoding="utf-8")
    print(
        f"{args.out}: {len(data['communes'])} communes, {len(data['epci'])} EPCI, "
        f"{len(data['elsewhere']['communes'])} communes and "
        f"{len(data['elsewhere']['epci'])} intercommunalities elsewhere, "
        f"{args.out.stat().st_size // 1024} KiB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

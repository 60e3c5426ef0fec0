"""Contrat de ville classification: places, dates, rules, the labelled set, collect and CLI."""

# ruff: noqa: E501 - feed documents are clearer on one line per element

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fixtures_contract import ROOT, score
from pytest_httpserver import HTTPServer

from pressreview.collect import collect
from pressreview.collect.classify import Classifier
from pressreview.config import Config, load_config
from pressreview.contract import ContractClassifier
from pressreview.errors import ConfigError
from pressreview.frdates import find_dates
from pressreview.geo import load_geography
from pressreview.store import collect as q


@pytest.fixture(scope="module")
def shipped() -> Config:
    return load_config(ROOT / "feeds.yaml")


@pytest.fixture(scope="module")
def classifier(shipped: Config) -> Classifier:
    return Classifier(shipped)


def test_labelled_set_meets_the_targets() -> None:
    s = score()
    report = "\n".join(s.errors)
    assert s.items >= 150
    assert s.precision >= 0.95, report
    assert s.recall >= 0.95, report
    assert s.carrier_accuracy >= 0.95, report
    assert s.event_accuracy >= 0.90, report
    assert s.date_accuracy >= 0.90, report


def test_geography_is_the_official_division() -> None:
    geo = load_geography()
    assert geo.source == "@etalab/decoupage-administratif" and geo.version
    assert set(geo.departments) == {"02", "59", "60", "62", "80"}
    assert geo.communes["59350"].name == "Lille"
    assert geo.epci_of("59350") is not None and geo.epci_of("59350").siren == "200093201"  # type: ignore[union-attr]
    assert len(geo.communes) > 3700 and all(
        c.code[:2] in geo.departments for c in geo.communes.values()
    )
    assert "Val-d'Oise" in geo.other_departments.values()


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        # A commune names its EPCI and its département.
        ("Denain : le quartier attend", ["CA de la Porte du Hainaut", "Nord"]),
        # "œ" is "oe" everywhere.
        ("Cœur d'Ostrevent vote", ["CC Cœur d'Ostrevent", "Nord"]),
        ("Coeur d'Ostrevent vote", ["CC Cœur d'Ostrevent", "Nord"]),
        # Longer names of other regions win.
        ("Le Val-d'Oise signe", []),
        ("Saint-Quentin-en-Yvelines signe", []),
        ("Beaumont-sur-Oise et Clermont-Ferrand", []),
        # The former region is not two départements.
        ("Nord-Pas-de-Calais : trente ans de politique de la ville", []),
        # Outlets are not territories of the story.
        ("Un débat organisé par La Voix du Nord", []),
        ("Les quartiers Nord de Marseille", []),
        # Ordinary words.
        ("Une somme de 2 millions pour les associations", []),
        ("Un call center recrute", []),
        ("Envoyez votre dossier par mél", []),
        # Context acronyms need a place of their département.
        ("Le contrat unique d'agglomération (CUA) de la Région", []),
        ("La CUA et Arras", ["CU d'Arras", "Pas-de-Calais", "Arras"]),
        ("L'ARC à Compiègne", ["Agglomération de la Région de Compiègne", "Oise", "Compiègne"]),
        ("L'arc de la formation", []),
        ("La CAB et Boulogne-sur-Mer", ["CA du Boulonnais", "Pas-de-Calais", "Boulogne-sur-Mer"]),
        ("La CAB et Beauvais", ["CA du Beauvaisis", "Oise", "Beauvais"]),
        ("La CAB seule", []),
        ("Dans la Somme, à Abbeville", ["Somme", "Abbeville", "CA de la Baie de Somme"]),
        ("Rue de Paris, à Lens", ["Lens", "CA de Lens-Liévin", "Pas-de-Calais"]),
    ],
)
def test_territories_avoid_the_traps(
    classifier: Classifier, title: str, expected: list[str]
) -> None:
    assert sorted(classifier.territories(title)) == sorted(expected)


def test_french_dates_read_against_the_publication_date() -> None:
    pub = date(2024, 5, 8)  # a Wednesday

    def one(text: str) -> date:
        (found,) = find_dates(text, pub)
        return found.day

    assert one("signe le 19 mars") == date(2024, 3, 19)
    assert one("le 7 mai dernier") == date(2024, 5, 7)
    assert one("ce mardi") == date(2024, 5, 7)
    assert one("mercredi dernier") == date(2024, 5, 1)
    assert one("vendredi 12 avril") == date(2024, 4, 12)
    assert one("hier") == date(2024, 5, 7)
    assert one("le 1er octobre 2015") == date(2015, 10, 1)
    assert one("le 19/03/2024") == date(2024, 3, 19)
    assert one("le 18 decembre") == date(2023, 12, 18)  # no year: the last one before
    assert find_dates("le 31 fevrier", pub) == []


def test_generation_region_event(shipped: Config) -> None:
    c = ContractClassifier(shipped)
    item = c.classify(
        "Lens : le contrat de ville signé", "Signé ce mardi à Liévin.", date(2024, 6, 20)
    )
    assert item == {
        "generation": "2024-2030",
        "region": "hdf",
        "carriers": [{"siren": "246200364", "name": "CA de Lens - Liévin"}],
        "event": "signing",
        "event_date": "2024-06-18",
    }
    # The page's date: a 2016 page is about the 2015 contracts, whatever it says.
    old = c.classify("Lens signe son nouveau contrat de ville", "", date(2016, 1, 5))
    assert old is not None and old["generation"] == "2015-2023"
    # The text: a 2024 page about the 2015-2020 contract.
    back = c.classify("Lens : ce que le contrat de ville 2015-2020 a changé", "", date(2024, 2, 1))
    assert back is not None and back["generation"] == "2015-2023"
    assert c.classify("Roubaix : le CUCS prolongé", "", date(2010, 3, 1))["generation"] == "earlier"  # type: ignore[index]
    future = c.classify("Calais : le contrat de ville sera signé vendredi", "", date(2024, 4, 17))
    assert future is not None and future["event"] == "preparation" and future["event_date"] is None
    other = c.classify("Rennes Métropole adopte son contrat de ville", "", date(2024, 4, 12))
    assert other is not None and other["region"] == "other" and other["carriers"] == []
    national = c.classify("Contrats de ville : les préfets pressés", "", date(2024, 1, 10))
    assert national is not None and national["region"] == "national"
    # Other programmes are not contrats de ville, even when the text names one.
    assert (
        c.classify(
            "Cité éducative de Denain", "Elle complète le contrat de ville.", date(2024, 4, 1)
        )
        is None
    )
    assert c.classify("Match de football à Creil", "", date(2024, 4, 1)) is None


FEED = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Veille</title>
<item><title>Denain : la Porte du Hainaut signe son contrat de ville Quartiers 2030</title><link>https://v.example.fr/1</link>
<guid>v-1</guid><pubDate>Thu, 11 Apr 2024 10:00:00 +0200</pubDate><description>Le contrat a été signé le 10 avril.</description></item>
<item><title>Denain signe son nouveau contrat de ville</title><link>https://v.example.fr/2</link>
<guid>v-2</guid><pubDate>Tue, 30 Jun 2015 10:00:00 +0200</pubDate><description>Signature en mairie.</description></item>
<item><title>Rennes Métropole signe son contrat de ville Quartiers 2030</title><link>https://v.example.fr/3</link>
<guid>v-3</guid><pubDate>Fri, 12 Apr 2024 10:00:00 +0200</pubDate><description>Maurepas et Le Blosne.</description></item>
<item><title>Signature de la convention ANRU de Roubaix</title><link>https://v.example.fr/4</link>
<guid>v-4</guid><pubDate>Tue, 17 Sep 2024 10:00:00 +0200</pubDate><description>Renouvellement urbain de l'Alma.</description></item>
</channel></rss>"""

SECTIONS = [
    {"key": "signatures", "title": "Contrats", "match": ["contrat de ville", "signature", "signe"]},
    {
        "key": "renouvellement",
        "title": "Renouvellement",
        "match": ["ANRU", "renouvellement urbain"],
    },
    {"key": "national", "title": "National", "match": ["gouvernement"]},
]


def _rows(store: Any) -> dict[str, Any]:
    with store.connect() as conn:
        return {r.guid: r for r in conn.execute(q.select(q.items)).mappings()}


def test_collect_classifies_routes_and_keeps_staff_corrections(
    httpserver: HTTPServer, make_config: Any, store_for: Any, cli: Any, store_url: str
) -> None:
    httpserver.expect_request("/v.xml").respond_with_data(FEED, content_type="application/rss+xml")
    config = make_config(
        database_url=store_url,
        feeds=[{"name": "Veille", "url": httpserver.url_for("/v.xml")}],
        filters={"include": ["contrat de ville", "ANRU"]},
        sections=SECTIONS,
        classification={"contracts_section": "signatures", "national_section": "national"},
    )
    store = store_for(config)
    collect(config, store)
    rows = _rows(store)
    current = rows["v-1"]
    assert (current.status, current.section, current.contract_source) == (
        "new",
        "signatures",
        "auto",
    )
    assert current.contract == {
        "generation": "2024-2030",
        "region": "hdf",
        "carriers": [{"siren": "200042190", "name": "CA de la Porte du Hainaut"}],
        "event": "signing",
        "event_date": "2024-04-10",
    }
    old = rows["v-2"]
    assert (
        old.status == "filtered"
        and old.reject_reason == "contrat de ville of the 2015-2023 generation"
    )
    assert old.contract["generation"] == "2015-2023"
    other = rows["v-3"]
    assert (other.status, other.section, other.contract["region"]) == ("new", "national", "other")
    anru = rows["v-4"]
    assert anru.contract is None and anru.section == "renouvellement"

    # Scripts read the classification.
    listed = json.loads(cli(config, "items", "list", "--status", "all", "--json").output)
    assert {i["id"]: i["contract"] for i in listed}[current.id] == current.contract
    assert {i["id"]: i["contract"] for i in listed}[anru.id] is None

    # Staff correct it; the audit trail records it; a later collect keeps it.
    result = cli(config, "items", "edit", str(other.id), "--carrier", "200093201", "--region", "hdf",
                 "--generation", "2024-2030", "--event", "adoption", "--event-date", "2024-04-19")  # fmt: skip
    assert result.exit_code == 0, result.output
    shown = json.loads(cli(config, "items", "show", str(other.id), "--json").output)
    assert shown["contract_source"] == "staff"
    assert shown["contract"] == {
        "generation": "2024-2030",
        "region": "hdf",
        "carriers": [{"siren": "200093201", "name": "Métropole Européenne de Lille"}],
        "event": "adoption",
        "event_date": "2024-04-19",
    }
    assert any(e["action"] == "item.contract" for e in shown["events"])
    assert "contract" in cli(config, "items", "show", str(other.id)).output
    cleared = cli(config, "items", "edit", str(current.id), "--no-contract")
    assert cleared.exit_code == 0, cleared.output
    assert (
        json.loads(cli(config, "items", "show", str(current.id), "--json").output)["contract"]
        is None
    )

    httpserver.clear()
    httpserver.expect_request("/v.xml").respond_with_data(
        FEED.replace("Maurepas et Le Blosne.", "Maurepas, Le Blosne et Villejean.").replace(
            "signé le 10 avril", "signé le mercredi 10 avril"
        ),
        content_type="application/rss+xml",
    )
    collect(config, store)
    again = _rows(store)
    assert again["v-3"].contract == shown["contract"] and again["v-3"].contract_source == "staff"
    # Cleared by staff: stays cleared although its text changed.
    assert again["v-1"].contract is None and again["v-1"].contract_source == "staff"

    # Bad input: one clear line, exit code 2, nothing changed.
    bad = cli(config, "items", "edit", str(other.id), "--carrier", "123")
    assert bad.exit_code == 2 and "not the SIREN of an EPCI" in bad.output
    bad_date = cli(config, "items", "edit", str(other.id), "--event-date", "19 mars")
    assert bad_date.exit_code == 2 and "YYYY-MM-DD" in bad_date.output
    mixed = cli(config, "items", "edit", str(other.id), "--no-contract", "--event", "signing")
    assert mixed.exit_code == 2
    assert _rows(store)["v-3"].contract == shown["contract"]


def test_shipped_config_names_the_contracts_section(shipped: Config, tmp_path: Path) -> None:
    assert shipped.classification.contracts_section == "signatures"
    assert shipped.section("signatures") is not None
    # Every SIREN staff wrote is an EPCI of the official division.
    epcis = load_geography().epcis
    assert all(t.siren in epcis for t in shipped.territories if t.siren)
    bad = tmp_path / "feeds.yaml"
    bad.write_text("classification:\n  contracts_section: nope\n", "utf-8")
    with pytest.raises(ConfigError, match=r"classification\.contracts_section"):
        load_config(bad)


def _tarball(path: Path, files: dict[str, Any]) -> Path:
    import io
    import tarfile

    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            raw = json.dumps(data).encode()
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return path


def test_make_geo_writes_the_region_and_what_is_needed_elsewhere(tmp_path: Path) -> None:
    import subprocess
    import sys

    communes = [
        {
            "code": "59350",
            "nom": "Lille",
            "departement": "59",
            "region": "32",
            "type": "commune-actuelle",
            "population": 238246,
        },
        {
            "code": "59512",
            "nom": "Roubaix",
            "departement": "59",
            "region": "32",
            "type": "commune-actuelle",
            "population": 98286,
        },
        {
            "code": "59298",
            "nom": "Hellemmes-Lille",
            "departement": "59",
            "region": "32",
            "type": "commune-deleguee",
        },
        {
            "code": "78621",
            "nom": "Trappes",
            "departement": "78",
            "region": "11",
            "type": "commune-actuelle",
            "population": 32000,
        },
        {
            "code": "78001",
            "nom": "Petitbourg",
            "departement": "78",
            "region": "11",
            "type": "commune-actuelle",
            "population": 120,
        },
    ]
    epci = [
        {"code": "200093201", "nom": "Métropole Européenne de Lille", "type": "METRO",
         "membres": [{"code": "59350"}, {"code": "59512"}]},
        {"code": "200058782", "nom": "CA de Saint Quentin en Yvelines", "type": "CA", "membres": [{"code": "78621"}]},
    ]  # fmt: skip
    tarball = _tarball(
        tmp_path / "geo.tgz",
        {
            "package.json": {
                "name": "@etalab/decoupage-administratif",
                "version": "9.9.9",
                "license": "MIT",
            },
            "data/regions.json": [
                {"code": "32", "nom": "Hauts-de-France"},
                {"code": "11", "nom": "Île-de-France"},
            ],
            "data/departements.json": [
                {"code": "59", "nom": "Nord", "region": "32"},
                {"code": "78", "nom": "Yvelines", "region": "11"},
            ],
            "data/communes.json": communes,
            "data/epci.json": epci,
            "data/ept.json": [],
        },
    )
    out = tmp_path / "geo.json"
    script = ROOT / "scripts" / "make_geo.py"
    done = subprocess.run([sys.executable, str(script), str(tarball), "--out", str(out)],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    data = json.loads(out.read_text("utf-8"))
    assert (data["source"], data["version"]) == ("@etalab/decoupage-administratif", "9.9.9")
    assert data["communes"] == [
        ["59350", "Lille", 238246, "200093201"],
        ["59512", "Roubaix", 98286, "200093201"],
    ]
    assert data["epci"] == [
        {
            "siren": "200093201",
            "name": "Métropole Européenne de Lille",
            "kind": "METRO",
            "members": ["59350", "59512"],
        }
    ]
    assert data["elsewhere"]["communes"] == [["Trappes", "78", 32000]]
    assert data["elsewhere"]["epci"] == [["CA de Saint Quentin en Yvelines", "78"]]
    assert data["elsewhere"]["departements"] == [["78", "Yvelines"]]
    broken = subprocess.run([sys.executable, str(script), str(tmp_path / "missing.tgz"), "--out", str(out)],
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert broken.returncode == 1 and "cannot read the package" in broken.stderr


def test_territories_without_siren_are_resolved_from_the_division() -> None:
    from pressreview.places import PlaceMatcher

    demo = PlaceMatcher(load_config(ROOT / "pressreview" / "demo" / "demo.yaml"))
    # Staff's spelling of an EPCI name, the name without "CA", a commune.
    assert demo.territory_siren("CA Béthune-Bruay Artois Lys Romane") == "200072460"
    assert demo.territory_siren("Amiens Métropole") == "248000531"
    assert demo.territory_siren("Roubaix") == "200093201"
    assert demo.territory_siren("Nord") is None


def test_about_and_amendments(shipped: Config) -> None:
    c = ContractClassifier(shipped)
    # A passing mention under a title about something else is not contract news...
    assert (
        c.classify(
            "Nomination de deux délégués du préfet dans le Pas-de-Calais",
            "En appui des équipes des contrats de ville de Boulogne-sur-Mer.",
            date(2026, 10, 9),
        )
        is None
    )
    # ...a title about what happens to it is.
    signed = c.classify(
        "Signature officielle ce mardi à Laon",
        "Les contrats de ville de l'Aisne.",
        date(2024, 3, 20),
    )
    assert (
        signed is not None and signed["event"] == "signing" and signed["event_date"] == "2024-03-19"
    )
    # An act on an avenant is an amendment, not the contract's signing.
    avenant = c.classify(
        "Amiens Métropole signe l'avenant de son contrat de ville", "", date(2026, 10, 4)
    )
    assert avenant is not None and avenant["event"] == "amendment"


def test_the_headline_kicker_says_where_the_story_is(shipped: Config) -> None:
    c = ContractClassifier(shipped)
    other = c.classify(
        "Val-d'Oise : comme Creil, Cergy signe son contrat de ville", "", date(2024, 5, 2)
    )
    here = c.classify(
        "Creil : comme Cergy-Pontoise, l'ACSO signe son contrat de ville", "", date(2024, 5, 2)
    )
    assert other is not None and other["region"] == "other"
    assert here is not None and here["region"] == "hdf"
    assert [x["siren"] for x in here["carriers"]] == ["200068047"]

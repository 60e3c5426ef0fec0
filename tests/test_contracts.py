"""The contrats de ville tracker: the list staff own, the status, staff decisions, QPV import."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from pressreview import contracts
from pressreview.config import (
    DEFAULT_CONTRACTS_FILE,
    Config,
    Contract,
    ContractsSettings,
    parse_config,
    siren_ok,
)
from pressreview.errors import ConfigError
from pressreview.geo import load_geography
from pressreview.store import Store
from pressreview.store.items import insert_item, set_item_contract
from pressreview.store.schema import contract_qpv, events

LILLE = "200093201"
LAON = "200043495"
AMIENS = "248000531"
HIRSON = "240200600"  # CC des Trois Rivières, the EPCI of Hirson (02381)
HDF = {"02", "59", "60", "62", "80"}


def cls(
    siren: str = LILLE,
    event: str | None = "signing",
    event_date: str | None = None,
    *,
    generation: str | None = "2024-2030",
    region: str = "hdf",
) -> dict[str, Any]:
    """An item's classification, in the shape the classifier writes."""
    return {
        "generation": generation,
        "region": region,
        "carriers": [{"siren": siren, "name": "x"}],
        "event": event,
        "event_date": event_date,
    }


def row(item_id: int, published: str, contract: dict[str, Any] | None, **extra: Any) -> dict:
    return {
        "id": item_id,
        "title": f"Article {item_id}",
        "outlet": "La Voix du Nord",
        "link": f"https://www.example-presse.fr/a/{item_id}",
        "published_at": datetime.fromisoformat(published).replace(tzinfo=UTC),
        "contract": contract,
        **extra,
    }


def settings(*listed: Contract, total: int = 39) -> ContractsSettings:
    return ContractsSettings(listed=listed, total=total)


LILLE_C = Contract(siren=LILLE, name="Métropole européenne de Lille", department="59")
LAON_C = Contract(siren=LAON, name="CA du Pays de Laon", department="02")


# -- the shipped list ---------------------------------------------------------------------


def test_shipped_list_has_the_known_carriers_with_valid_unique_sirens() -> None:
    config = parse_config({}, environ={})
    listed = config.contracts.listed
    assert len(listed) == 37 and config.contracts.total == 39
    assert config.contracts.path == DEFAULT_CONTRACTS_FILE
    sirens = [c.siren for c in listed]
    assert len(set(sirens)) == len(sirens)
    for c in listed:
        assert siren_ok(c.siren), c
        assert c.department in HDF, c
        if c.commune:
            assert c.commune[:2] == c.department, c
    by_dept = {d: sum(1 for c in listed if c.department == d) for d in HDF}
    assert by_dept == {"02": 7, "59": 12, "60": 8, "62": 8, "80": 2}
    # Carried by a commune: keyed by the commune's EPCI.
    hirson = config.contracts.contract(HIRSON)
    assert hirson is not None and hirson.commune == "02381"


def test_shipped_carriers_are_epci_of_the_official_division() -> None:
    """Every SIREN is an EPCI of Hauts-de-France in the data the list was made from."""
    geo = load_geography()
    assert (geo.source, geo.version) == ("@etalab/decoupage-administratif", "6.0.0")
    for c in parse_config({}, environ={}).contracts.listed:
        epci = geo.epcis[c.siren]
        assert c.department in {m[:2] for m in epci.members}, c
        if c.commune:
            assert geo.communes[c.commune].epci == c.siren, c
            assert c.commune in epci.members
    # Carried by a commune: keyed by the commune's EPCI, as the classifier names carriers.
    assert geo.epcis[HIRSON].name == "CC des Trois Rivières"


def test_siren_checksum() -> None:
    assert siren_ok(LILLE)
    assert not siren_ok("200093202")  # one digit off
    assert not siren_ok("20009320")
    assert not siren_ok("20009320A")


def _contracts_file(tmp_path: Path, data: Any) -> dict[str, Any]:
    path = tmp_path / "contracts.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")
    return {"contracts": {"file": "contracts.yaml"}}


@pytest.mark.parametrize(
    ("contracts_list", "message"),
    [
        ([{"siren": "123456789", "name": "X", "department": "59"}], "contracts[0].siren"),
        (
            [
                {"siren": LILLE, "name": "A", "department": "59"},
                {"siren": LILLE, "name": "B", "department": "59"},
            ],
            "contracts[1].siren: 200093201 is listed twice",
        ),
        ([{"siren": LILLE, "department": "59"}], "contracts[0].name: missing"),
        (
            [{"siren": LILLE, "name": "A", "department": "59", "commune": "02381"}],
            "contracts[0].commune",
        ),
        (
            [
                {
                    "siren": LILLE,
                    "name": "A",
                    "department": "59",
                    "qpv": [{"code": "Q1", "name": "n"}],
                }
            ],
            "contracts[0].qpv[0].code",
        ),
        ([{"siren": LILLE, "name": "A", "department": "59", "colour": "red"}], "colour"),
        (  # a valid SIREN (Bonneville, Haute-Savoie), not an EPCI of the region
            [{"siren": "217400423", "name": "A", "department": "59"}],
            "contracts[0].siren: 217400423 is no EPCI of Hauts-de-France",
        ),
        (  # Hirson is not a member of the MEL
            [{"siren": LILLE, "name": "A", "department": "59", "commune": "59249"}],
            "contracts[0].commune: 59249 is not a member of",
        ),
    ],
)
def test_bad_contracts_file_names_the_key(
    tmp_path: Path, contracts_list: list[Any], message: str
) -> None:
    data = _contracts_file(tmp_path, {"expected": 39, "contracts": contracts_list})
    with pytest.raises(ConfigError) as info:
        parse_config(data, base_dir=tmp_path, environ={})
    assert "contracts.yaml" in str(info.value) and message in str(info.value)


def test_contracts_file_and_expected_override(tmp_path: Path) -> None:
    data = _contracts_file(
        tmp_path,
        {"expected": 3, "contracts": [{"siren": LILLE, "name": "MEL", "department": "59"}]},
    )
    config = parse_config(data, base_dir=tmp_path, environ={})
    assert [c.name for c in config.contracts.listed] == ["MEL"] and config.contracts.total == 3
    data["contracts"]["expected"] = 5
    assert parse_config(data, base_dir=tmp_path, environ={}).contracts.total == 5
    with pytest.raises(ConfigError, match=r"contracts\.file: .*missing\.yaml: file not found"):
        parse_config({"contracts": {"file": "missing.yaml"}}, base_dir=tmp_path, environ={})
    off = parse_config({"contracts": {"enabled": False}}, environ={})
    assert off.contracts.listed == ()


# -- the status, from plain values ----------------------------------------------------------


def test_status_from_the_most_advanced_stage_with_its_date_newest_evidence_first() -> None:
    rows = [
        row(1, "2024-02-01", cls(event="preparation")),
        row(2, "2024-04-20", cls(event="adoption", event_date="2024-04-19")),
        row(3, "2024-05-08", cls(event="signing", event_date="2024-05-07")),
        row(4, "2024-05-10", cls(event="signing")),  # same signing, later report, no date
        row(5, "2016-03-01", cls(event="signing", generation="2015-2023")),  # old generation
        row(6, "2024-04-01", cls(event="signing", region="other")),  # another region
        row(7, "2024-04-01", cls(event="amendment")),  # not a stage
        row(8, "2024-04-01", None),
    ]
    tracker = contracts.build_tracker(settings(LILLE_C, LAON_C), rows)
    mel, laon = tracker.contracts
    assert (mel.status, mel.date, mel.source) == ("signed", date(2024, 5, 7), "classifier")
    assert [e.item_id for e in mel.evidence] == [4, 3, 2, 1]
    assert (laon.status, laon.date, laon.evidence) == ("no_news", None, [])
    assert tracker.counts() == {"signed": 1, "adopted": 0, "in_preparation": 0, "no_news": 1}
    assert (tracker.listed, tracker.total) == (2, 39)


def test_date_falls_back_to_the_first_report_and_stage_order() -> None:
    rows = [
        row(1, "2024-03-21", cls(LAON, "adoption")),
        row(2, "2024-03-25", cls(LAON, "adoption")),
        row(3, "2024-03-01", cls(LAON, "preparation")),
    ]
    (laon,) = contracts.build_tracker(settings(LAON_C), rows).contracts
    assert (laon.status, laon.date) == ("adopted", date(2024, 3, 21))


def test_staff_decision_wins_until_cleared() -> None:
    rows = [row(1, "2024-05-08", cls(event="signing", event_date="2024-05-07"))]
    at = datetime(2024, 6, 1, tzinfo=UTC)

    def decision(i: int, status: str | None, item: int | None = None) -> contracts.Decision:
        return contracts.Decision(i, LILLE, status, date(2024, 5, 6), item, "vu", "ana", at)

    staff_item = {9: row(9, "2024-05-06", None, title="Communiqué de la préfecture")}
    tracker = contracts.build_tracker(
        settings(LILLE_C), rows, [decision(1, "adopted", 9)], staff_items=staff_item
    )
    (mel,) = tracker.contracts
    assert (mel.status, mel.date, mel.source) == ("adopted", date(2024, 5, 6), "staff")
    assert [(e.item_id, e.origin) for e in mel.evidence] == [(9, "staff"), (1, "classifier")]
    cleared = contracts.build_tracker(
        settings(LILLE_C), rows, [decision(1, "adopted"), decision(2, None)]
    )
    assert (cleared.contracts[0].status, cleared.contracts[0].source) == ("signed", "classifier")


def test_evidence_links_are_http_only() -> None:
    rows = [
        row(1, "2024-05-08", cls(), link="javascript:alert(1)", url="javascript:alert(1)"),
        row(2, "2024-05-09", cls(), link="ftp://x.fr/a"),
    ]
    (mel,) = contracts.build_tracker(settings(LILLE_C), rows).contracts
    assert [e.url for e in mel.evidence] == [None, None] and mel.evidence_urls() == []
    assert contracts.http_url("HTTPS://x.fr/a") == "HTTPS://x.fr/a"


def test_snapshot_block_lists_what_changed_since_the_previous_block() -> None:
    config = parse_config({"archive": {"base_url": "https://veille.example.org/"}}, environ={})
    first_rows = [row(1, "2024-04-20", cls(event="adoption", event_date="2024-04-19"))]
    first = contracts.snapshot_block(
        config, contracts.build_tracker(settings(LILLE_C, LAON_C), first_rows), None
    )
    assert [c["status"] for c in first["changes"]] == ["adopted"]
    assert first["url"] == "https://veille.example.org/contrats-de-ville/"
    rows = [*first_rows, row(2, "2024-05-08", cls(event="signing", event_date="2024-05-07"))]
    rows.append(row(3, "2024-03-20", cls(LAON, "preparation")))
    second = contracts.snapshot_block(
        config, contracts.build_tracker(settings(LILLE_C, LAON_C), rows), first
    )
    assert second["counts"]["signed"] == 1
    assert [(c["siren"], c["status"], c["url"]) for c in second["changes"]] == [
        (LILLE, "signed", "https://www.example-presse.fr/a/2")
    ]
    again = contracts.snapshot_block(
        config, contracts.build_tracker(settings(LILLE_C, LAON_C), rows), second
    )
    assert again["changes"] == []
    assert contracts.export_rows(again)[0]["evidence_urls"] == [
        "https://www.example-presse.fr/a/2",
        "https://www.example-presse.fr/a/1",
    ]


# -- with the store (SQLite and PostgreSQL) --------------------------------------------------------


def add_item(
    store: Store, n: int, contract: dict[str, Any] | None, *, published: str = "2024-05-08"
) -> int:
    stamp = datetime.fromisoformat(published).replace(tzinfo=UTC)
    values = {
        "url": f"https://www.example-presse.fr/contrat-{n}",
        "link": f"https://www.example-presse.fr/contrat-{n}",
        "title": f"Contrat de ville, article {n}",
        "outlet": "La Voix du Nord",
        "published_at": stamp,
        "first_seen_at": stamp,
        "updated_at": stamp,
        "origin": "manual",
    }
    with store.begin() as conn:
        item_id = insert_item(conn, values, stamp=stamp)
        assert set_item_contract(conn, item_id, contract, "auto" if contract else None)
    return item_id


@pytest.fixture
def tracked(
    make_config: Callable[..., Config], store_url: str, store_for: Callable[[Config], Store]
) -> tuple[Config, Store]:
    config = make_config(database_url=store_url)
    return config, store_for(config)


def test_store_tracker_set_show_and_audit(tracked: tuple[Config, Store]) -> None:
    config, store = tracked
    signing = add_item(store, 1, cls(event="signing", event_date="2024-05-07"))
    add_item(store, 2, cls(LAON, "preparation"), published="2024-02-01")
    cleared = add_item(store, 3, cls(AMIENS, "signing"))
    with store.begin() as conn:  # SQL NULL again: no longer classified
        set_item_contract(conn, cleared, None, None)
    add_item(store, 4, None)
    tracker = contracts.load_tracker(config, store)
    by_siren = {c.contract.siren: c for c in tracker.contracts}
    assert (by_siren[LILLE].status, by_siren[LILLE].date) == ("signed", date(2024, 5, 7))
    assert by_siren[LAON].status == "in_preparation"
    assert by_siren[AMIENS].status == "no_news"
    assert len(contracts.load_tracker(config, store, department="02").contracts) == 7

    result = contracts.set_status(
        config, store, AMIENS, status="signed", on=date(2024, 12, 18),
        evidence_item=signing, note="vu en préfecture", actor="ana",
    )  # fmt: skip
    assert (result.status, result.source, result.date) == ("signed", "staff", date(2024, 12, 18))
    contracts.set_status(config, store, LILLE, status="adopted", actor="ana")
    assert contracts.load_tracker(config, store).contracts[7].status == "adopted"
    contracts.set_status(config, store, LILLE, status=None, actor="bob")
    h = contracts.history(config, store, LILLE)
    assert h.current.status == "signed" and h.current.source == "classifier"
    assert [d.status for d in h.decisions] == ["adopted", None]
    assert [e.item_id for e in h.items] == [signing]
    with store.connect() as conn:
        audit = conn.execute(select(events.c.action, events.c.actor, events.c.details)).all()
    actions = [(a, who) for a, who, _ in audit if a.startswith("contract.")]
    assert actions == [("contract.set", "ana"), ("contract.set", "ana"), ("contract.clear", "bob")]
    assert audit[-1].details["before"] == "adopted"


# -- the command line --------------------------------------------------------------------------


def test_cli_list_set_show(tracked: tuple[Config, Store], cli: Callable[..., Any]) -> None:
    config, store = tracked
    item = add_item(store, 1, cls(event="signing", event_date="2024-05-07"))
    result = cli(config, "contracts", "list")
    assert result.exit_code == 0, result.output
    assert "37 listed of 39 expected: 1 signed, 0 adopted, 0 in_preparation, 36 no_news" in (
        result.output
    )
    assert "Métropole européenne de Lille" in result.output and f"#{item}" in result.output
    result = cli(config, "contracts", "list", "--departement", "62", "--json")
    data = json.loads(result.output)
    assert {c["department"] for c in data["contracts"]} == {"62"} and data["expected"] == 39

    result = cli(config, "contracts", "set", LAON, "--status", "signed", "--date", "2024-03-19",
                 "--evidence", str(item), "--note", "signature à Laon")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "CA du Pays de Laon: signed on 2024-03-19" in result.output
    shown = cli(config, "contracts", "show", LAON)
    assert "Status: signed on 2024-03-19 (staff:" in shown.output
    assert "signed on 2024-03-19, evidence #" in shown.output
    assert "signature à Laon" in shown.output
    data = json.loads(cli(config, "contracts", "show", LAON, "--json").output)
    assert data["source"] == "staff" and data["decisions"][0]["note"] == "signature à Laon"
    result = cli(config, "contracts", "set", LAON, "--clear")
    assert result.exit_code == 0 and "status from the items: no_news" in result.output

    for args, code, message in [
        (("set", "999999999", "--status", "signed"), 1, "no listed contract has this SIREN"),
        (("set", LAON, "--status", "signed", "--date", "19/03/2024"), 2, "not a date"),
        (("set", LAON), 2, "give --status STATUS, or --clear"),
        (("set", LAON, "--clear"), 1, "no staff decision in force"),
        (("set", LAON, "--status", "signed", "--evidence", "9999"), 1, "no item 9999"),
        (("show", "123"), 1, "no listed contract"),
    ]:
        result = cli(config, "contracts", *args)
        assert result.exit_code == code, (args, result.output)
        assert message in result.output and "Traceback" not in result.output


def test_cli_init_copies_the_shipped_list(
    tracked: tuple[Config, Store], cli: Callable[..., Any]
) -> None:
    config, _store = tracked
    result = cli(config, "contracts", "init")
    assert result.exit_code == 0, result.output
    copy = config.base_dir / "contracts.yaml"
    assert copy.read_text("utf-8") == DEFAULT_CONTRACTS_FILE.read_text("utf-8")
    assert cli(config, "contracts", "init").exit_code == 1


# -- the QPV import ------------------------------------------------------------------------------


def feature(code: str, name: str, dep: str, com: str, lib: str, siren: str) -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": None,
        "properties": {
            "code_qp": code,
            "lib_qp": name,
            "insee_dep": dep,
            "insee_com": com,
            "lib_com": lib,
            "siren_epci": siren,
        },
    }


def write_geojson(path: Path, *features: dict[str, Any]) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": list(features)}), "utf-8")
    return path


QPV_FILE = [
    feature("QN05901M", "Lille Sud", "59", "59350", "Lille", LILLE),
    feature("QN05902M", "Roubaix Nord", "59", "59512,59599", "Roubaix, Tourcoing", LILLE),
    feature("QN00201M", "Champagne", "02", "02408", "Laon", LAON),
    feature("QN00202M", "Hirson centre", "02", "02381", "Hirson", HIRSON),
    feature("QN05999I", "Quartier sans contrat", "59", "59249", "Fourmies", "200043404"),
    # An EPCI without contract, but a commune of the MEL: the MEL's (by the official division).
    feature("QN05998M", "Entre-deux", "59", "59249,59350", "Fourmies, Lille", "200043404"),
    feature("QN07501M", "Paris 19e", "75", "75119", "Paris", "200054781"),
]


def test_import_qpv_adds_changes_and_reports(
    tracked: tuple[Config, Store], cli: Callable[..., Any], tmp_path: Path
) -> None:
    config, store = tracked
    # Fourmies' EPCI (CC du Sud Avesnois) is listed in the shipped file: drop it here.
    listed = [c for c in yaml.safe_load(DEFAULT_CONTRACTS_FILE.read_text("utf-8"))["contracts"]]
    listed = [c for c in listed if c["siren"] != "200043404"]
    (tmp_path / "contracts.yaml").write_text(
        yaml.safe_dump({"expected": 39, "contracts": listed}, allow_unicode=True), "utf-8"
    )
    config_path = config.path
    assert config_path is not None
    data = yaml.safe_load(config_path.read_text("utf-8"))
    data["contracts"] = {"file": "contracts.yaml"}
    config_path.write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")

    path = write_geojson(tmp_path / "qpv.geojson", *QPV_FILE)
    result = cli(config_path, "contracts", "import-qpv", str(path), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "5 QPV would be added: QN00201M, QN00202M, QN05901M, QN05902M, QN05998M" in (
        result.output
    )
    with store.connect() as conn:
        assert conn.execute(select(contract_qpv)).all() == []

    result = cli(config_path, "contracts", "import-qpv", str(path))
    assert result.exit_code == 0, result.output
    assert "5 QPV added" in result.output and "1 QPV of other départements skipped" in result.output
    assert "QN05999I Quartier sans contrat (Fourmies, 59): its EPCI 200043404" in result.output
    shown = json.loads(cli(config_path, "contracts", "show", LILLE, "--json").output)
    assert [(q["code"], q["communes"]) for q in shown["qpv"]] == [
        ("QN05901M", ["59350"]),
        ("QN05902M", ["59512", "59599"]),
        ("QN05998M", ["59249", "59350"]),
    ]
    hirson = json.loads(cli(config_path, "contracts", "show", HIRSON, "--json").output)
    assert [q["code"] for q in hirson["qpv"]] == ["QN00202M"]

    renamed = [dict(f) for f in QPV_FILE[:3]]
    renamed[0] = feature("QN05901M", "Lille Sud – Faubourg", "59", "59350", "Lille", LILLE)
    path2 = write_geojson(tmp_path / "qpv2.geojson", *renamed)
    result = cli(config_path, "contracts", "import-qpv", str(path2), "--json")
    report = json.loads(result.output)
    assert report["added"] == [] and report["changed"] == ["QN05901M"]
    assert report["removed"] == ["QN00202M", "QN05998M"]
    strict = cli(config_path, "contracts", "import-qpv", str(path), "--strict")
    assert strict.exit_code == 1 and "nothing imported" in strict.output


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"siren_epci": None}, "missing column(s) siren_epci"),
        ({"siren_epci": "20009320"}, "siren_epci: '20009320' is not a SIREN"),
        ({"code_qp": "QP059001"}, "code_qp: 'QP059001' is not a QPV code"),
        ({"insee_com": ""}, "insee_com: no commune"),
        ({"siren_epci": "217400423"}, "siren_epci: unknown SIREN 217400423"),
        ({"insee_com": "59350,75056"}, "insee_com: 75056 is no commune of Hauts-de-France"),
    ],
)
def test_import_qpv_refuses_a_bad_file_whole(
    tracked: tuple[Config, Store], cli: Callable[..., Any], tmp_path: Path,
    bad: dict[str, Any], message: str,
) -> None:  # fmt: skip
    config, store = tracked
    broken = feature("QN05903M", "Wazemmes", "59", "59350", "Lille", LILLE)
    for key, value in bad.items():
        if value is None:
            del broken["properties"][key]
        else:
            broken["properties"][key] = value
    path = write_geojson(tmp_path / "bad.geojson", *QPV_FILE[:3], broken)
    result = cli(config, "contracts", "import-qpv", str(path))
    assert result.exit_code == 2, result.output
    assert message in result.output and "features[3]" in result.output
    assert len(result.output.strip().splitlines()) == 1
    with store.connect() as conn:
        assert conn.execute(select(contract_qpv)).all() == []


def test_import_qpv_not_geojson(tracked: tuple[Config, Store], cli: Callable[..., Any],
                                tmp_path: Path) -> None:  # fmt: skip
    config, _store = tracked
    (tmp_path / "x.geojson").write_text("{nope", "utf-8")
    result = cli(config, "contracts", "import-qpv", str(tmp_path / "x.geojson"))
    assert result.exit_code == 2 and "not JSON" in result.output
    (tmp_path / "y.geojson").write_text('{"type": "Feature"}', "utf-8")
    result = cli(config, "contracts", "import-qpv", str(tmp_path / "y.geojson"))
    assert result.exit_code == 2 and "not a GeoJSON FeatureCollection" in result.output

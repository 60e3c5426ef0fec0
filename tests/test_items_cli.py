"""`pressreview items ...` and `pressreview log` through CliRunner on a collected store."""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import pty
import re
import shlex
import struct
import subprocess
import sys
import termios
from pathlib import Path
from typing import Any

import pytest
from fixtures_curate import Collected, collected_fixture  # noqa: F401

from pressreview import curate
from pressreview.errors import UsageError


def test_list_table_fits_100_columns(collected: Collected, cli: Any) -> None:
    result = cli(collected.config, "items", "list")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["id", "date", "outlet", "section", "title"]
    assert all(len(line) <= 100 for line in lines), max(lines, key=len)
    new = [r for r in collected.rows(status="new", duplicate_of=None)]
    assert lines[-1] == f"{len(new)} items."
    shown = {int(line.split()[0]) for line in lines[1:-1]}
    assert shown == {r["id"] for r in new}
    # Long titles are cut with an ellipsis, not wrapped.
    assert any(line.endswith("…") for line in lines[1:-1])
    every = cli(collected.config, "items", "list", "--status", "all", "--limit", "5")
    assert every.output.splitlines()[0].split() == [
        "id",
        "date",
        "st",
        "outlet",
        "section",
        "title",
    ]
    assert every.output.splitlines()[-1].startswith("5 of ")


def test_list_json_and_csv_give_every_field(collected: Collected, cli: Any) -> None:
    result = cli(collected.config, "items", "list", "--status", "all", "--json")
    data = json.loads(result.output)
    assert len(data) == len(collected.rows(duplicate_of=None))
    for key in (
        "id",
        "url",
        "title",
        "title_edited",
        "summary_html",
        "excerpt",
        "outlet",
        "published_at",
        "territories",
        "tags",
        "status",
        "section",
        "version",
        "source",
    ):
        assert key in data[0]
    out = cli(
        collected.config, "items", "list", "--csv", "--territory", "Amiens", "--status", "all"
    )
    rows = list(csv.DictReader(io.StringIO(out.output)))
    assert rows and set(data[0]) == set(rows[0])
    assert all("Amiens Métropole" in r["territories"] for r in rows)
    both = cli(collected.config, "items", "list", "--json", "--csv")
    assert both.exit_code == 2


def test_list_search_with_accents(collected: Collected, cli: Any) -> None:
    def ids(*args: str) -> set[int]:
        result = cli(collected.config, "items", "list", "--status", "all", "--json", *args)
        assert result.exit_code == 0, result.output
        return {i["id"] for i in json.loads(result.output)}

    signe = ids("--search", "contrat de ville signé")
    assert signe and signe == ids("--search", "CONTRAT DE VILLE SIGNE")
    assert ids("--search", "Creil") == ids("--search", "creil") != set()
    assert ids("--search", "Creil", "--since", "2099-01-01") == set()
    punctuation = cli(collected.config, "items", "list", "--search", "?!")
    assert punctuation.exit_code == 2 and "nothing to search for" in punctuation.output
    bad = cli(collected.config, "items", "list", "--since", "yesterday-ish")
    assert bad.exit_code == 2 and "not a date" in bad.output


def test_show_displays_original_edit_and_other_outlets(collected: Collected, cli: Any) -> None:
    lead, _others = collected.amiens_story()
    cli(
        collected.config,
        "--as",
        "alice",
        "items",
        "edit",
        str(lead["id"]),
        "--title",
        "Amiens : avenant signé",
    )
    result = cli(collected.config, "items", "show", str(lead["id"]))
    assert result.exit_code == 0
    out = result.output
    assert "Amiens : avenant signé  (edited)" in out
    assert f"original     {lead['title']}" in out
    assert "Also in 2 other outlet(s):" in out
    for other in curate.show_item(collected.store, lead["id"])["also"]:
        assert f"#{other['id']}" in out and f"{other['outlet']}: {other['title'][:20]}" in out
    assert "alice: edit: title set to 'Amiens : avenant signé'" in out
    as_json = json.loads(cli(collected.config, "items", "show", str(lead["id"]), "--json").output)
    assert len(as_json["also"]) == 2 and as_json["title_edited"] == "Amiens : avenant signé"
    missing = cli(collected.config, "items", "show", "99999")
    assert missing.exit_code == 1 and missing.output.strip().startswith("Error: no item 99999")


def test_select_reject_reset_and_log(collected: Collected, cli: Any) -> None:
    config = collected.config
    a = collected.find("Valenciennes Métropole : premier comité")["id"]
    b = collected.find("Dunkerque : la CUD lance")["id"]
    c = collected.find("Douai : les locataires")["id"]
    result = cli(
        config, "--as", "alice", "items", "select", str(a), f"{b},{c}", "--section", "signatures"
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"Selected 3 items into section signatures: {a}, {b}, {c}."
    assert {r["section"] for r in collected.rows(status="selected")} == {"signatures"}
    result = cli(config, "--as", "bob", "items", "reject", str(b), "--reason", "hors territoire")
    assert (
        result.exit_code == 0 and collected.find("Dunkerque : la CUD lance")["status"] == "rejected"
    )
    assert cli(config, "items", "reset", str(b)).exit_code == 0
    assert collected.find("Dunkerque : la CUD lance")["status"] == "new"
    log = cli(config, "log", "--item", str(b))
    lines = log.output.splitlines()
    assert lines[0].split() == ["when", "who", "item", "what"]
    assert "bob" in lines[2] and "reject: selected → rejected" in lines[2]
    assert "alice" in lines[3] and "select: new → selected" in lines[3]
    assert all(len(line) <= 100 for line in lines)
    events = json.loads(cli(config, "log", "--actor", "alice", "--json").output)
    assert {e["item_id"] for e in events} == {a, b, c}
    assert cli(config, "log", "--since", "2099-01-01").output.strip() == "No change recorded."


def test_refusals_are_one_line_with_exit_codes(collected: Collected, cli: Any) -> None:
    config = collected.config
    item = collected.find("Valenciennes Métropole : premier comité")["id"]
    cases = [
        (["items", "select", "99999"], 1, "Error: no item 99999; nothing was changed"),
        (["items", "select", str(item), "--section", "sport"], 1, "Error: unknown section 'sport'"),
        (["items", "edit", str(item), "--title", ""], 1, "the title cannot be empty"),
        (["items", "select", "4x"], 2, "not an item id or range: '4x'"),
        (["items", "select"], 2, "which items?"),
        (["items", "select", str(item), "--search", "Creil"], 2, "not both"),
        (["items", "list", "--status", "maybe"], 2, "unknown status 'maybe'"),
        (["items", "move", str(item)], 2, "--before ID or --after ID"),
    ]
    for args, code, message in cases:
        result = cli(config, *args)
        assert result.exit_code == code, (args, result.output)
        assert len(result.output.strip().splitlines()) == 1, result.output
        assert message in result.output
    assert curate.read_log(collected.store) == []


def test_published_items_are_refused(collected: Collected, cli: Any) -> None:
    item = collected.find("Valenciennes Métropole : premier comité")["id"]
    number = collected.publish([item])
    for args in (["edit", str(item), "--title", "x"], ["reject", str(item)], ["reset", str(item)]):
        result = cli(collected.config, "items", *args)
        assert result.exit_code == 1
        assert result.output.strip().startswith(
            f"Error: item {item} belongs to published issue n° {number}"
        )


def test_bulk_select_asks_for_confirmation(collected: Collected, cli: Any) -> None:
    config = collected.config
    matches = curate.list_items(
        config, collected.store, curate.ItemQuery(search="renouvellement")
    ).items
    assert len(matches) >= 3
    declined = cli(config, "items", "select", "--search", "renouvellement", input="n\n")
    assert f"Select these {len(matches)} items? [y/N]" in declined.output
    assert declined.exit_code == 1 and "Nothing changed." in declined.output
    assert collected.rows(status="selected") == []
    accepted = cli(
        config,
        "items",
        "select",
        "--search",
        "renouvellement",
        "--since",
        "2026-01-01",
        "--section",
        "renouvellement",
        input="y\n",
    )
    assert accepted.exit_code == 0
    assert {r["id"] for r in collected.rows(status="selected")} == {m["id"] for m in matches}
    quiet = cli(config, "items", "reject", "--search", "Creil", "--yes")
    assert quiet.exit_code == 0 and "?" not in quiet.output
    assert all(
        r["status"] == "rejected"
        for r in collected.rows()
        if r["id"] in {m["id"] for m in curate.search_items(config, collected.store, "Creil")}
        and r["status"] != "filtered"
        and r["duplicate_of"] is None
    )
    nothing = cli(config, "items", "select", "--search", "zzzzzz", "--yes")
    assert nothing.exit_code == 0 and nothing.output.strip() == "No item matches."


def test_move_prints_the_new_order(collected: Collected, cli: Any) -> None:
    ids = [
        collected.find(t)["id"]
        for t in ("Calais : le Beau-Marais", "Dunkerque : la CUD lance", "Douai : les locataires")
    ]
    cli(collected.config, "items", "select", *map(str, ids), "--section", "renouvellement")
    result = cli(collected.config, "items", "move", str(ids[2]), "--before", str(ids[0]))
    assert result.exit_code == 0, result.output
    listed = [int(line.replace("→", " ").split()[0]) for line in result.output.splitlines()[1:]]
    assert listed == [ids[2], ids[0], ids[1]]
    positions = cli(
        collected.config, "items", "list", "--status", "selected", "--sort", "position", "--json"
    )
    assert [i["id"] for i in json.loads(positions.output)] == [ids[2], ids[0], ids[1]]


# -- $EDITOR ----------------------------------------------------------------------------


def _editor(tmp_path: Path, body: str) -> str:
    """An EDITOR command: a small Python script acting on the file it is given."""
    script = tmp_path / "editor.py"
    script.write_text("import pathlib, subprocess, sys\npath = pathlib.Path(sys.argv[1])\n" + body)
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}"


def test_edit_without_options_opens_editor(collected: Collected, cli: Any, tmp_path: Path) -> None:
    item = collected.find("NPNRU : livraison de 64 logements")
    editor = _editor(
        tmp_path,
        """
text = path.read_text("utf-8")
assert "Original title: NPNRU" in text, text
lines = []
for line in text.splitlines():
    if line.startswith("Title:"):
        line = "Title: Maubeuge : 64 logements réhabilités"
    lines.append(line)
lines[-1] = "Résumé écrit dans l'éditeur."
path.write_text("\\n".join(lines) + "\\n", "utf-8")
""",
    )
    result = cli(collected.config, "items", "edit", str(item["id"]), env={"EDITOR": editor})
    assert result.exit_code == 0, result.output
    after = curate.get_item(collected.store, item["id"])
    assert after["title_edited"] == "Maubeuge : 64 logements réhabilités"
    assert after["summary_edited"] == "Résumé écrit dans l'éditeur."
    assert after["title"] == item["title"]
    unchanged = cli(
        collected.config,
        "items",
        "edit",
        str(item["id"]),
        env={"EDITOR": _editor(tmp_path, "pass\n")},
    )
    assert unchanged.exit_code == 0 and unchanged.output.strip() == "No change."
    reverted = cli(collected.config, "items", "edit", str(item["id"]), "--revert")
    assert reverted.exit_code == 0 and "original text" in reverted.output
    assert curate.get_item(collected.store, item["id"])["title_edited"] is None


def test_editor_conflict_with_another_terminal(
    collected: Collected, cli: Any, tmp_path: Path
) -> None:
    """While alice is in her editor, bob edits the same item from another process."""
    item = collected.find("Saint-Quentin-en-Yvelines")
    bob = [
        sys.executable,
        "-m",
        "pressreview",
        "--config",
        str(collected.config.path),
        "--as",
        "bob",
        "items",
        "edit",
        str(item["id"]),
        "--title",
        "Titre de Bob",
    ]
    editor = _editor(
        tmp_path,
        f"""
subprocess.run({bob!r}, check=True, capture_output=True)
text = path.read_text("utf-8").replace("Title: ", "Title: Alice : ", 1)
path.write_text(text, "utf-8")
""",
    )
    result = cli(
        collected.config, "--as", "alice", "items", "edit", str(item["id"]), env={"EDITOR": editor}
    )
    assert result.exit_code == 1
    message = result.output.strip()
    assert len(message.splitlines()) == 1
    assert f"item {item['id']} changed since you read it" in message
    assert "title set to 'Titre de Bob' by bob" in message
    kept = Path(message.rsplit("your text is kept in ", 1)[1])
    assert "Title: Alice : Saint-Quentin" in kept.read_text("utf-8")
    assert curate.get_item(collected.store, item["id"])["title_edited"] == "Titre de Bob"


# -- add by URL -------------------------------------------------------------------------

PAGE = """<!doctype html><html lang="fr"><head><meta charset="utf-8">
<title>Titre de l'onglet | Le Journal</title>
<meta property="og:title" content="Beauvais signe son contrat de ville Quartiers 2030">
<meta property="og:description"
 content="Le Beauvaisis et l&#39;État ont signé le contrat pour Argentine et Saint-Jean.">
<meta property="og:site_name" content="Le Journal de l'Oise">
<meta property="article:published_time" content="2024-06-12T10:30:00+02:00">
</head><body><p>Texte.</p></body></html>"""


def test_add_by_url_reads_the_page(collected: Collected, cli: Any, httpserver: Any) -> None:
    httpserver.expect_request("/article-beauvais").respond_with_data(
        PAGE, content_type="text/html; charset=utf-8"
    )
    url = httpserver.url_for("/article-beauvais") + "?utm_source=twitter"
    result = cli(
        collected.config, "--as", "alice", "items", "add", url, "--section", "signatures", "--json"
    )
    assert result.exit_code == 0, result.output
    item = json.loads(result.output)
    assert item["title"] == "Beauvais signe son contrat de ville Quartiers 2030"
    assert item["outlet"] == "Le Journal de l'Oise"
    assert item["published_at"] == "2024-06-12T08:30:00+00:00"
    assert item["excerpt"].startswith("Le Beauvaisis et l'État")
    assert item["status"] == "selected" and item["section"] == "signatures"
    assert item["origin"] == "manual" and "utm_source" not in item["url"]
    again = cli(collected.config, "items", "add", url)
    assert again.exit_code == 1
    assert f"already stored as item {item['id']}" in again.output
    log = curate.read_log(collected.store, item_id=item["id"])
    assert [e["action"] for e in log] == ["item.select", "item.add"] and log[1]["actor"] == "alice"
    found = curate.search_items(collected.config, collected.store, "beauvais")
    assert item["id"] in {f["id"] for f in found}


def test_add_when_the_page_cannot_be_fetched(
    collected: Collected, cli: Any, httpserver: Any
) -> None:
    httpserver.expect_request("/gone").respond_with_data("not here", status=404)
    url = httpserver.url_for("/gone")
    refused = cli(collected.config, "items", "add", url)
    assert refused.exit_code == 1
    assert (
        "cannot fetch" in refused.output
        and "HTTP 404" in refused.output
        and "--title" in refused.output
    )
    result = cli(
        collected.config,
        "items",
        "add",
        url,
        "--title",
        "Creil : une dépêche sans page",
        "--date",
        "2026-11-02",
        "--outlet",
        "AFP",
        "--no-select",
    )
    assert result.exit_code == 0, result.output
    assert "Warning: could not read" in result.output and "HTTP 404" in result.output
    added = collected.find("une dépêche sans page")
    assert added["status"] == "new" and added["outlet"] == "AFP"
    assert added["territories"] == ["Creil Sud Oise"]
    assert added["published_at"].isoformat() == "2026-11-01T23:00:00+00:00"
    bad = cli(collected.config, "items", "add", "ftp://example.org/x", "--title", "x")
    assert bad.exit_code == 2


@pytest.mark.parametrize(
    "command",
    [
        ["items"],
        ["items", "list"],
        ["items", "show"],
        ["items", "select"],
        ["items", "reject"],
        ["items", "reset"],
        ["items", "edit"],
        ["items", "move"],
        ["items", "add"],
        ["review"],
        ["log"],
    ],
)
def test_every_command_has_help_and_docs(cli: Any, command: list[str]) -> None:
    result = cli(None, *command, "--help")
    assert result.exit_code == 0
    assert "Usage:" in result.output
    docs = (Path(__file__).resolve().parent.parent / "docs" / "curation.md").read_text("utf-8")
    assert f"pressreview {' '.join(command)}" in docs


def test_version_checks_and_log_of_an_unknown_item(
    collected: Collected, cli: Any, tmp_path: Path
) -> None:
    config = collected.config
    item = collected.find("Saint-Quentin-en-Yvelines")
    item_id, version = str(item["id"]), item["version"]
    # A version the item never had is not reported as someone else's change.
    ahead = cli(config, "items", "edit", item_id, "--title", "T", "--version", "99")
    assert ahead.exit_code == 1
    assert ahead.output.strip() == (
        f"Error: item {item_id} is at version {version}, not 99; nothing was saved "
        f"(see `pressreview items show {item_id}`)"
    )
    # With $EDITOR, a stale --version is refused before the editor opens, naming the change.
    cli(config, "--as", "bob", "items", "edit", item_id, "--title", "Titre de Bob")
    opened = tmp_path / "editor-was-opened"
    editor = _editor(tmp_path, f"pathlib.Path({str(opened)!r}).touch()\n")
    stale = cli(
        config, "--as", "alice", "items", "edit", item_id, "--version", str(version),
        env={"EDITOR": editor},
    )  # fmt: skip
    assert stale.exit_code == 1 and not opened.exists()
    assert f"item {item_id} changed since you read it" in stale.output
    assert "title set to 'Titre de Bob' by bob" in stale.output
    # The audit log of an item that does not exist is refused like any unknown id.
    missing = cli(config, "log", "--item", "99999")
    assert missing.exit_code == 1
    assert missing.output.strip().startswith("Error: no item 99999")
    assert "Titre de Bob" in cli(config, "log", "--item", item_id).output


def test_unknown_territory_message_stays_short(collected: Collected, make_config: Any) -> None:
    many = [{"name": f"Territoire {i}", "aliases": [f"T{i}"]} for i in range(60)]
    config = make_config(database_url=collected.store.url, territories=many)
    with pytest.raises(UsageError) as info:
        curate.count_items(config, collected.store, curate.ItemQuery(territory=["Tombouctou"]))
    message = str(info.value)
    assert "unknown territory 'Tombouctou'" in message and "and 52 more" in message
    assert len(message) < 250
    assert curate.count_items(config, collected.store, curate.ItemQuery(territory=["T7"])) == 0


def test_add_stores_where_a_redirect_leads(collected: Collected, cli: Any, httpserver: Any) -> None:
    """A short or old address is stored as the page it leads to: what a feed will carry later."""
    article = httpserver.url_for("/2026/11/beauvais-contrat")
    httpserver.expect_request("/2026/11/beauvais-contrat").respond_with_data(
        PAGE, content_type="text/html; charset=utf-8"
    )
    httpserver.expect_request("/s/x7").respond_with_data(
        "", status=301, headers={"Location": article + "?utm_campaign=short"}
    )
    result = cli(collected.config, "items", "add", httpserver.url_for("/s/x7"), "--json")
    assert result.exit_code == 0, result.output
    item = json.loads(result.output)
    assert item["url"] == article
    again = cli(collected.config, "items", "add", article)
    assert again.exit_code == 1 and f"already stored as item {item['id']}" in again.output


def test_bulk_reset_acts_on_decided_items(collected: Collected, cli: Any) -> None:
    config = collected.config
    a = collected.find("Calais : le Beau-Marais")["id"]
    b = collected.find("Dunkerque : la CUD lance")["id"]
    assert cli(config, "items", "select", str(a)).exit_code == 0
    assert cli(config, "items", "reject", str(b)).exit_code == 0
    result = cli(config, "items", "reset", "--since", "2000-01-01", "--yes")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Reset 2 items to new: ")
    assert {collected.rows(id=i)[0]["status"] for i in (a, b)} == {"new"}
    assert collected.rows(status="selected") == collected.rows(status="rejected") == []


@pytest.mark.parametrize("columns", [80, 120])
def test_list_fits_a_real_terminal(collected: Collected, columns: int) -> None:
    """In a pseudo-terminal of that width (no COLUMNS variable), no line is longer."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    command = [sys.executable, "-m", "pressreview", "--config", str(collected.config.path)]
    child = subprocess.Popen(
        [*command, "items", "list", "--status", "all", "--limit", "0"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env={**env, "TERM": "xterm"},
    )
    os.close(slave)
    output = bytearray()
    try:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the program ended and closed the terminal
                break
            if not chunk:
                break
            output += chunk
        assert child.wait(timeout=30) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        os.close(master)
    text = re.sub(r"\x1b\[[0-9;]*m", "", output.decode("utf-8"))
    lines = text.replace("\r\n", "\n").splitlines()
    assert lines[0].split() == ["id", "date", "st", "outlet", "section", "title"]
    assert len(lines) > 20 and max(len(line) for line in lines) <= columns
    assert max(len(line) for line in lines) > columns - 10  # the width is used

"""The command line as a new user meets it: help, examples, --json, widths, serve."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import click
import pytest
from fixtures_curate import Collected, collected_fixture  # noqa: F401

from pressreview import curate
from pressreview.cli import main


def _commands(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            found += _commands(command, (*path, name))
        else:
            found.append((*path, name))
    return found


COMMANDS = _commands(main)


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c) for c in COMMANDS])
def test_every_command_help_has_an_example(cli: Any, command: tuple[str, ...]) -> None:
    result = cli(None, *command, "--help")
    assert result.exit_code == 0
    text = result.output.split("Options:")[0]
    assert "Example" in text, f"`pressreview {' '.join(command)} --help` shows no example"
    examples = text.split("Example", 1)[1]
    assert f"pressreview {' '.join(command)}" in examples or (
        # a group's subcommand may be shown with global options first
        "pressreview --config" in examples and command[-1] in examples
    )


def test_typical_week_lists_every_step(cli: Any) -> None:
    out = cli(None, "--help").output
    week = out.split("Typical week:")[1].split("Options:")[0]
    steps = ["collect", "review", "issue new", "issue publish", "archive build", "send"]
    positions = [week.index(f"pressreview {step}") for step in steps]
    assert positions == sorted(positions)
    assert "scheduler" in week


def test_items_list_uses_the_width_it_is_given(collected: Collected, cli: Any) -> None:
    wide = cli(collected.config, "items", "list", "--limit", "0", env={"COLUMNS": "160"})
    lines = wide.output.splitlines()[1:-1]
    assert max(len(line) for line in lines) > 100 and all(len(line) <= 160 for line in lines)
    title_start = lines[0].rstrip().split("  ")[-1]
    longest = max(len(line.rstrip().split("  ")[-1]) for line in lines)
    assert longest > 60, title_start


def test_review_wraps_at_word_boundaries(collected: Collected, cli: Any) -> None:
    result = cli(collected.config, "review", input="q", env={"COLUMNS": "50"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    shown = lines[2 : lines.index(next(line for line in lines if line.startswith("section:")))]
    assert shown and all(len(line) <= 50 for line in shown), shown
    first = curate.get_item(
        collected.store, curate.review_queue(collected.config, collected.store)[0]
    )
    words = set(" ".join(shown).split())
    assert set(curate.display_title(first).split()) <= words  # no word was cut


def test_json_output_of_curation_commands(collected: Collected, cli: Any) -> None:
    config = collected.config
    a = collected.find("Calais : le Beau-Marais")["id"]
    b = collected.find("Dunkerque : la CUD lance")["id"]
    shape = set(json.loads(cli(config, "items", "show", str(a), "--json").output))
    selected = json.loads(cli(config, "items", "select", str(a), str(b), "--json").output)
    assert [i["id"] for i in selected] == [a, b] and all(set(i) == shape for i in selected)
    assert {i["status"] for i in selected} == {"selected"}
    moved = json.loads(cli(config, "items", "move", str(b), "--before", str(a), "--json").output)
    assert moved["id"] == b and set(moved) == shape
    edited = json.loads(cli(config, "items", "edit", str(a), "--title", "Titre", "--json").output)
    assert edited["title_edited"] == "Titre" and set(edited) == shape
    rejected = json.loads(cli(config, "items", "reject", str(b), "--json").output)
    assert rejected[0]["status"] == "rejected" and set(rejected[0]) == shape

    new = json.loads(cli(config, "issue", "new", "--title", "Numéro", "--json").output)
    shown = json.loads(cli(config, "issue", "show", "--json").output)
    assert set(new) == set(shown) and new["snapshot"]["item_count"] == 1
    show_shape = set(shown)
    published = json.loads(cli(config, "issue", "publish", "--json").output)
    assert published["snapshot"]["number"] == 1 and set(published) == show_shape
    added = json.loads(cli(config, "subscribers", "add", "marie@example.fr", "--json").output)
    listed = json.loads(cli(config, "subscribers", "list", "--json").output)
    assert added == listed[0] and added["email"] == "marie@example.fr"


def test_edit_of_a_published_item_refuses_before_the_editor(
    collected: Collected, cli: Any, tmp_path: Path
) -> None:
    item = collected.find("Calais : le Beau-Marais")
    number = collected.publish([item["id"]])
    opened = tmp_path / "editor-was-opened"
    script = tmp_path / "editor.py"
    script.write_text(f"import pathlib\npathlib.Path({str(opened)!r}).touch()\n")
    editor = f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}"
    result = cli(collected.config, "items", "edit", str(item["id"]), env={"EDITOR": editor})
    assert result.exit_code == 1 and not opened.exists()
    assert f"published issue n° {number}" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_serve_says_where_it_listens_once(collected: Collected, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PRESSREVIEW_SECRET_KEY": "tests-only-7Hq2-secret-Zx9wLmP4vR8s",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("PRESSREVIEW_DATABASE_URL", None)
    command = [sys.executable, "-m", "pressreview", "--config", str(collected.config.path)]
    proc = subprocess.Popen(
        [*command, "serve", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            ready.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        assert ready.wait(timeout=60), "serve printed nothing"
        time.sleep(1.0)  # anything else it would print at start
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    output = "".join(lines)
    assert output.count("Serving on http://127.0.0.1:") == 1, output
    assert "Running on" not in output

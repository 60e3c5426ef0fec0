"""`pressreview collect` as a user runs it: table, JSON, exit codes, progress bar."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from fixtures_collect import FAST_COLLECT, rss
from pytest_httpserver import HTTPServer

FEED = rss(
    "Le Courrier",
    [
        ("c-1", "https://courrier.example.fr/1", "Creil signe son contrat de ville Quartiers 2030"),
        ("c-2", "https://courrier.example.fr/2", "Match de football à Creil"),
    ],
)


def _config(make_config: Any, httpserver: HTTPServer, *, broken: bool = False) -> Any:
    httpserver.expect_request("/ok.xml").respond_with_data(FEED, content_type="application/rss+xml")
    httpserver.expect_request("/gone.xml").respond_with_data("missing", status=404)
    feeds = [{"name": "Courrier", "url": httpserver.url_for("/ok.xml")}]
    if broken:
        feeds.append({"name": "Cassé", "url": httpserver.url_for("/gone.xml")})
    return make_config(feeds=feeds, collect=FAST_COLLECT)


def test_exit_0_and_the_end_table(make_config: Any, httpserver: HTTPServer, cli: Any) -> None:
    config = _config(make_config, httpserver)
    result = cli(config, "collect")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:4] == ["source", "status", "new", "upd"]
    assert lines[1].split()[:3] == ["Courrier", "ok", "2"]
    assert lines[-1] == (
        "2 new (1 filtered out, 0 other outlets of known stories), 0 updated, 0 source(s) failed."
    )
    assert "\x1b[" not in result.output and "━" not in result.output  # no bar, no colour
    again = cli(config, "collect")
    assert again.exit_code == 0 and again.output.splitlines()[1].split()[:2] == [
        "Courrier",
        "unchanged",
    ]


def test_exit_1_when_a_source_fails(make_config: Any, httpserver: HTTPServer, cli: Any) -> None:
    config = _config(make_config, httpserver, broken=True)
    result = cli(config, "collect")
    assert result.exit_code == 1
    row = next(line for line in result.output.splitlines() if line.startswith("Cassé"))
    assert "failed" in row and "HTTP 404 Not Found" in row
    assert "1 source(s) failed." in result.output
    data = json.loads(cli(config, "collect", "--json", "--force").output)
    assert data["totals"]["failed"] == 1
    assert [s["status"] for s in data["sources"]] == ["unchanged", "failed"]


def test_backing_off_source_is_reported_as_skipped(
    make_config: Any, httpserver: HTTPServer, cli: Any
) -> None:
    config = _config(make_config, httpserver, broken=True)
    cli(config, "collect")
    result = cli(config, "collect")
    assert result.exit_code == 0  # nothing failed in this run
    row = next(line for line in result.output.splitlines() if line.startswith("Cassé"))
    assert "skipped" in row and "backing off until" in row and "HTTP 404" in row


def test_exit_2_for_an_unknown_source(make_config: Any, httpserver: HTTPServer, cli: Any) -> None:
    config = _config(make_config, httpserver)
    result = cli(config, "collect", "--source", "Inconnu")
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "Error: unknown source 'Inconnu' (sources in the config: Courrier)"
    ]
    assert len(httpserver.log) == 0


def test_an_unknown_source_among_many_names_ten(make_config: Any, cli: Any) -> None:
    feeds = [{"name": f"Source {i:03d}", "url": f"https://s{i}.example.fr/rss"} for i in range(250)]
    config = make_config(feeds=feeds)
    result = cli(config, "collect", "--source", "Inconnu")
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert "Source 009" in line and "Source 010" not in line
    assert line.endswith("... 250 in all: pressreview feeds list)")


def test_exit_2_for_a_bad_config(tmp_path: Path, cli: Any) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text("feeds:\n  - name: Sans adresse\n", "utf-8")
    result = cli(path, "collect")
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "Error: feeds[0].url: missing (this key is required)"
    ]


def test_source_option_collects_only_that_source(
    make_config: Any, httpserver: HTTPServer, cli: Any
) -> None:
    config = _config(make_config, httpserver, broken=True)
    result = cli(config, "collect", "--source", "courrier", "--json")
    assert result.exit_code == 0
    assert [s["name"] for s in json.loads(result.output)["sources"]] == ["Courrier"]


def _run_on_a_terminal(args: list[str], cwd: Path) -> tuple[int, str]:
    """Run the real command with stdout and stderr on a pseudo-terminal."""
    master, slave = pty.openpty()
    env = {**os.environ, "COLUMNS": "100", "TERM": "xterm"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pressreview", *args], stdin=slave, stdout=slave, stderr=slave,
        cwd=cwd, env=env, close_fds=True,
    )  # fmt: skip
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    os.close(master)
    return proc.wait(timeout=30), b"".join(chunks).decode("utf-8", "replace")


def test_progress_bar_only_on_a_terminal(
    make_config: Any, httpserver: HTTPServer, tmp_path: Path
) -> None:
    config = _config(make_config, httpserver)
    code, output = _run_on_a_terminal(["--config", str(config.path), "collect"], tmp_path)
    assert code == 0, output
    assert "━" in output  # the bar was drawn (then cleared)
    assert "Courrier" in output and "0 source(s) failed." in output
    code, output = _run_on_a_terminal(["--config", str(config.path), "collect", "--json"], tmp_path)
    assert code == 0 and "━" not in output
    piped = subprocess.run(
        [sys.executable, "-m", "pressreview", "--config", str(config.path), "collect"],
        capture_output=True, text=True, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert piped.returncode == 0 and "━" not in piped.stdout + piped.stderr

"""`pressreview review` driven by scripted keys (CliRunner input), on a collected store."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any

import pytest
from fixtures_curate import Collected, collected_fixture  # noqa: F401

from pressreview import curate
from pressreview.errors import Conflict
from pressreview.store import Store


def _queue(collected: Collected) -> list[dict[str, Any]]:
    ids = curate.review_queue(collected.config, collected.store)
    return [curate.get_item(collected.store, i) for i in ids]


def test_review_select_reject_skip_quit(collected: Collected, cli: Any) -> None:
    queue = _queue(collected)
    total = len(queue)
    # 1: select into section 2 (renouvellement); 2: select, Enter = detected section;
    # 3: reject; 4: skip with space; 5: "?" help then quit.
    keys = "s2" + "s\r" + "r" + " " + "?" + "q"
    result = cli(collected.config, "--as", "carla", "review", input=keys)
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"[1 / {total}]" in out and f"[5 / {total}]" in out and f"[6 / {total}]" not in out
    assert queue[0]["title"] in out
    assert "section: 1=signatures  2=renouvellement  3=vie-des-quartiers" in out
    assert "undo the last decision" in out  # the help was shown
    assert f"Reviewed 4 / {total}: 2 selected, 1 rejected, 0 edited, 1 skipped." in out
    after = [curate.get_item(collected.store, i["id"]) for i in queue[:5]]
    assert (after[0]["status"], after[0]["section"]) == ("selected", "renouvellement")
    assert (after[1]["status"], after[1]["section"]) == ("selected", queue[1]["section"])
    assert after[2]["status"] == "rejected"
    assert after[3]["status"] == "new" and after[4]["status"] == "new"
    actors = {e["actor"] for e in curate.read_log(collected.store)}
    assert actors == {"carla"}


def test_review_undo_goes_back_and_restores(collected: Collected, cli: Any) -> None:
    queue = _queue(collected)
    keys = "s1" + "r" + "u" + "u" + "k" + "q"
    result = cli(collected.config, "review", input=keys)
    assert result.exit_code == 0, result.output
    assert f"↶ undone: rejected #{queue[1]['id']}" in result.output
    assert f"↶ undone: selected #{queue[0]['id']}" in result.output
    first, second = (curate.get_item(collected.store, i["id"]) for i in queue[:2])
    assert (first["status"], first["section"], first["position"]) == (
        "new",
        queue[0]["section"],
        None,
    )
    assert second["status"] == "new"
    actions = [e["action"] for e in curate.read_log(collected.store, item_id=queue[0]["id"])]
    assert actions == ["item.undo", "item.select"]
    assert "Nothing to undo." in cli(collected.config, "review", input="uq").output


def test_review_edit_with_editor_then_select(
    collected: Collected, cli: Any, tmp_path: Path
) -> None:
    queue = _queue(collected)
    script = tmp_path / "editor.py"
    script.write_text(
        "import pathlib, sys\np = pathlib.Path(sys.argv[1])\n"
        "t = p.read_text('utf-8').replace('Title: ', 'Title: [Revu] ', 1)\n"
        "p.write_text(t, 'utf-8')\n"
    )
    result = cli(
        collected.config, "review", input="es\rq", env={"EDITOR": f"{sys.executable} {script}"}
    )
    assert result.exit_code == 0, result.output
    item = curate.get_item(collected.store, queue[0]["id"])
    assert item["title_edited"] == "[Revu] " + queue[0]["title"]
    assert item["status"] == "selected"
    assert "1 selected, 0 rejected, 1 edited" in result.output


def test_review_passes_over_items_decided_elsewhere(collected: Collected, cli: Any) -> None:
    queue = _queue(collected)
    session = curate.ReviewSession(
        collected.config, collected.store, [i["id"] for i in queue], actor="dan"
    )
    assert session.current()["id"] == queue[0]["id"]  # type: ignore[index]
    other = Store(collected.store.url)
    try:
        # Someone else, on another connection, edits the shown item and rejects the next one.
        curate.edit_item(other, queue[0]["id"], title="Changé par Eve", actor="eve")
        curate.reject_items(other, [queue[1]["id"]], actor="eve")
    finally:
        other.close()
    with pytest.raises(Conflict, match="title set to 'Changé par Eve' by eve"):
        session.select()
    assert curate.get_item(collected.store, queue[0]["id"])["status"] == "new"
    session.skip()
    current = session.current()
    assert [p["id"] for p in session.passed] == [queue[1]["id"]]
    assert current is not None and current["id"] == queue[2]["id"]


def test_review_with_nothing_to_do(collected: Collected, cli: Any) -> None:
    result = cli(collected.config, "review", "--search", "zzzzzz")
    assert result.exit_code == 0 and result.output.strip() == "Nothing to review: no new item."
    ids = [i["id"] for i in _queue(collected)][:2]
    curate.select_items(collected.store, ids, actor="x")
    # The end of the queue ends the review (no key left to read either).
    result = cli(collected.config, "review", "--search", "renouvellement", input="kkkkkkkkkkkkk")
    assert result.exit_code == 0 and "skipped." in result.output


def test_review_filtered_items_to_rescue_them(collected: Collected, cli: Any) -> None:
    filtered = curate.review_queue(
        collected.config, collected.store, curate.ItemQuery(status=["filtered"])
    )
    assert filtered
    result = cli(collected.config, "review", "--status", "filtered", input="s0q")
    assert result.exit_code == 0, result.output
    assert f"[1 / {len(filtered)}]" in result.output
    rescued = curate.get_item(collected.store, filtered[0])
    assert (rescued["status"], rescued["section"]) == ("selected", None)


def test_review_section_choice_can_be_cancelled(collected: Collected, cli: Any) -> None:
    first = _queue(collected)[0]
    result = cli(collected.config, "review", input="s\x1b" + "s9" + "q")
    assert result.exit_code == 0, result.output
    assert "cancelled: not selected" in result.output
    assert "no section '9'; not selected" in result.output
    assert "0 selected" in result.output
    assert curate.get_item(collected.store, first["id"])["status"] == "new"


class _Terminal:
    """The master side of a pseudo-terminal: what the program shows, keys to send."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.seen = bytearray()
        self._start = 0

    def expect(self, marker: bytes) -> None:
        """Read until ``marker`` appears after the previous one (20 s at most)."""
        deadline = time.monotonic() + 20
        while marker not in self.seen[self._start :]:
            ready, _, _ = select.select([self.fd], [], [], max(deadline - time.monotonic(), 0))
            try:
                chunk = os.read(self.fd, 4096) if ready else b""
            except OSError:  # the program closed the terminal
                chunk = b""
            if not chunk:
                raise AssertionError(f"no {marker!r} after: {bytes(self.seen)!r}")
            self.seen += chunk
        self._start = self.seen.index(marker, self._start) + len(marker)

    def key(self, key: bytes) -> None:
        """Type one key once the program reads single keys (raw mode: no line editing).

        Keys typed before that would be flushed when the terminal switches mode.
        """
        deadline = time.monotonic() + 20
        while termios.tcgetattr(self.fd)[3] & termios.ICANON:
            assert time.monotonic() < deadline, "the program never read a single key"
            time.sleep(0.01)
        os.write(self.fd, key)


def test_review_in_a_real_terminal(collected: Collected) -> None:
    """Single keys in raw mode (Enter is \\r there), through a pseudo-terminal."""
    queue = _queue(collected)
    master, slave = pty.openpty()
    command = [sys.executable, "-m", "pressreview", "--config", str(collected.config.path)]
    child = subprocess.Popen(
        [*command, "--as", "tty", "review"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env={**os.environ, "COLUMNS": "100", "TERM": "dumb"},
    )
    os.close(slave)
    term = _Terminal(master)
    try:
        term.expect(b"[1 / ")
        term.expect(b"\n> ")
        term.key(b"s")
        term.expect(b"section> ")
        term.key(b"\r")  # Enter: the detected section
        term.expect(b"[2 / ")
        term.expect(b"\n> ")
        term.key(b"r")
        term.expect(b"[3 / ")
        term.expect(b"\n> ")
        term.key(b"q")
        term.expect(b"skipped.")
        assert child.wait(timeout=20) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        os.close(master)
    assert "1 selected, 1 rejected, 0 edited, 0 skipped." in term.seen.decode("utf-8")
    first, second = (curate.get_item(collected.store, i["id"]) for i in queue[:2])
    assert (first["status"], first["section"]) == ("selected", queue[0]["section"])
    assert second["status"] == "rejected"
    assert {e["actor"] for e in curate.read_log(collected.store)} == {"tty"}


def test_undo_of_a_decision_changed_elsewhere_moves_on(collected: Collected) -> None:
    queue = [i["id"] for i in _queue(collected)]
    session = curate.ReviewSession(collected.config, collected.store, queue, actor="dan")
    session.current()
    session.select()
    session.current()
    session.reject()
    other = Store(collected.store.url)
    try:
        curate.edit_item(other, queue[1], title="Changé par Eve", actor="eve")
    finally:
        other.close()
    with pytest.raises(Conflict, match=rf"cannot undo rejected #{queue[1]}: .*by eve"):
        session.undo()
    assert curate.get_item(collected.store, queue[1])["status"] == "rejected"
    step = session.undo()  # the step before it
    assert step is not None and step.item_id == queue[0]
    assert curate.get_item(collected.store, queue[0])["status"] == "new"
    assert session.undo() is None

"""Every command has help text and is documented in README.md or docs/ (as sqlite-utils does)."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from pressreview.cli import main

ROOT = Path(__file__).resolve().parent.parent


def _commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    found = []
    for name, command in sorted(group.commands.items()):
        full = f"{prefix}{name}"
        found.append((full, command))
        if isinstance(command, click.Group):
            found += _commands(command, f"{full} ")
    return found


COMMANDS = _commands(main)


def _documentation() -> str:
    texts = [(ROOT / "README.md").read_text("utf-8")]
    texts += [p.read_text("utf-8") for p in sorted((ROOT / "docs").glob("*.md"))]
    return "\n".join(texts)


@pytest.mark.parametrize(("name", "command"), COMMANDS, ids=[n for n, _ in COMMANDS])
def test_command_has_help(name: str, command: click.Command) -> None:
    assert (command.help or command.short_help or "").strip(), f"{name} has no help text"


@pytest.mark.parametrize("name", [n for n, _ in COMMANDS])
def test_command_is_documented(name: str) -> None:
    pattern = re.compile(r"pressreview(?: --?\S+(?: \S+)?)* " + re.escape(name) + r"\b")
    assert pattern.search(_documentation()), f"`pressreview {name}` is not in README.md or docs/"


def test_quick_start_has_two_lines() -> None:
    readme = (ROOT / "README.md").read_text("utf-8")
    section = readme.split("## Quick start", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None
    lines = [line for line in block.group(1).splitlines() if line.strip()]
    assert len(lines) == 2


def _config_keys() -> list[str]:
    import dataclasses
    import typing

    from pressreview.config import Config

    keys: list[str] = []

    def walk(cls: type, prefix: str) -> None:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            if f.metadata.get("internal"):
                continue
            name, tp = prefix + f.name, hints[f.name]
            keys.append(name)
            if typing.get_origin(tp) is tuple:
                tp, name = typing.get_args(tp)[0], name + "[]"
            if dataclasses.is_dataclass(tp):
                walk(tp, name + ".")  # type: ignore[arg-type]

    walk(Config, "")
    return keys


@pytest.mark.parametrize("key", _config_keys())
def test_config_key_is_documented(key: str) -> None:
    reference = (ROOT / "docs" / "configuration.md").read_text("utf-8")
    assert f"`{key}`" in reference, f"{key} is missing from docs/configuration.md"

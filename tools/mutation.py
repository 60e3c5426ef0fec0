"""Mutation testing of the trust-critical modules, with mutmut.

    python tools/mutation.py                    # every target (tens of minutes)
    python tools/mutation.py tokens web         # some targets
    python tools/mutation.py --list             # the targets, their files and tests
    python tools/mutation.py --report tokens    # figures of the last run, no new run
    python tools/mutation.py --survivors tokens # the diff of each surviving mutant

Not part of the test suite (too slow). Needs the `mutation` extra
(``pip install -e '.[test,mutation]'``). PostgreSQL cases run when
PRESSREVIEW_TEST_POSTGRES_URL is set, as in the test suite.

How it works, per target: the tracked files of the project are copied into
``.mutation/<target>/`` (ignored by git), mutmut is configured there to mutate
only the target's file and to run only the target's tests, and ``mutmut run``
runs. mutmut copies the package into ``mutants/`` with every mutant behind a
switch; ``PYTHONPATH`` points at that copy so that the subprocesses a test
starts (CLI runs, the killed sender) run the mutant too.

A mutant is *killed* when a test fails with it, *survived* when every test
passes. Some targets count only some functions (``functions`` below: the
sanitizing and URL functions of text.py, the validation of config.py).
Mutants that cannot change behaviour are listed, each with one line on why,
in ``tools/mutation_equivalent.toml`` and left out of the score:

    score = killed / (killed + survived - equivalent survivors)

Timeouts count as killed (the mutant made a test hang); "no tests" (no test
reaches the function) counts as survived. The figures are in
docs/testing.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".mutation"
EQUIVALENT = Path(__file__).with_name("mutation_equivalent.toml")


@dataclass(frozen=True)
class Target:
    file: str
    tests: tuple[str, ...]
    functions: tuple[str, ...] = ()  # empty: every function of the file


TARGETS: dict[str, Target] = {
    "tokens": Target(
        "pressreview/tokens.py",
        ("tests/test_tokens.py", "tests/test_web.py", "tests/test_deliver_send.py"),
    ),
    "deliveries": Target(
        "pressreview/store/deliveries.py",
        (
            "tests/test_deliveries.py",
            "tests/test_deliver_send.py",
            "tests/test_deliver_crash.py",
            "tests/test_deliver_failures.py",
        ),
    ),
    "campaign": Target(
        "pressreview/deliver/campaign.py",
        (
            "tests/test_deliver_campaign.py",
            "tests/test_deliver_send.py",
            "tests/test_deliver_crash.py",
            "tests/test_deliver_failures.py",
        ),
    ),
    "message": Target(
        "pressreview/deliver/message.py",
        ("tests/test_deliver_message.py", "tests/test_email_quality.py"),
    ),
    "web": Target("pressreview/web.py", ("tests/test_web.py",)),
    "subscribers": Target(
        "pressreview/subscribers.py", ("tests/test_subscribers.py", "tests/test_web.py")
    ),
    "text": Target(
        "pressreview/text.py",
        ("tests/test_text.py", "tests/test_text_properties.py", "tests/test_links_safety.py"),
        functions=(
            "valid_text", "clean_text", "_clean_once", "excerpt", "sanitize_html",
            "_is_tracking", "canonical_url", "safe_url", "host_of",
        ),
    ),
    "config": Target(
        "pressreview/config.py",
        ("tests/test_config.py",),
        functions=(
            "_is_url", "_convert", "_describe", "_build", "_check", "placeholder_problems",
            "check_placeholders", "parse_config", "siren_ok", "qpv_code_ok", "insee_ok",
            "_check_in_division", "check_contracts",
        ),
    ),
}


def _copy_project(dest: Path) -> None:
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    if dest.exists():
        shutil.rmtree(dest)
    for raw in files:
        if not raw:
            continue
        rel = Path(raw.decode())
        if rel.parts[0] == ".mutation" or not (ROOT / rel).is_file():
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dest / rel)


def _also_copy(dest: Path) -> list[str]:
    """Everything the tests read besides the package's modules: mutmut copies only those."""
    paths = [str(p.relative_to(dest)) for p in (dest / "pressreview").rglob("*") if p.is_file() and p.suffix != ".py"]
    paths += [p.name for p in dest.iterdir() if p.name not in {"pressreview", "tests", "mutants", "pyproject.toml"}]
    return sorted(paths)


def _configure(dest: Path, target: Target) -> list[str]:
    tests = [t for t in target.tests if (dest / t).exists()]
    missing = sorted(set(target.tests) - set(tests))
    if missing:
        print(f"  (not found, left out: {', '.join(missing)})")
    quoted = ", ".join(json.dumps(t) for t in tests)
    section = f"""
[tool.mutmut]
source_paths = ["pressreview"]
only_mutate = [{json.dumps(target.file)}]
pytest_add_cli_args = ["-q", "-p", "no:randomly", "-p", "no:cacheprovider", "-m", "not slow"]
pytest_add_cli_args_test_selection = [{quoted}]
also_copy = [{", ".join(json.dumps(p) for p in _also_copy(dest))}]
"""
    with (dest / "pyproject.toml").open("a", encoding="utf-8") as fh:
        fh.write(section)
    return tests


def _run(name: str, target: Target, children: int) -> None:
    dest = WORK / name
    print(f"== {name}: {target.file}")
    _copy_project(dest)
    # tests look for the shared corpora beside the project root
    shared = ROOT.parent / "shared"
    if shared.exists() and not (WORK / "shared").exists():
        (WORK / "shared").symlink_to(shared)
    tests = _configure(dest, target)
    if not tests:
        print("  no tests found: skipped")
        return
    env = dict(os.environ)
    # Made now: a folder missing when Python starts is never searched later.
    (dest / "mutants").mkdir()
    env["PYTHONPATH"] = str(dest / "mutants")
    subprocess.run(
        [sys.executable, "-m", "mutmut", "run", "--max-children", str(children)],
        cwd=dest,
        env=env,
        check=False,
    )


def _equivalents() -> dict[str, str]:
    if not EQUIVALENT.exists():
        return {}
    data = tomllib.loads(EQUIVALENT.read_text(encoding="utf-8"))
    return {str(k): str(v) for k, v in data.get("equivalent", {}).items()}


def _statuses(name: str, target: Target) -> dict[str, int | None]:
    meta = WORK / name / "mutants" / (target.file + ".meta")
    if not meta.exists():
        return {}
    data = json.loads(meta.read_text(encoding="utf-8"))
    codes: dict[str, int | None] = data.get("exit_code_by_key", {})
    if target.functions:
        module = target.file.removesuffix(".py").replace("/", ".")
        wanted = {f"{module}.x_{fn}" for fn in target.functions}
        codes = {k: v for k, v in codes.items() if k.split("__mutmut_")[0] in wanted}
    return codes


KILLED = {1, 3, 36, 24, -24, 152, 255, 37}


def _report(names: list[str]) -> int:
    equivalent = _equivalents()
    rows = []
    worst = 100.0
    for name in names:
        target = TARGETS[name]
        codes = _statuses(name, target)
        if not codes:
            rows.append((name, "-", "-", "-", "-", "no run"))
            continue
        killed = sum(1 for c in codes.values() if c in KILLED)
        survivors = [k for k, c in codes.items() if c not in KILLED]
        eq = [k for k in survivors if k in equivalent]
        total = killed + len(survivors) - len(eq)
        score = 100.0 * killed / total if total else 100.0
        worst = min(worst, score)
        rows.append(
            (name, str(len(codes)), str(killed), str(len(survivors) - len(eq)), str(len(eq)), f"{score:.1f} %")
        )
    header = ("target", "mutants", "killed", "survived", "equivalent", "score")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
    return 0 if worst >= 85.0 else 1


def _survivors(names: list[str]) -> None:
    equivalent = _equivalents()
    for name in names:
        target = TARGETS[name]
        for key, code in sorted(_statuses(name, target).items()):
            if code in KILLED or key in equivalent:
                continue
            print(f"--- {key} (exit code {code})")
            subprocess.run([sys.executable, "-m", "mutmut", "show", key], cwd=WORK / name, check=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", help=f"some of: {', '.join(TARGETS)}")
    parser.add_argument("--list", action="store_true", help="show the targets and exit")
    parser.add_argument("--report", action="store_true", help="figures of the last run only")
    parser.add_argument("--survivors", action="store_true", help="show surviving mutants")
    parser.add_argument("--children", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    unknown = [t for t in args.targets if t not in TARGETS]
    if unknown:
        print(f"unknown target(s): {', '.join(unknown)} (known: {', '.join(TARGETS)})", file=sys.stderr)
        return 2
    names = args.targets or list(TARGETS)
    if args.list:
        for name in names:
            t = TARGETS[name]
            only = f" [{', '.join(t.functions)}]" if t.functions else ""
            print(f"{name}: {t.file}{only}\n    tests: {' '.join(t.tests)}")
        return 0
    if args.survivors:
        _survivors(names)
        return 0
    if not args.report:
        try:
            import mutmut  # noqa: F401
        except ImportError:
            print("mutmut is not installed: pip install -e '.[test,mutation]'", file=sys.stderr)
            return 2
        for name in names:
            _run(name, TARGETS[name], args.children)
    return _report(names)


if __name__ == "__main__":
    sys.exit(main())

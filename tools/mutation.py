"""Mutation testing of the trust-critical modules, with mutmut.

    python tools/mutation.py                    # every target (tens of minutes)
    python tools/mutation.py tokens web         # some targets
    python tools/mutation.py --list             # the targets, their files and tests
    python tools/mutation.py --report tokens    # figures of the last run, no new run
    python tools/mutation.py --survivors tokens # the diff of each surviving mutant
    python tools/mutation.py --sample 60 web    # a fixed random sample of 60 mutants (an estimate)
    python tools/mutation.py --again web        # the survivors again, after tests were added

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
reaches the function) counts as survived; mutants an interrupted run did not
reach are shown as "not run" and left out. The figures are in
docs/testing.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
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
            "tests/test_deliver_race.py",
            "tests/test_deliver_recovery.py",
            "tests/test_deliver_campaign.py",
            "tests/test_deliver_send.py",
            "tests/test_deliver_crash.py",
            "tests/test_deliver_failures.py",
        ),
    ),
    "campaign": Target(
        "pressreview/deliver/campaign.py",
        (
            "tests/test_deliver_campaign.py",
            "tests/test_deliveries.py",
            "tests/test_deliver_race.py",
            "tests/test_deliver_recovery.py",
            "tests/test_deliver_send.py",
            "tests/test_deliver_crash.py",
            "tests/test_deliver_failures.py",
        ),
    ),
    "message": Target(
        "pressreview/deliver/message.py",
        (
            "tests/test_deliver_message.py",
            "tests/test_deliver_message_wire.py",
            "tests/test_deliver_send.py",
            "tests/test_email_quality.py",
        ),
    ),
    "web": Target("pressreview/web.py", ("tests/test_web.py", "tests/test_web_promises.py")),
    "subscribers": Target(
        "pressreview/subscribers.py",
        # The web journeys (test_web.py) are the web target's: with them a run takes hours.
        ("tests/test_subscribers.py", "tests/test_consent.py"),
    ),
    "text": Target(
        "pressreview/text.py",
        ("tests/test_sanitizing.py", "tests/test_text_properties.py", "tests/test_links_safety.py"),
        # What stands between hostile feed content and a reader: the cleaning of
        # text (control characters, tags, entities), the HTML subset, the tracking
        # parameters and the canonical form of links, the check of every href.
        # Not counted: excerpt (it only cuts a text clean_text already cleaned),
        # folding, titles, near-duplicates and term matching (no safety at stake).
        functions=(
            "valid_text",
            "clean_text",
            "_clean_once",
            "sanitize_html",
            "_is_tracking",
            "canonical_url",
            "_canonical_query",
            "safe_url",
            "host_of",
        ),
    ),
    "config": Target(
        "pressreview/config.py",
        (
            "tests/test_config.py",
            "tests/test_config_validation.py",
            "tests/test_contracts.py::test_shipped_list_has_the_known_carriers_with_valid_unique_sirens",
            "tests/test_contracts.py::test_shipped_carriers_are_epci_of_the_official_division",
            "tests/test_contracts.py::test_siren_checksum",
            "tests/test_contracts.py::test_bad_contracts_file_names_the_key",
            "tests/test_contracts.py::test_contracts_file_and_expected_override",
        ),
        # Everything that turns a wrong feeds.yaml (or contracts file) into one
        # ConfigError naming the key: types, unknown and missing keys, cross-field
        # rules, formats and checksums, unreadable files and invalid YAML, and the
        # legal placeholders. Not counted: finding the file and the accessors of
        # Config (no validation in them). _read_contracts is left alone by mutmut
        # (a decorated function): its checks are check_contracts'.
        functions=(
            "_is_url",
            "_type_name",
            "_convert",
            "_describe",
            "_build",
            "_check",
            "placeholder_problems",
            "check_placeholders",
            "parse_config",
            "siren_ok",
            "qpv_code_ok",
            "insee_ok",
            "_load_contracts",
            "_check_in_division",
            "check_contracts",
            "load_config",
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
    paths = [
        str(p.relative_to(dest))
        for p in (dest / "pressreview").rglob("*")
        if p.is_file() and p.suffix != ".py"
    ]
    paths += [
        p.name
        for p in dest.iterdir()
        if p.name not in {"pressreview", "tests", "mutants", "pyproject.toml"}
    ]
    return sorted(paths)


# Appended to the copy's tests/conftest.py: under mutants (and on a loaded machine) a
# property test may exceed hypothesis' deadline, which fails the clean run; and a
# random search would make a mutant killed one run and not the next.
_HYPOTHESIS = """

from hypothesis import settings as _mutation_settings

_mutation_settings.register_profile("mutation", deadline=None, derandomize=True)
_mutation_settings.load_profile("mutation")
"""


def _configure(dest: Path, target: Target) -> list[str]:
    with (dest / "tests" / "conftest.py").open("a", encoding="utf-8") as fh:
        fh.write(_HYPOTHESIS)
    # a test file, or one test of it ("tests/test_x.py::test_y")
    tests = [t for t in target.tests if (dest / t.split("::")[0]).exists()]
    missing = sorted(set(target.tests) - set(tests))
    if missing:
        print(f"  (not found, left out: {', '.join(missing)})")
    quoted = ", ".join(json.dumps(t) for t in tests)
    section = f"""
[tool.mutmut]
source_paths = ["pressreview"]
only_mutate = [{json.dumps(target.file)}]
pytest_add_cli_args = [
    "-q", "-p", "no:randomly", "-p", "no:cacheprovider", "-m", "not slow", "--timeout", "60",
]
pytest_add_cli_args_test_selection = [{quoted}]
also_copy = [{", ".join(json.dumps(p) for p in _also_copy(dest))}]
"""
    with (dest / "pyproject.toml").open("a", encoding="utf-8") as fh:
        fh.write(section)
    return tests


def _module(target: Target) -> str:
    return target.file.removesuffix(".py").replace("/", ".")


def _selection(target: Target) -> list[str]:
    """The mutants to run: all of the file's, or only those of the counted functions."""
    return [f"{_module(target)}.x_{fn}__mutmut_*" for fn in target.functions]


_NAMES = """
import json, sys
from pathlib import Path
from mutmut.mutation.file_mutation import mutate_file_contents
path = sys.argv[1]
print(json.dumps(list(mutate_file_contents(path, Path(path).read_text("utf-8")).mutant_names)))
"""


def _sample(dest: Path, target: Target, size: int) -> list[str]:
    """A fixed random sample (seed 0) of the counted mutants' names, kept in sample.json."""
    names = json.loads(
        subprocess.run(
            [sys.executable, "-c", _NAMES, target.file],
            cwd=dest,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    keys = sorted(f"{_module(target)}.{n}" for n in names)
    if target.functions:
        wanted = {f"{_module(target)}.x_{fn}" for fn in target.functions}
        keys = [k for k in keys if k.split("__mutmut_")[0] in wanted]
    chosen = sorted(random.Random(0).sample(keys, min(size, len(keys))))
    (dest / "sample.json").write_text(
        json.dumps({"of": len(keys), "mutants": chosen}, indent=1), encoding="utf-8"
    )
    print(f"  a sample of {len(chosen)} mutants out of {len(keys)}")
    return chosen


def _run(name: str, target: Target, children: int, sample: int = 0) -> None:
    dest = WORK / name
    print(f"== {name}: {target.file}")
    _copy_project(dest)
    tests = _configure(dest, target)
    if not tests:
        print("  no tests found: skipped")
        return
    # The tests run in mutants/ and look for the shared corpora beside the project
    # root, i.e. beside mutants/ (made after _configure: mutmut must not copy them).
    shared = ROOT.parent / "shared"
    if shared.exists():
        (dest / "shared").symlink_to(shared)
    env = dict(os.environ)
    # Made now: a folder missing when Python starts is never searched later.
    (dest / "mutants").mkdir()
    env["PYTHONPATH"] = str(dest / "mutants")
    # Mutants of functions that do not count are not run at all (minutes saved).
    selection = _sample(dest, target, sample) if sample else _selection(target)
    subprocess.run(
        [sys.executable, "-m", "mutmut", "run", "--max-children", str(children), *selection],
        cwd=dest,
        env=env,
        check=False,
    )


def _again(name: str, target: Target, children: int) -> None:
    """Run the last run's survivors again against the project's current tests.

    Killed mutants stay killed as long as tests were only added (the mutated
    file and the existing tests unchanged): minutes instead of hours.
    """
    dest = WORK / name
    equivalent = _equivalents()
    survivors = sorted(
        k
        for k, c in _statuses(name, target).items()
        if c is not None and c not in KILLED and k not in equivalent
    )
    print(f"== {name}: {len(survivors)} survivor(s) of the last run, against the current tests")
    if not survivors:
        return
    shutil.rmtree(dest / "tests")
    shutil.copytree(ROOT / "tests", dest / "tests")
    with (dest / "tests" / "conftest.py").open("a", encoding="utf-8") as fh:
        fh.write(_HYPOTHESIS)
    env = {**os.environ, "PYTHONPATH": str(dest / "mutants")}
    subprocess.run(
        [sys.executable, "-m", "mutmut", "run", "--max-children", str(children), *survivors],
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
    sample = WORK / name / "sample.json"
    if sample.exists():  # a sampled run: only the sample counts
        chosen = set(json.loads(sample.read_text(encoding="utf-8"))["mutants"])
        codes = {k: v for k, v in codes.items() if k in chosen}
    if target.functions:
        module = _module(target)
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
            rows.append((name, "-", "-", "-", "-", "-", "no run"))
            continue
        # Not run yet (an interrupted or running run): neither killed nor survived.
        pending = sum(1 for c in codes.values() if c is None)
        killed = sum(1 for c in codes.values() if c in KILLED)
        survivors = [k for k, c in codes.items() if c is not None and c not in KILLED]
        eq = [k for k in survivors if k in equivalent]
        total = killed + len(survivors) - len(eq)
        score = 100.0 * killed / total if total else 100.0
        worst = min(worst, score)
        sample = WORK / name / "sample.json"
        of = (
            f" of {json.loads(sample.read_text(encoding='utf-8'))['of']}" if sample.exists() else ""
        )
        rows.append(
            (
                name,
                f"{len(codes)}{of}",
                str(killed),
                str(len(survivors) - len(eq)),
                str(len(eq)),
                str(pending),
                f"{score:.1f} %",
            )
        )
    header = ("target", "mutants", "killed", "survived", "equivalent", "not run", "score")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
    return 0 if worst >= 85.0 else 1


def _survivors(names: list[str]) -> None:
    equivalent = _equivalents()
    for name in names:
        target = TARGETS[name]
        for key, code in sorted(_statuses(name, target).items()):
            if code is None or code in KILLED or key in equivalent:
                continue
            print(f"--- {key} (exit code {code})")
            subprocess.run(
                [sys.executable, "-m", "mutmut", "show", key], cwd=WORK / name, check=False
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", help=f"some of: {', '.join(TARGETS)}")
    parser.add_argument("--list", action="store_true", help="show the targets and exit")
    parser.add_argument("--report", action="store_true", help="figures of the last run only")
    parser.add_argument("--survivors", action="store_true", help="show surviving mutants")
    parser.add_argument("--children", type=int, default=os.cpu_count() or 2)
    parser.add_argument(
        "--again",
        action="store_true",
        help="run the last run's survivors again against the current tests (tests only added)",
    )
    parser.add_argument(
        "--sample",
        type=int,
        default=0,
        metavar="N",
        help="run a fixed random sample of N mutants per target (an estimate, when time is short)",
    )
    args = parser.parse_args()
    unknown = [t for t in args.targets if t not in TARGETS]
    if unknown:
        print(
            f"unknown target(s): {', '.join(unknown)} (known: {', '.join(TARGETS)})",
            file=sys.stderr,
        )
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
            if args.again:
                _again(name, TARGETS[name], args.children)
            else:
                _run(name, TARGETS[name], args.children, args.sample)
    return _report(names)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # output piped into `head`
        sys.stderr.close()
        sys.exit(0)

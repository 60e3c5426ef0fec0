"""Benchmark: render a 40-item issue to HTML (Jinja2 + MJML + minify) and text.

    python benchmarks/render.py [--items 40] [--repeat 50]

Prints the time per render (median of the repeats) and the HTML size against
email.max_html_bytes. Uses a fixed synthetic snapshot: 300-character excerpts,
territories, and two other outlets on every third item.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fixtures_issues import fixed_config, fixed_snapshot

from pressreview import render, templating


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    config = fixed_config()
    snapshot = fixed_snapshot(args.items)
    render.render_email(config, snapshot)  # warm up: template compilation, imports
    env = templating.template_env(config, "email")
    context = render.email_context(config, snapshot)
    timings: dict[str, list[float]] = {
        "full": [],
        "jinja": [],
        "mjml": [],
        "minify": [],
        "text": [],
    }
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        rendered = render.render_email(config, snapshot)
        timings["full"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        source = templating.render_template(env, render.EMAIL_HTML_TEMPLATE, context)
        t1 = time.perf_counter()
        compiled = render.compile_mjml(source)
        t2 = time.perf_counter()
        render.minify_html(compiled)
        t3 = time.perf_counter()
        templating.render_template(env, render.EMAIL_TEXT_TEMPLATE, context)
        t4 = time.perf_counter()
        for key, value in zip(
            ("jinja", "mjml", "minify", "text"), (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True
        ):
            timings[key].append(value)
    ms = {k: statistics.median(v) * 1000 for k, v in timings.items()}
    limit = config.email.max_html_bytes
    print(f"{args.items} items, {args.repeat} renders (median)")
    print(
        f"render_email: {ms['full']:.2f} ms per render "
        f"(Jinja MJML {ms['jinja']:.2f} ms, mjml2html {ms['mjml']:.2f} ms, "
        f"minify {ms['minify']:.2f} ms, text {ms['text']:.2f} ms)"
    )
    print(
        f"HTML: {rendered.html_bytes} bytes ({100 * rendered.html_bytes / limit:.0f}% of "
        f"email.max_html_bytes {limit}); MJML output before minify {len(compiled.encode())} bytes; "
        f"text: {len(rendered.text.encode())} bytes"
    )


if __name__ == "__main__":
    main()

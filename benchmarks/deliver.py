"""Delivery benchmark: 10,000 subscribers, one 40-item issue.

    python benchmarks/deliver.py [--subscribers 10000] [--items 40] [--aiosmtpd 2000] [--naive 500]

Prints, in one run:
  (a) messages built and handed to a null transport, through send_issue (delivery log included);
  against Postfix's smtp-sink (a C server that reads and discards at memory speed, so that the
  sender, not the sink, is measured):
  (e) the floor: a minimal raw client blasting one pre-built message (pipelined envelope, body,
      ".") over 1, 2 and 4 reused connections; what any Python client costs plus the sink;
  (f) send_issue with 1, 2 and 4 connections (delivery.pool_size), each run interleaved with
      its floor, the sender's CPU per message and the ratio to the floor;
  against a local aiosmtpd sink in its own process (a Python server: the sink is the ceiling):
  (b) send_issue (delivery.pool_size connections);
  (c) a naive loop opening one SMTP connection per message (as rss2email does);
  (d) the sink's ceiling: smtplib replaying one pre-built message over reused connections;
and the peak RSS of this (sending) process. Targets: (a) >= 2,000 msg/s; (f) >= 1,000 msg/s with
4 connections, sender CPU <= 0.5 ms per message; (b) >= 80 % of (d) and above (c); peak
RSS <= 200 MB. The store is a SQLite file in a temporary folder (--database-url: an empty
database of your own, e.g. PostgreSQL). Without smtp-sink (Debian: apt-get install postfix; the
Postfix daemon need not run) (e) and (f) are skipped with one line.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert

from pressreview.config import Config, parse_config
from pressreview.deliver.campaign import send_issue
from pressreview.deliver.message import MessageTemplate
from pressreview.deliver.transports import NullTransport, SmtpTransport
from pressreview.render import render_email
from pressreview.store import Store, open_store
from pressreview.store.schema import issues
from pressreview.subscribers import import_subscribers

SECRET = "benchmark-secret-key-0123456789"
PLACES = [
    "Amiens Métropole",
    "Métropole européenne de Lille",
    "Creil Sud Oise",
    "CA de Lens-Liévin",
    "CU d'Arras",
    "CA du Saint-Quentinois",
    "Valenciennes Métropole",
    "CU de Dunkerque",
]
WHAT = [
    "signe son contrat de ville Quartiers 2030 avec l'État et la Région",
    "lance la rénovation de 450 logements sociaux dans le quartier prioritaire",
    "ouvre une maison France services au cœur du QPV",
    "réunit son conseil citoyen pour la première évaluation du contrat",
    "mobilise l'abattement de TFPB pour la gestion urbaine de proximité",
]


def snapshot(number: int, count: int) -> dict[str, Any]:
    keys = [
        ("signatures", "Signatures des contrats de ville"),
        ("renouvellement", "Renouvellement urbain"),
        ("vie-des-quartiers", "Vie des quartiers"),
    ]
    sections: list[dict[str, Any]] = [{"key": k, "title": t, "items": []} for k, t in keys]
    for i in range(count):
        place, what = PLACES[i % len(PLACES)], WHAT[i % len(WHAT)]
        text = (
            f"{place} {what}. Le document, préparé avec les habitants, les bailleurs sociaux "
            "et les "
            "services de l'État, fixe les priorités pour 2030 : emploi des jeunes, tranquillité "
            "publique, réussite éducative et cadre de vie. "
            "Les élus saluent une démarche « plus simple »."
        )[:300]
        sections[i % 3]["items"].append(
            {
                "id": i + 1,
                "title": f"{place} {what}",
                "url": f"https://presse.example.fr/article-{i}",
                "outlet": "La Voix du Nord",
                "published_at": "2026-11-18T09:00:00+00:00",
                "date": "2026-11-18",
                "territories": [place],
                "excerpt": text,
                "summary_html": f"<p>{text}</p>",
                "tags": [],
                "also": [
                    {
                        "outlet": "Courrier picard",
                        "url": f"https://autre.example.fr/{i}",
                        "title": "Reprise",
                    }
                ],
            }
        )
    org = {
        "name": "Centre de ressources politique de la ville",
        "url": "https://crpv.example.org/",
        "logo_url": None,
        "postal_address": "1 rue de l'Exemple, 59000 Lille",
        "contact_email": "contact@crpv.example.org",
        "reason": "Vous êtes abonné·e.",
    }
    return {
        "schema": 1,
        "number": number,
        "title": "Quartiers 2030 : où en sont les signatures ?",
        "intro_md": "Bonjour,",
        "intro_html": "<p>Bonjour,</p>",
        "published_at": "2026-11-23T07:00:00+00:00",
        "date": "2026-11-23",
        "locale": "fr_FR",
        "organisation": org,
        "archive_url": f"https://veille.example.org/numeros/{number}/",
        "item_count": count,
        "sections": sections,
    }


def publish(store: Store, number: int, items: int) -> dict[str, Any]:
    snap = snapshot(number, items)
    stamp = datetime(2026, 11, 23, 7, tzinfo=UTC)
    with store.begin() as conn:
        conn.execute(
            insert(issues).values(
                number=number,
                title=snap["title"],
                intro_md="",
                status="published",
                created_at=stamp,
                updated_at=stamp,
                published_at=stamp,
                snapshot=snap,
                version=1,
            )
        )
    return snap


# -- the sink, in its own process -------------------------------------------------------


def _sink(port: int, count: Any, ready: Any, stop: Any) -> None:
    from aiosmtpd.controller import Controller

    class Counter:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            with count.get_lock():
                count.value += 1
            return "250 OK"

    controller = Controller(Counter(), hostname="127.0.0.1", port=port, data_size_limit=0)
    controller.start()
    ready.set()
    stop.wait()
    controller.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SinkProcess:
    def __init__(self) -> None:
        ctx = mp.get_context("spawn")
        self.port = free_port()
        self.count = ctx.Value("i", 0)
        self.ready, self.stop = ctx.Event(), ctx.Event()
        self.process = ctx.Process(
            target=_sink, args=(self.port, self.count, self.ready, self.stop), daemon=True
        )

    def __enter__(self) -> SinkProcess:
        self.process.start()
        if not self.ready.wait(30):
            raise RuntimeError("the SMTP sink did not start")
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        self.process.join(10)

    @property
    def received(self) -> int:
        return int(self.count.value)


# -- Postfix's smtp-sink, the fast sink ---------------------------------------------------

SMTP_SINK = "smtp-sink"


def smtp_sink_path() -> str | None:
    return shutil.which(SMTP_SINK) or next(
        (p for p in ("/usr/sbin/smtp-sink", "/usr/lib/postfix/sbin/smtp-sink") if Path(p).exists()),
        None,
    )


class SmtpSink:
    """``smtp-sink 127.0.0.1:PORT 1000``: accepts (PIPELINING included) and discards."""

    def __init__(self, path: str):
        self.port = free_port()
        user = ["-u", "nobody"] if os.geteuid() == 0 else []  # it refuses to run as root
        self.process = subprocess.Popen(
            [path, *user, f"127.0.0.1:{self.port}", "1000"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def __enter__(self) -> SmtpSink:
        return self

    def wait_ready(self) -> None:
        """Until it accepts connections; RuntimeError (stopped) after terminating it."""
        try:
            self._wait()
        except RuntimeError:
            self.__exit__()
            raise

    def _wait(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"smtp-sink stopped: {self.process.stderr.read().decode().strip()}"  # type: ignore[union-attr]
                )
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("smtp-sink did not start")

    def __exit__(self, *exc: Any) -> None:
        self.process.terminate()
        self.process.wait(10)


def _reply(stream: Any) -> int:
    while True:
        line = stream.readline()
        if not line:
            raise ConnectionError("the sink closed the connection")
        if line[3:4] != b"-":
            return int(line[:3])


def blast(sender: str, stuffed: bytes, port: int, count: int, connections: int) -> float:
    """The floor: raw sockets, the envelope in one write, then the body, then the "."."""
    per = [count // connections + (1 if i < count % connections else 0) for i in range(connections)]
    envelope = f"MAIL FROM:<{sender}>\r\nRCPT TO:<plancher@example.fr>\r\nDATA\r\n".encode()

    def replay(n: int) -> None:
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            stream = sock.makefile("rb")
            _reply(stream)
            sock.sendall(b"EHLO plancher.invalid\r\n")
            _reply(stream)
            for _ in range(n):
                sock.sendall(envelope)
                codes = (_reply(stream), _reply(stream), _reply(stream))
                assert codes == (250, 250, 354), codes
                sock.sendall(stuffed)
                sock.sendall(b".\r\n")
                assert _reply(stream) == 250
            sock.sendall(b"QUIT\r\n")
            _reply(stream)

    threads = [threading.Thread(target=replay, args=(n,)) for n in per]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started


# -- the runs ---------------------------------------------------------------------------


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds else float("inf")


def run_send(config: Config, store: Store, number: int, transport: Any) -> tuple[float, int]:
    started = time.perf_counter()
    report = send_issue(
        config, store, number, transport=transport, environ={"PRESSREVIEW_SECRET_KEY": SECRET}
    )
    return time.perf_counter() - started, report.sent


def naive(config: Config, template: MessageTemplate, port: int, count: int) -> float:
    started = time.perf_counter()
    for i in range(count):
        data = template.render(
            to=f"naif{i}@example.fr", unsubscribe_url=f"https://veille.example.org/d/{i}"
        )
        smtp = smtplib.SMTP("127.0.0.1", port)
        smtp.sendmail(config.email.from_address, [f"naif{i}@example.fr"], data)
        smtp.quit()
    return time.perf_counter() - started


def ceiling(config: Config, data: bytes, port: int, count: int, connections: int) -> float:
    per = [count // connections + (1 if i < count % connections else 0) for i in range(connections)]

    def replay(n: int) -> None:
        smtp = smtplib.SMTP("127.0.0.1", port)
        for _ in range(n):
            smtp.sendmail(config.email.from_address, ["plafond@example.fr"], data)
        smtp.quit()

    threads = [threading.Thread(target=replay, args=(n,)) for n in per]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--items", type=int, default=40)
    parser.add_argument(
        "--connections", default="1,2,4", help="pool sizes measured against smtp-sink"
    )
    parser.add_argument(
        "--aiosmtpd", type=int, default=2_000, help="messages for (b) and (d); 0: skip them"
    )
    parser.add_argument("--naive", type=int, default=500, help="messages for (c) (it is slow)")
    parser.add_argument("--slices", type=int, default=2, help="interleaved (d)/(b) runs")
    parser.add_argument("--pool-size", type=int, default=2, help="connections for (b) and (d)")
    parser.add_argument("--database-url", help="an empty database (default: a SQLite file)")
    parser.add_argument(
        "--smtp-sink", help="path of Postfix's smtp-sink (default: on PATH or /usr/sbin)"
    )
    args = parser.parse_args()
    n = args.subscribers
    pools = [int(c) for c in args.connections.split(",") if c.strip()]
    os.environ["PRESSREVIEW_SECRET_KEY"] = SECRET
    env = {"PRESSREVIEW_SECRET_KEY": SECRET}
    sink_path = args.smtp_sink if args.smtp_sink else smtp_sink_path()
    if sink_path and not os.access(sink_path, os.X_OK):
        sink_path = None

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        config = parse_config(
            {
                "database_url": args.database_url or f"sqlite:///{base / 'bench.db'}",
                "web": {"base_url": "https://veille.example.org/abonnement/"},
                "delivery": {"transport": "smtp", "rate_per_second": 0},
            },
            base_dir=base,
            environ={},
        )
        store = open_store(config)
        csv_path = base / "subscribers.csv"
        csv_path.write_text(
            "email\n" + "".join(f"abonne{i:05d}@example.fr\n" for i in range(n)), "utf-8"
        )
        started = time.perf_counter()
        import_subscribers(store, csv_path, actor="benchmark")
        imported = time.perf_counter() - started
        numbers = iter(range(1, 100))
        snap = publish(store, next(numbers), args.items)
        rendered = render_email(config, snap)
        template = MessageTemplate(config, rendered)
        sample = template.render(
            to="plafond@example.fr", unsubscribe_url="https://veille.example.org/d/x"
        )
        stuffed = template.render(
            to="plancher@example.fr", unsubscribe_url="https://veille.example.org/d/x", stuffed=True
        )
        print(
            f"{n} subscribers imported in {imported:.2f} s; {args.items}-item issue: "
            f"HTML {rendered.html_bytes / 1000:.1f} kB, "
            f"message {len(sample) / 1000:.1f} kB on the wire; store {store.dialect}"
        )

        started_cpu = cpu()
        seconds, sent = run_send(config, store, 1, NullTransport())
        a, a_cpu = rate(sent, seconds), (cpu() - started_cpu) / sent * 1000
        print(
            "(a) build + hand to a null transport (send_issue, delivery log): "
            f"{sent} in {seconds:.2f} s = {a:,.0f} msg/s (CPU {a_cpu:.2f} ms/msg)"
        )

        # (e)/(f): each send_issue run right after its floor, so that both see the same load.
        fast: dict[int, tuple[float, float, float]] = {}  # pool -> (floor, rate, cpu ms/msg)
        if sink_path is None:
            print(
                "(e)/(f) skipped: smtp-sink not found (Debian: apt-get install postfix, "
                "which installs /usr/sbin/smtp-sink; the Postfix daemon need not run)"
            )
        else:
            fast_sink = SmtpSink(sink_path)
            try:
                fast_sink.wait_ready()
            except RuntimeError as exc:
                print(f"(e)/(f) skipped: {exc}")
                sink_path = None
        if sink_path is not None:
            with fast_sink:
                for pool in pools:
                    number = next(numbers)
                    publish(store, number, args.items)
                    started_cpu = cpu()
                    seconds = blast(config.email.from_address, stuffed, fast_sink.port, n, pool)
                    floor_cpu = (cpu() - started_cpu) / n * 1000
                    floor = rate(n, seconds)
                    print(
                        f"(e) floor, raw client to smtp-sink, {pool} connection(s): {n} in "
                        f"{seconds:.2f} s = {floor:,.0f} msg/s (client CPU {floor_cpu:.2f} ms/msg)"
                    )
                    transport = SmtpTransport(
                        "127.0.0.1", fast_sink.port, security="none", workers=pool
                    )
                    started_cpu = cpu()
                    seconds, sent = run_send(config, store, number, transport)
                    sender_cpu = (cpu() - started_cpu) / sent * 1000
                    assert sent == n, (sent, n)
                    f = rate(sent, seconds)
                    fast[pool] = (floor, f, sender_cpu)
                    print(
                        f"(f) send_issue to smtp-sink, {pool} connection(s): {sent} in "
                        f"{seconds:.2f} s = {f:,.0f} msg/s = {f / floor:.0%} of (e) "
                        f"(sender CPU {sender_cpu:.2f} ms/msg)"
                    )

        b = c = d = 0.0
        if args.aiosmtpd:
            with SinkProcess() as sink:
                number = next(numbers)
                publish(store, number, args.items)
                m = min(args.aiosmtpd, n)
                # (b) and (d) in interleaved slices (d, b, d, b...): the background load drifts,
                # and (b) must be judged against the ceiling of the same minutes. Each (b) slice
                # is a whole `send_issue(limit=...)` call (render, queue, recovery included).
                transport = SmtpTransport(
                    "127.0.0.1", sink.port, security="none", workers=args.pool_size
                )
                slice_size = -(-m // args.slices)
                b_seconds = d_seconds = 0.0
                b_sent = d_count = 0
                cpu_b = cpu_d = 0.0
                before = sink.received
                while b_sent < m:
                    size = min(slice_size, m - b_sent)
                    started_cpu = cpu()
                    d_seconds += ceiling(config, sample, sink.port, size, args.pool_size)
                    cpu_d += cpu() - started_cpu
                    d_count += size
                    started_cpu = cpu()
                    started = time.perf_counter()
                    report = send_issue(
                        config, store, number, transport=transport, limit=size, environ=env
                    )
                    b_seconds += time.perf_counter() - started
                    cpu_b += cpu() - started_cpu
                    b_sent += report.sent
                received = sink.received - before - d_count
                assert received == b_sent == m, (received, b_sent, m)
                b, d = rate(b_sent, b_seconds), rate(d_count, d_seconds)
                print(
                    f"(b) send_issue to the aiosmtpd sink ({args.pool_size} reused connections, "
                    f"{args.slices} runs): {b_sent} in {b_seconds:.2f} s = {b:,.0f} msg/s "
                    f"(sender CPU {cpu_b / b_sent * 1000:.2f} ms/msg)"
                )
                seconds = naive(config, template, sink.port, args.naive)
                c = rate(args.naive, seconds)
                print(
                    f"(c) naive loop, one SMTP connection per message: {args.naive} in "
                    f"{seconds:.2f} s = {c:,.0f} msg/s"
                )
                print(
                    f"(d) aiosmtpd ceiling, one pre-built message over {args.pool_size} reused "
                    f"connections, interleaved with (b): {d_count} in {d_seconds:.2f} s = "
                    f"{d:,.0f} msg/s (client CPU {cpu_d / d_count * 1000:.2f} ms/msg)"
                )

        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS of the sending process: {rss_mb:.0f} MB")
        verdicts = [f"(a) >= 2,000 msg/s: {'ok' if a >= 2000 else 'MISSED'}"]
        if fast:
            top = max(fast)
            worst_cpu = max(cpu_ms for _, _, cpu_ms in fast.values())
            verdicts.append(
                f"(f) >= 1,000 msg/s with {top} connections: {fast[top][1]:,.0f} "
                f"{'ok' if fast[top][1] >= 1000 else 'MISSED'}"
            )
            verdict = "ok" if worst_cpu <= 0.5 else "MISSED"
            verdicts.append(f"sender CPU <= 0.5 ms/msg: {worst_cpu:.2f} {verdict}")
            verdicts.append(
                "(f)/(e): " + ", ".join(f"{p}: {fr / fl:.0%}" for p, (fl, fr, _) in fast.items())
            )
        if args.aiosmtpd:
            verdicts.append(f"(b) >= 80 % of (d): {b / d:.0%} {'ok' if b >= 0.8 * d else 'MISSED'}")
            verdicts.append(f"(b) > (c): {'ok' if b > c else 'MISSED'}")
        verdicts.append(f"RSS <= 200 MB: {'ok' if rss_mb <= 200 else 'MISSED'}")
        print("targets: " + "; ".join(verdicts))
        store.close()


if __name__ == "__main__":
    main()

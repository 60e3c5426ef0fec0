"""Sign-up form timing benchmark: does the answer's time tell an address's state?

    python benchmarks/web_signup.py [--rounds 200]

POSTs the subscription form (through the WSGI application, no network) for an
address that is unknown, pending, active and unsubscribed, with the mail
server down (the configured SMTP port refuses connections), interleaved round
by round, and prints the median and 90th percentile of each state in
milliseconds and the largest gap between medians. The store is a SQLite file
in a temporary folder. The figures are printed, not asserted: the test suite
checks instead that every state runs the same SQL statements and gets the
same bytes (tests/test_web.py).
"""

from __future__ import annotations

import argparse
import re
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pressreview.config import parse_config
from pressreview.signup import drain_confirmations
from pressreview.store import open_store
from pressreview.subscribers import add_subscriber, remove_subscriber
from pressreview.web import create_app

SECRET = "benchmark-secret-key-0123456789"
SITE = "https://veille.example.org"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200, help="POSTs per state")
    args = parser.parse_args()
    env = {"PRESSREVIEW_SECRET_KEY": SECRET}
    with tempfile.TemporaryDirectory() as folder:
        config = parse_config(
            {
                "database_url": f"sqlite:///{folder}/store.db",
                "web": {
                    "base_url": f"{SITE}/abonnement/",
                    "client_limit": 100_000,
                    "mailbox_limit": 100_000,
                },
                "delivery": {
                    "transport": "smtp",
                    "smtp": {"host": "127.0.0.1", "port": closed_port(), "security": "none"},
                },
            },
            base_dir=Path(folder),
        )
        store = open_store(config)
        app = create_app(config, store, environ=env, background=False)
        client = app.test_client()
        add_subscriber(store, "active@example.fr", actor="benchmark")
        add_subscriber(store, "parti@example.fr", actor="benchmark")
        remove_subscriber(store, "parti@example.fr", actor="benchmark")
        page = client.get("/abonnement/", base_url=SITE).text
        found = re.search(r'name="form_token" value="([^"]+)"', page)
        assert found
        token = found[1]

        def post(address: str) -> float:
            start = time.perf_counter()
            answer = client.post(
                "/abonnement/",
                data={"email": address, "form_token": token},
                headers={"Origin": SITE},
                base_url=SITE,
            )
            elapsed = time.perf_counter() - start
            assert answer.status_code == 200, answer.status_code
            return elapsed * 1000

        post("pending@example.fr")
        drain_confirmations(config, store, environ=env)  # the server is down: stays pending
        states = {
            "unknown": lambda i: f"nouveau{i}@example.fr",
            "pending": lambda i: "pending@example.fr",
            "active": lambda i: "active@example.fr",
            "unsubscribed": lambda i: "parti@example.fr",
        }
        times: dict[str, list[float]] = {name: [] for name in states}
        for i in range(args.rounds):
            for name, address in states.items():
                times[name].append(post(address(i)))
        store.close()
    print(f"sign-up POST, {args.rounds} per state, SMTP down, SQLite")
    medians = {}
    for name, values in times.items():
        values.sort()
        medians[name] = statistics.median(values)
        p90 = values[int(len(values) * 0.9) - 1]
        print(f"  {name:<13} median {medians[name]:6.2f} ms   p90 {p90:6.2f} ms")
    gap = max(medians.values()) - min(medians.values())
    print(f"  largest gap between medians: {gap:.2f} ms")


if __name__ == "__main__":
    main()

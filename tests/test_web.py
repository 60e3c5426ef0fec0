"""The subscription endpoints: double opt-in, unsubscribe page, RFC 8058 one-click."""

from __future__ import annotations

import email
import email.policy
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from pressreview.config import Config
from pressreview.signup import DrainReport, drain_confirmations
from pressreview.store import Store
from pressreview.subscribers import add_subscriber, get_subscriber, remove_subscriber
from pressreview.tokens import Tokens
from pressreview.web import RedactingRequestHandler, create_app
from tests.fixtures_deliver import SECRET, body_of, free_port

ENV = {"PRESSREVIEW_SECRET_KEY": SECRET}
PREFIX = "/abonnement"  # the path of web.base_url in the test configuration
SITE = "https://veille.example.org"  # its scheme and host


class SiteClient(FlaskClient):
    """A test client that speaks to the configured host (as the reverse proxy does)."""

    def open(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("base_url", SITE)
        return super().open(*args, **kwargs)


@pytest.fixture
def web(
    make_config: Callable[..., Config],
    store_for: Callable[[Config], Store],
    store_url: str,
    tmp_path: Path,
) -> tuple[Config, Store, FlaskClient, Path]:
    outbox = tmp_path / "outbox"
    config = make_config(database_url=store_url, delivery={"outbox_dir": str(outbox)})
    store = store_for(config)
    app = create_app(config, store, environ=ENV, background=False)
    app.test_client_class = SiteClient
    return config, store, app.test_client(), outbox


def form_token(client: FlaskClient) -> str:
    page = client.get(f"{PREFIX}/")
    found = re.search(r'name="form_token" value="([^"]+)"', page.text)
    assert found, page.text
    return found[1]


def post_form(client: FlaskClient, **data: str) -> Any:
    """What a browser showing our form sends: the form's token, our Origin."""
    data.setdefault("form_token", form_token(client))
    return client.post(f"{PREFIX}/", data=data, headers={"Origin": SITE})


def drain(config: Config, store: Store, **options: Any) -> DrainReport:
    return drain_confirmations(config, store, environ=ENV, **options)


def _outbox_links(outbox: Path) -> list[str]:
    links = []
    for path in sorted(outbox.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        links += re.findall(r"https://\S+/confirmer/\S+", body_of(msg, "plain"))
    return links


def _path(url: str) -> str:
    return urllib.parse.urlsplit(url).path


def test_double_opt_in(web: tuple[Config, Store, FlaskClient, Path]) -> None:
    config, store, client, outbox = web
    page = client.get(f"{PREFIX}/")
    assert page.status_code == 200 and 'lang="fr"' in page.text and "S’abonner" in page.text
    answer = post_form(client, email="Marie@Example.fr", name="Marie Dupont")
    assert answer.status_code == 200 and "Vérifiez votre messagerie" in answer.text
    assert drain(config, store).sent == 1
    subscriber = get_subscriber(store, "marie@example.fr")
    assert (subscriber.status, subscriber.consent_method, subscriber.consent_at) == (
        "pending",
        "form",
        None,
    )
    (link,) = _outbox_links(outbox)
    assert link.startswith("https://veille.example.org/abonnement/confirmer/")
    # following the link (as a mail scanner would) only shows a button
    shown = client.get(_path(link))
    assert shown.status_code == 200 and "Confirmer mon abonnement" in shown.text
    assert get_subscriber(store, "marie@example.fr").status == "pending"
    done = client.post(_path(link))
    assert done.status_code == 200 and "Abonnement confirmé" in done.text
    subscriber = get_subscriber(store, "marie@example.fr")
    assert subscriber.status == "active" and subscriber.consent_at is not None
    assert "confirmed" in (subscriber.consent_detail or "")
    assert client.post(_path(link)).status_code == 200  # idempotent


def test_the_form_reveals_nothing(web: tuple[Config, Store, FlaskClient, Path]) -> None:
    config, store, client, outbox = web
    add_subscriber(store, "deja@example.fr", actor="test")
    add_subscriber(store, "parti@example.fr", actor="test")
    remove_subscriber(store, "parti@example.fr", actor="test")
    bodies = set()
    for address in [
        "deja@example.fr",
        "inconnu@example.fr",
        "parti@example.fr",
        "inconnu@example.fr",
    ]:
        answer = post_form(client, email=address)
        assert answer.status_code == 200
        bodies.add(answer.text)
    assert len(bodies) == 1
    drain(config, store)
    # the active subscriber is left alone; the one who left must confirm again
    assert get_subscriber(store, "deja@example.fr").status == "active"
    assert get_subscriber(store, "parti@example.fr").status == "pending"
    # one confirmation each for inconnu (asked twice within minutes: one email) and parti
    assert len(_outbox_links(outbox)) == 2


def test_bad_address_and_robots(web: tuple[Config, Store, FlaskClient, Path]) -> None:
    config, store, client, outbox = web
    answer = post_form(client, email="pas-une-adresse")
    assert answer.status_code == 400 and "n’est pas valide" in answer.text
    answer = post_form(client, email="robot@example.fr", website="http://spam")
    assert answer.status_code == 200
    drain(config, store)
    assert not outbox.exists() or not list(outbox.glob("*.eml"))


def _unsubscribe_link(config: Config, store: Store, address: str) -> str:
    subscriber = get_subscriber(store, address)
    return (
        f"{PREFIX}/desabonnement/{Tokens(SECRET).unsubscribe(subscriber.id, subscriber.email_key)}"
    )


def test_unsubscribe_page_then_button(web: tuple[Config, Store, FlaskClient, Path]) -> None:
    config, store, client, _ = web
    add_subscriber(store, "marie@example.fr", actor="test")
    link = _unsubscribe_link(config, store, "marie@example.fr")
    shown = client.get(link)
    assert shown.status_code == 200 and "Me désabonner" in shown.text
    assert "marie@example.fr" not in shown.text
    assert get_subscriber(store, "marie@example.fr").status == "active"
    done = client.post(link)
    assert done.status_code == 200 and "désabonné·e" in done.text
    assert get_subscriber(store, "marie@example.fr").status == "unsubscribed"
    assert client.post(link).text == done.text  # idempotent


def test_one_click_unsubscribe(web: tuple[Config, Store, FlaskClient, Path]) -> None:
    config, store, client, _ = web
    add_subscriber(store, "marie@example.fr", actor="test")
    link = _unsubscribe_link(config, store, "marie@example.fr")
    answer = client.post(link, data={"List-Unsubscribe": "One-Click"})
    assert answer.status_code == 200
    subscriber = get_subscriber(store, "marie@example.fr")
    assert subscriber.status == "unsubscribed" and subscriber.unsubscribed_at is not None


def _tamper(token: str) -> str:
    payload, signature = token.rsplit(".", 1)
    return payload + "." + ("A" if signature[0] != "A" else "B") + signature[1:]


def test_forged_altered_and_foreign_tokens_are_refused(
    web: tuple[Config, Store, FlaskClient, Path],
) -> None:
    _, store, client, _ = web
    marie = add_subscriber(store, "marie@example.fr", actor="test")
    karim = add_subscriber(store, "karim@example.org", actor="test")
    good = Tokens(SECRET).unsubscribe(marie.id, marie.email_key)
    forged = [
        _tamper(good),  # altered signature
        Tokens("another-secret-key-0123456789").unsubscribe(karim.id, karim.email_key),  # other key
        Tokens(SECRET).confirm(karim.id, karim.email_key),  # a confirmation token
        good.replace(
            good.split(".")[0], Tokens(SECRET).unsubscribe(karim.id, karim.email_key).split(".")[0]
        ),
        "rien",
    ]
    for token in forged:
        for method in (client.get, client.post):
            answer = method(f"{PREFIX}/desabonnement/{token}")
            assert answer.status_code == 400 and "Lien non valide" in answer.text, token
    assert get_subscriber(store, "karim@example.org").status == "active"
    confirm = Tokens(SECRET).confirm(karim.id, karim.email_key)
    for token in [
        _tamper(confirm),
        Tokens("another-secret-key-0123456789").confirm(karim.id, karim.email_key),
        good,
        "rien",
    ]:
        for method in (client.get, client.post):
            answer = method(f"{PREFIX}/confirmer/{token}")
            assert answer.status_code == 400 and "Lien non valide" in answer.text, token


def test_token_of_a_forgotten_subscriber_reveals_nothing(
    web: tuple[Config, Store, FlaskClient, Path],
) -> None:
    config, store, client, _ = web
    add_subscriber(store, "marie@example.fr", actor="test")
    add_subscriber(store, "karim@example.org", actor="test")
    link = _unsubscribe_link(config, store, "marie@example.fr")
    known = client.post(link)
    remove_subscriber(store, "marie@example.fr", actor="test", forget=True)
    forgotten = client.post(link)
    assert (forgotten.status_code, forgotten.text) == (known.status_code, known.text)
    assert get_subscriber(store, "karim@example.org").status == "active"


def test_missing_secret_key_is_a_clear_error(make_config: Callable[..., Config]) -> None:
    from pressreview.errors import ConfigError

    with pytest.raises(ConfigError, match="PRESSREVIEW_SECRET_KEY"):
        create_app(make_config(), environ={})


Served = tuple[str, Store, Config]


@pytest.fixture
def serve_app(
    make_config: Callable[..., Config],
    store_for: Callable[[Config], Store],
    store_url: str,
    tmp_path: Path,
) -> Iterator[Callable[..., Served]]:
    """Start the application under werkzeug's real threaded server on 127.0.0.1.

    serve_app(background=False, web={...}, delivery={...}) -> (base URL, store, config)
    """
    started: list[tuple[Any, threading.Thread, Flask]] = []

    def start(
        *, background: bool = False, web: dict[str, Any] | None = None, **values: Any
    ) -> Served:
        port = free_port()
        values.setdefault("delivery", {"outbox_dir": str(tmp_path / "outbox")})
        config = make_config(
            database_url=store_url,
            web={
                "base_url": f"{SITE}{PREFIX}/",
                "allowed_hosts": [f"127.0.0.1:{port}"],
                **(web or {}),
            },
            **values,
        )
        store = store_for(config)
        app = create_app(config, store, environ=ENV, background=background)
        server = make_server(
            "127.0.0.1", port, app, threaded=True, request_handler=RedactingRequestHandler
        )
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        started.append((server, thread, app))
        return f"http://127.0.0.1:{port}", store, config

    yield start
    for server, thread, app in started:
        server.shutdown()
        thread.join()
        app.extensions["pressreview.confirmations"].stop()


@pytest.fixture
def live_server(serve_app: Callable[..., Served]) -> Served:
    return serve_app()


def test_one_click_through_a_real_http_server(live_server: tuple[str, Store, Config]) -> None:
    """What a mailbox provider does with List-Unsubscribe-Post (RFC 8058 section 3.1)."""
    base, store, config = live_server
    add_subscriber(store, "marie@example.fr", actor="test")
    link = base + _unsubscribe_link(config, store, "marie@example.fr")
    request = urllib.request.Request(
        link,
        data=b"List-Unsubscribe=One-Click",
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    assert get_subscriber(store, "marie@example.fr").status == "unsubscribed"
    bad = urllib.request.Request(link + "x", data=b"List-Unsubscribe=One-Click", method="POST")
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(bad, timeout=10)
    assert excinfo.value.code == 400


def test_links_in_sent_messages_work_end_to_end(
    live_server: tuple[str, Store, Config], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The List-Unsubscribe link of a real newsletter, POSTed one-click to the real server."""
    base, store, config = live_server
    monkeypatch.setenv("PRESSREVIEW_SECRET_KEY", SECRET)
    from pressreview.deliver.campaign import send_issue
    from tests.fixtures_deliver import publish_fixed_issue

    publish_fixed_issue(store)
    add_subscriber(store, "marie@example.fr", actor="test")
    send_issue(config, store, 12)
    (path,) = config.resolve(config.delivery.outbox_dir).glob("*.eml")
    msg: Any = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    https_link = msg["List-Unsubscribe"].split(">")[0].lstrip("<")
    local = base + _path(https_link)
    request = urllib.request.Request(local, data=b"List-Unsubscribe=One-Click", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    assert get_subscriber(store, "marie@example.fr").status == "unsubscribed"


def test_confirmation_links_expire_unsubscribe_links_do_not() -> None:
    from pressreview.tokens import BadToken

    tokens = Tokens(SECRET)
    confirm = tokens.confirm(7, "marie@example.fr")
    assert tokens.read_confirm(confirm).subscriber_id == 7
    with pytest.raises(BadToken, match="expired"):
        tokens.read_confirm(confirm, max_age=-1)
    unsubscribe = tokens.unsubscribe(7, "marie@example.fr")
    assert tokens.read_unsubscribe(unsubscribe).subscriber_id == 7
    assert tokens.read_unsubscribe(unsubscribe).digest == tokens.read_confirm(confirm).digest

"""The subscription endpoints, promise by promise (tables of requests and answers).

Which hosts and origins are served, what each page says, what the logs keep,
how a failure looks: what a subscriber, a mail provider or an attacker sees.
test_web.py follows the whole journeys (double opt-in, one-click, limits).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import text

from pressreview.config import Config
from pressreview.store import Store
from pressreview.subscribers import add_subscriber, export_subscribers, get_subscriber
from pressreview.tokens import Tokens
from pressreview.web import (
    SECURITY_HEADERS,
    RedactingRequestHandler,
    create_app,
    redact,
    served_hosts,
)
from tests.fixtures_deliver import SECRET
from tests.test_web import ENV, PREFIX, SITE, SiteClient, _queued, drain, form_token

Site = tuple[Config, Store, FlaskClient]


@pytest.fixture
def site(
    make_config: Callable[..., Config], store_for: Callable[[Config], Store], tmp_path: Any
) -> Callable[..., Site]:
    """site(web={...}, archive={...}) -> (config, store, test client speaking to SITE)."""

    def make(**values: Any) -> Site:
        values.setdefault("delivery", {"outbox_dir": str(tmp_path / "outbox")})
        config = make_config(**values)
        store = store_for(config)
        app = create_app(config, store, environ=ENV, background=False)
        app.test_client_class = SiteClient
        return config, store, app.test_client()

    return make


def _link(store: Store, address: str, kind: str = "desabonnement") -> str:
    s = get_subscriber(store, address)
    tokens = Tokens(SECRET)
    token = (tokens.unsubscribe if kind == "desabonnement" else tokens.confirm)(s.id, s.email_key)
    return f"{PREFIX}/{kind}/{token}"


# -- hosts -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base_url", "allowed", "served", "refused"),
    [
        (
            "https://veille.example.org/abonnement/",
            [],
            ["veille.example.org", "VEILLE.Example.ORG", "veille.example.org:443"],
            ["veille.example.org:80", "veille.example.org:8443", "example.org", "evil.example"],
        ),
        (
            "http://veille.example.org/abonnement/",
            [],
            ["veille.example.org", "veille.example.org:80"],
            ["veille.example.org:443", "localhost"],
        ),
        (
            "https://veille.example.org/abonnement/",
            ["127.0.0.1:8080", "[::1]:8081", "Abonnement.Example.org", "[::2]"],
            [
                "veille.example.org",
                "127.0.0.1:8080",
                "[::1]:8081",
                "abonnement.example.org",
                "abonnement.example.org:443",
                "[::2]",
                "[::2]:443",
            ],
            ["127.0.0.1", "127.0.0.1:8081", "[::1]", "[::1]:8080", "[::2]:80"],
        ),
        (  # the default port written out in the configuration
            "https://veille.example.org:443/abonnement/",
            ["abonnement.example.org:443"],
            ["veille.example.org", "abonnement.example.org", "abonnement.example.org:443"],
            ["veille.example.org:80", "abonnement.example.org:80"],
        ),
        (
            "http://veille.example.org:80/abonnement/",
            ["abonnement.example.org:80"],
            ["veille.example.org", "veille.example.org:80", "abonnement.example.org"],
            ["veille.example.org:443", "abonnement.example.org:443"],
        ),
    ],
)
def test_only_the_configured_hosts_are_served(
    site: Callable[..., Site], base_url: str, allowed: list[str], served: list[str],
    refused: list[str],
) -> None:  # fmt: skip
    config, _store, client = site(web={"base_url": base_url, "allowed_hosts": allowed})
    scheme = base_url.split(":")[0]
    for host in served:
        answer = client.get(f"{PREFIX}/", base_url=f"{scheme}://{host}")
        assert answer.status_code == 200 and "S’abonner" in answer.text, host
    for host in refused:
        answer = client.get(f"{PREFIX}/", base_url=f"{scheme}://{host}")
        assert answer.status_code == 400, host
        assert "Adresse inconnue" in answer.text and "ne répond pas à cette adresse" in answer.text
        assert set(SECURITY_HEADERS) <= set(answer.headers.keys())
    assert served_hosts(config) >= {h.lower() for h in served if ":443" not in h and ":80" not in h}


# -- where the form may come from ------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "with_token", "status"),
    [
        ({"Origin": SITE}, True, 200),
        ({"Origin": "https://veille.example.org:443"}, True, 200),  # the default port, written
        ({"Origin": "HTTPS://VEILLE.EXAMPLE.ORG"}, True, 200),
        ({"Origin": "https://archive.example.net"}, True, 200),  # the archive's host
        ({"Origin": "https://archive.example.net"}, False, 200),  # its static form
        ({"Referer": "https://archive.example.net/2026/12/"}, False, 200),
        ({"Origin": SITE}, False, 200),
        ({}, True, 200),  # neither header: the signed token decides
        ({}, False, 400),
        ({"Origin": "https://veille.example.org:8443"}, True, 403),
        ({"Origin": "https://evil.example"}, True, 403),
        ({"Origin": "null"}, True, 403),
        ({"Origin": "ftp://veille.example.org"}, True, 403),
        # our host, but over plain HTTP: another origin (the site is https://)
        ({"Origin": "http://veille.example.org"}, True, 403),
        ({"Origin": "http://veille.example.org:443"}, True, 403),
        ({"Referer": "http://archive.example.net/2026/12/"}, False, 403),
        ({"Origin": "http://localhost:8080"}, False, 200),  # an allowed host: either scheme
        ({"Origin": "https://localhost:8080"}, True, 200),
        ({"Referer": "http://[x/"}, True, 403),  # not an address: foreign, not a crash
        ({"Origin": "https://[::1"}, False, 403),
        ({"Origin": "https://"}, True, 403),
        ({"Referer": "https://evil.example/"}, True, 403),
        ({"Referer": "https://evil.example/"}, False, 403),
        # the Origin header is read first, the Referer only without it
        ({"Origin": "https://evil.example", "Referer": f"{SITE}{PREFIX}/"}, True, 403),
        ({"Origin": SITE, "Referer": "https://evil.example/"}, False, 200),
    ],
)
def test_the_form_is_accepted_from_our_origins_only(
    site: Callable[..., Site], headers: dict[str, str], with_token: bool, status: int
) -> None:
    _config, store, client = site(
        archive={"base_url": "https://archive.example.net/"},
        web={"base_url": f"{SITE}{PREFIX}/", "allowed_hosts": ["localhost:8080"]},
    )
    data = {"email": "marie@example.fr"}
    if with_token:
        data["form_token"] = form_token(client)
    answer = client.post(f"{PREFIX}/", data=data, headers=headers)
    assert answer.status_code == status
    assert len(_queued(store)) == (1 if status == 200 else 0)
    if status == 200:
        assert "Vérifiez votre messagerie" in answer.text
    else:
        # the form again, filled in, with a fresh token and the reason
        assert 'value="marie@example.fr"' in answer.text and 'name="form_token"' in answer.text
        reason = "ne vient pas du formulaire" if status == 403 else "Le formulaire a expiré"
        assert reason in answer.text and 'role="alert"' in answer.text
        # French typography: a no-break space before the colon, none breakable
        assert " :" not in answer.text and ("\xa0:" in answer.text)


def test_a_refused_form_keeps_what_was_typed(site: Callable[..., Site]) -> None:
    _config, store, client = site()
    answer = client.post(
        f"{PREFIX}/",
        data={
            "email": "  pas-une-adresse ",
            "name": "  Marie Dupont ",
            "form_token": form_token(client),
        },
        headers={"Origin": SITE},
    )
    assert answer.status_code == 400
    assert "Cette adresse électronique n’est pas valide." in answer.text
    assert 'value="pas-une-adresse"' in answer.text and 'value="Marie Dupont"' in answer.text
    assert 'aria-invalid="true"' in answer.text and _queued(store) == []


def test_a_long_name_is_cut_and_a_robot_is_answered_but_ignored(site: Callable[..., Site]) -> None:
    config, store, client = site()
    token = form_token(client)
    human = client.post(
        f"{PREFIX}/",
        data={"email": "marie@example.fr", "name": "M" * 500, "form_token": token},
        headers={"Origin": SITE},
    )
    robot = client.post(
        f"{PREFIX}/",
        data={"email": "robot@example.fr", "website": "x", "form_token": token},
        headers={"Origin": SITE},
    )
    assert (human.status_code, human.data) == (robot.status_code, robot.data)
    assert [row["email"] for row in _queued(store)] == ["marie@example.fr"]
    drain(config, store)
    assert get_subscriber(store, "marie@example.fr").name == "M" * 200


def test_a_form_too_large_is_refused(site: Callable[..., Site]) -> None:
    _config, store, client = site()
    answer = client.post(
        f"{PREFIX}/",
        data={"email": "marie@example.fr", "name": "x" * 20_000, "form_token": form_token(client)},
        headers={"Origin": SITE},
    )
    assert answer.status_code == 413 and "Requête trop volumineuse" in answer.text
    assert set(SECURITY_HEADERS) <= set(answer.headers.keys()) and _queued(store) == []


# -- the pages -------------------------------------------------------------------------


def test_every_page_is_french_with_the_site_s_footer(site: Callable[..., Site]) -> None:
    config, store, client = site()
    add_subscriber(store, "marie@example.fr", actor="test")
    pages = {
        "form": client.get(f"{PREFIX}/"),
        "unsubscribe": client.get(_link(store, "marie@example.fr")),
        "not found": client.get(f"{PREFIX}/ailleurs/loin"),
        "not allowed": client.delete(f"{PREFIX}/"),
    }
    for what, answer in pages.items():
        assert answer.mimetype == "text/html", what
        assert '<html lang="fr">' in answer.text, what
        assert f"· {config.archive.title}</title>" in answer.text, what
        assert f'href="{config.archive.base_url}"' in answer.text, what
        assert config.organisation.contact_email in answer.text, what
        assert 'href="https://veille.example.org/donnees-personnelles/"' in answer.text, what
        assert 'href="https://veille.example.org/mentions-legales/"' in answer.text, what
    assert (pages["not found"].status_code, pages["not allowed"].status_code) == (404, 405)
    assert "<h1>Page introuvable</h1>" in pages["not found"].text
    assert "<h1>Méthode non autorisée</h1>" in pages["not allowed"].text
    form = pages["form"].text
    assert "<h1>S’abonner à la revue de presse</h1>" in form
    assert f'action="{PREFIX}/"' in form and 'name="form_token" value="' in form
    assert "aria-invalid" not in form and 'role="alert"' not in form
    assert 'name="email" value=""' in form and 'name="name" value=""' in form
    assert "chaque semaine par courriel la revue de presse de Centre de ressources test" in form
    unsubscribe = pages["unsubscribe"].text
    assert "<h1>Se désabonner</h1>" in unsubscribe
    assert f'<form method="post" action="{_link(store, "marie@example.fr")}">' in unsubscribe
    assert "vous ne recevrez plus la revue de presse à cette adresse." in unsubscribe


def test_the_confirmation_pages(site: Callable[..., Site]) -> None:
    config, store, client = site()
    client.post(
        f"{PREFIX}/",
        data={"email": "marie@example.fr", "form_token": form_token(client)},
        headers={"Origin": SITE},
    )
    drain(config, store)
    link = _link(store, "marie@example.fr", "confirmer")
    shown = client.get(link)
    assert "<h1>Confirmer votre abonnement</h1>" in shown.text
    assert f'<form method="post" action="{link}">' in shown.text
    assert "Confirmer mon abonnement" in shown.text
    done = client.post(link)
    assert "<h1>Abonnement confirmé</h1>" in done.text
    assert "Merci\u202f! Vous recevrez la prochaine revue de presse." in done.text  # French spacing
    for answer in (client.get(link), client.post(link)):
        assert answer.status_code == 200 and "<h1>Abonnement déjà confirmé</h1>" in answer.text
        assert "à cette adresse. Il n’y a rien d’autre à faire." in answer.text
        assert "<form" not in answer.text


@pytest.mark.parametrize(("kind", "says_expired"), [("confirmer", True), ("desabonnement", False)])
def test_a_bad_link_says_why_and_whom_to_write_to(
    site: Callable[..., Site], kind: str, says_expired: bool
) -> None:
    config, _store, client = site()
    what = "de confirmation" if kind == "confirmer" else "de désabonnement"
    for method in (client.get, client.post):
        answer = method(f"{PREFIX}/{kind}/7.0123456789.rien")
        assert answer.status_code == 400 and "<h1>Lien non valide</h1>" in answer.text
        assert f"Ce lien {what} n’est pas valide\u00a0: il a peut-être été tronqué" in answer.text
        assert ("ou a expiré" in answer.text) is says_expired
        assert (
            "Copiez le lien complet depuis le message reçu, ou écrivez-nous à "
            f"{config.organisation.contact_email}."
        ) in answer.text
        assert "Retour à la revue de presse" in answer.text


def test_the_confirmation_link_of_a_forgotten_or_changed_person_confirms_nothing(
    site: Callable[..., Site],
) -> None:
    config, store, client = site()
    client.post(
        f"{PREFIX}/",
        data={"email": "marie@example.fr", "form_token": form_token(client)},
        headers={"Origin": SITE},
    )
    drain(config, store)
    marie = get_subscriber(store, "marie@example.fr")
    stranger = f"{PREFIX}/confirmer/{Tokens(SECRET).confirm(marie.id, 'karim@example.org')}"
    assert client.post(stranger).status_code == 400
    assert get_subscriber(store, "marie@example.fr").status == "pending"
    assert client.post(_link(store, "marie@example.fr", "confirmer")).status_code == 200


def test_one_click_needs_the_exact_rfc_8058_body(site: Callable[..., Site]) -> None:
    """Only ``List-Unsubscribe=One-Click`` is a mail provider's one-click; anything else
    is the page's button (recorded as such, answered with the page)."""
    _config, store, client = site()
    for i, body in enumerate(
        [{"List-Unsubscribe": "one-click"}, {"One-Click": "List-Unsubscribe"}]
    ):
        address = f"p{i}@example.fr"
        add_subscriber(store, address, actor="test")
        answer = client.post(_link(store, address), data=body)
        assert answer.mimetype == "text/html" and "<h1>Vous êtes désabonné·e</h1>" in answer.text
        (record,) = export_subscribers(store, address)
        assert record["consent_history"][-1]["method"] == "link"
    add_subscriber(store, "marie@example.fr", actor="test")
    answer = client.post(
        _link(store, "marie@example.fr"),
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert (answer.status_code, answer.text, answer.mimetype) == (
        200,
        "Unsubscribed\n",
        "text/plain",
    )
    assert set(SECURITY_HEADERS) <= set(answer.headers.keys())
    (record,) = export_subscribers(store, "marie@example.fr")
    assert record["consent_history"][-1]["method"] == "one-click"


# -- failures and logs -----------------------------------------------------------------


def test_a_failure_is_a_polite_500_and_the_log_shows_no_token(
    site: Callable[..., Site], caplog: pytest.LogCaptureFixture
) -> None:
    _config, store, client = site()
    add_subscriber(store, "marie@example.fr", actor="test")
    link = _link(store, "marie@example.fr")
    token = link.rsplit("/", 1)[1]
    with store.begin() as conn:  # the store breaks under the running application
        conn.execute(text("ALTER TABLE subscribers RENAME TO subscribers_gone"))
    caplog.set_level(logging.ERROR)
    answer = client.post(link)
    assert answer.status_code == 500
    assert "<h1>Service momentanément indisponible</h1>" in answer.text
    assert "Merci de réessayer plus tard." in answer.text
    assert set(SECURITY_HEADERS) <= set(answer.headers.keys())
    assert f"Exception on {PREFIX}/desabonnement/[redacted] [POST]" in caplog.text
    # under the application's logger, where a deployment routes its errors
    assert [r.name for r in caplog.records if r.getMessage().startswith("Exception on")] == [
        "pressreview.web"
    ]
    assert token not in caplog.text and token.split(".")[-1] not in caplog.text


@pytest.mark.parametrize(
    ("line", "logged"),
    [
        (
            "POST /abonnement/desabonnement/7.abc.SIG HTTP/1.1",
            "POST /abonnement/desabonnement/[redacted] HTTP/1.1",
        ),
        (
            "GET /abonnement/confirmer/7.abc.T.SIG HTTP/1.1",
            "GET /abonnement/confirmer/[redacted] HTTP/1.1",
        ),
        (
            "GET /abonnement/?email=marie@example.fr HTTP/1.1",
            "GET /abonnement/?[redacted] HTTP/1.1",
        ),
        (
            '"GET /abonnement/desabonnement/7.a.S?utm=x HTTP/1.1" 200 -',
            '"GET /abonnement/desabonnement/[redacted]?[redacted] HTTP/1.1" 200 -',
        ),
        ("/abonnement/confirmer/7.a/b", "/abonnement/confirmer/[redacted]/b"),
        ("GET /abonnement/ HTTP/1.1", "GET /abonnement/ HTTP/1.1"),
        ("GET /abonnement/confirmer/ HTTP/1.1", "GET /abonnement/confirmer/ HTTP/1.1"),
    ],
)
def test_log_lines_lose_their_tokens_and_queries(line: str, logged: str) -> None:
    assert redact(line) == logged


def test_the_request_handler_logs_through_redact(caplog: pytest.LogCaptureFixture) -> None:
    class Handler(RedactingRequestHandler):
        def __init__(self) -> None:  # no socket: only the logging is exercised
            self.client_address = ("192.0.2.1", 0)

        def address_string(self) -> str:
            return "fe80::1%eth0"  # a scoped IPv6 address: its "%" is no format

        def log_date_time_string(self) -> str:
            return "01/Dec/2026 10:00:00"

    caplog.set_level(logging.INFO, logger="werkzeug")
    handler = Handler()
    handler.log("info", '"%s" %s %s', "POST /abonnement/desabonnement/7.a.SIG HTTP/1.1", "200", "-")
    handler.log("info", "GET /abonnement/confirmer/7.a.T.SIG")
    assert (
        'fe80::1%eth0 - - [01/Dec/2026 10:00:00] "POST /abonnement/desabonnement/[redacted] '
        'HTTP/1.1" 200 -'
    ) in caplog.text
    assert "GET /abonnement/confirmer/[redacted]" in caplog.text
    assert "SIG" not in caplog.text


def test_the_archive_s_default_port_written_out_is_still_its_origin(
    site: Callable[..., Site],
) -> None:
    _config, store, client = site(archive={"base_url": "https://archive.example.net:443/"})
    answer = client.post(
        f"{PREFIX}/",
        data={"email": "marie@example.fr"},  # the archive's static form: no token
        headers={"Origin": "https://archive.example.net"},
    )
    assert answer.status_code == 200 and len(_queued(store)) == 1


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Origin": "https://archive.example.net"}, 200),  # the same site over HTTPS
        ({"Origin": "http://archive.example.net"}, 200),
        ({"Origin": "http://archive.example.net:8080"}, 403),
        ({"Origin": "https://evil.example"}, 403),
    ],
)
def test_an_archive_written_http_may_post_over_https(
    site: Callable[..., Site], headers: dict[str, str], status: int
) -> None:
    _config, store, client = site(archive={"base_url": "http://archive.example.net/"})
    answer = client.post(f"{PREFIX}/", data={"email": "marie@example.fr"}, headers=headers)
    assert answer.status_code == status
    assert len(_queued(store)) == (1 if status == 200 else 0)

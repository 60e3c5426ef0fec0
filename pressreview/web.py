"""The subscription endpoints: a small Flask (WSGI) application.

Routes, under the path of ``web.base_url`` (e.g. ``/abonnement/``), named in
pressreview.urls (which also builds the links that lead here):

- ``GET  /``                       the subscribe form
- ``POST /``                       email (+ name) -> pending subscriber + confirmation email;
                                   the same page whatever the address's state
- ``GET  /confirmer/<token>``      a page with a "Confirmer" button (mail scanners
                                   that follow links do not subscribe anyone)
- ``POST /confirmer/<token>``      pending -> active, consent recorded
- ``GET  /desabonnement/<token>``  a page with a "Se désabonner" button
- ``POST /desabonnement/<token>``  unsubscribes at once: the button, and RFC 8058
                                   one-click (body ``List-Unsubscribe=One-Click``)

Tokens are signed (pressreview.tokens); a forged, altered, expired or foreign
token gets a 400 page. No response depends on whether an address is subscribed:
the form's POST only enqueues the request (pressreview.signup) and a worker
thread sends the confirmation. Only the configured hosts are served, the
form carries a signed token and its Origin/Referer must be ours, every
response carries the security headers, and request logs never show a token.
Production: ``waitress-serve --call pressreview.web:create_app`` (docs/delivery.md).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, request
from werkzeug.serving import WSGIRequestHandler

from pressreview import urls
from pressreview.config import Config, load_config
from pressreview.signup import ConfirmationWorker, RateLimited, enqueue_signup
from pressreview.store import Store, open_store
from pressreview.subscribers import (
    InvalidAddress,
    confirm_subscription,
    subscription_status,
    unsubscribe,
)
from pressreview.templating import template_env
from pressreview.tokens import BadToken, Tokens
from pressreview.typography import with_preposition

log = logging.getLogger("pressreview.web")
MAX_FORM_BYTES = 16 * 1024

#: Headers of every response (pages, redirects, errors, the one-click answer).
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

_TOKEN_PATH = re.compile(r"/(confirmer|desabonnement)/[^/\s?\"']+")
_QUERY = re.compile(r"\?[^\s\"']*")


def redact(text: str) -> str:
    """A request line or path without its tokens nor its query string (for logs)."""
    return _QUERY.sub("?[redacted]", _TOKEN_PATH.sub(r"/\1/[redacted]", text))


class RedactingRequestHandler(WSGIRequestHandler):
    """werkzeug's request handler whose access and error log lines show no token."""

    def log(self, type: str, message: str, *args: Any) -> None:
        super().log(type, "%s", redact(message % args if args else message))


class _App(Flask):
    def log_exception(self, exc_info: Any) -> None:
        self.logger.error(
            "Exception on %s [%s]", redact(request.path), request.method, exc_info=exc_info
        )


def _origin(url: str) -> tuple[str, str] | None:
    """``(scheme, host[:port])`` of an http(s) address, lower-cased; None for anything else."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:  # "http://[x/": not an address
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.netloc:
        return None
    return scheme, _netloc(parts.netloc, "443" if scheme == "https" else "80")


def served_hosts(config: Config) -> set[str]:
    """The ``host[:port]`` values of the Host header that the endpoints answer."""
    base = urlsplit(config.web.base_url)
    default = "443" if base.scheme == "https" else "80"
    hosts = {_netloc(base.netloc, default)}
    hosts |= {_netloc(h, default) for h in config.web.allowed_hosts}
    return hosts


def _netloc(value: str, default_port: str) -> str:
    """``host[:port]`` lower-cased, without the scheme's default port."""
    value = value.strip().lower()
    if value.startswith("["):  # an IPv6 literal
        host, _, rest = value.partition("]")
        host, port = host + "]", rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = value.partition(":")
    return host if port in ("", default_port) else f"{host}:{port}"


def create_app(
    config: Config | None = None,
    store: Store | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    background: bool = True,
) -> Flask:
    """The WSGI application. Without arguments it loads feeds.yaml ($PRESSREVIEW_CONFIG).

    ``background``: run the confirmation worker thread in this process (woken
    after each request); without it, something else (the scheduler's
    ``confirmations`` job, a test) drains the queue.
    """
    config = config or load_config()
    store = store or open_store(config)
    tokens = Tokens.from_env(environ)
    # Migrate (or refuse an old schema) now, once: not in parallel in the first requests.
    store.ensure_schema()
    env = template_env(config, "web")
    prefix = urls.web_prefix(config)
    form_route = urls.web_path(config, urls.SUBSCRIBE_ROUTE)
    hosts = served_hosts(config)
    base_scheme = urlsplit(config.web.base_url).scheme
    default_port = "443" if base_scheme == "https" else "80"
    worker = ConfirmationWorker(config, store, environ=environ)
    app = _App("pressreview.web")
    app.config["MAX_CONTENT_LENGTH"] = MAX_FORM_BYTES
    app.url_map.strict_slashes = False  # no redirect built from the request's Host
    app.extensions["pressreview.confirmations"] = worker
    if config.web.proxy_hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=config.web.proxy_hops, x_proto=0, x_host=0, x_port=0, x_prefix=0
        )
    org = config.organisation
    base: dict[str, Any] = {
        "lang": config.locale.split("_")[0],
        "site_title": config.archive.title,
        "archive_url": config.archive.base_url,
        "org": config.organisation,
        "org_of": with_preposition("de", org.short_name or org.name),
        **urls.legal_links(config),
        "paragraphs": [],
        "button": None,
        "action": None,
        "back": False,
    }

    def page(template: str, status: int = 200, **context: Any) -> Response:
        body = env.get_template(template).render({**base, **context})
        return Response(body, status=status, mimetype="text/html")

    @app.before_request
    def only_configured_hosts() -> Response | None:
        if _netloc(request.host, default_port) not in hosts:
            return page(
                "page.html.j2",
                400,
                heading="Adresse inconnue",
                paragraphs=["Ce site ne répond pas à cette adresse."],
            )
        return None

    @app.after_request
    def security_headers(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers[name] = value
        return response

    def bad_link(kind: str, *, expires: bool = True) -> Response:
        # Confirmation links expire; unsubscribe links never do.
        why = "il a peut-être été tronqué ou a expiré" if expires else "il a peut-être été tronqué"
        return page(
            "page.html.j2",
            400,
            heading="Lien non valide",
            paragraphs=[
                f"Ce lien {kind} n’est pas valide\u00a0: {why}.",
                "Copiez le lien complet depuis le message reçu, ou écrivez-nous à "
                f"{config.organisation.contact_email}.",
            ],
            back=True,
        )

    def form_page(
        status: int = 200, error: str | None = None, email: str = "", name: str = ""
    ) -> Response:
        return page(
            "subscribe.html.j2",
            status,
            heading="S’abonner à la revue de presse",
            action=form_route,
            error=error,
            email=email,
            name=name,
            form_token=tokens.form(),
        )

    # Where the form may be posted from: our site and the archive's (its static form),
    # each with the scheme of its address or HTTPS (a page of the same host served over
    # plain HTTP is another origin when the address is https://); the other allowed
    # hosts with either scheme.
    origins: set[tuple[str, str]] = set()
    for address in (config.web.base_url, config.archive.base_url):
        configured = _origin(address)
        if configured is not None:
            scheme, netloc = configured
            origins.add(configured)
            if scheme == "http":  # the same site, served over HTTPS after all
                origins.add(("https", netloc))
    origins |= {
        (scheme, _netloc(h, "443" if scheme == "https" else "80"))
        for h in config.web.allowed_hosts
        for scheme in ("http", "https")
    }

    def origin() -> str:
        """``ours``, ``foreign`` or ``absent``: the Origin header, or without it the Referer."""
        for header in ("Origin", "Referer"):
            value = request.headers.get(header)
            if value is None:
                continue
            return "ours" if _origin(value) in origins else "foreign"
        return "absent"

    if prefix:

        @app.get(prefix)
        def to_form() -> Response:
            return Response(status=301, headers={"Location": config.web.base_url})

    @app.get(form_route)
    def subscribe_form() -> Response:
        return form_page()

    @app.post(form_route)
    def subscribe() -> Response:
        email = request.form.get("email", "").strip()
        name = request.form.get("name", "").strip()[:200]
        # Cross-site requests: a foreign Origin (or Referer) is refused; a form token, when
        # sent (our form), must be ours and recent; without one (the archive's static form)
        # the request must name one of our origins.
        source = origin()
        if source == "foreign":
            return form_page(
                403,
                "Cette demande ne vient pas du formulaire de ce site : "
                "merci de le valider à nouveau ci-dessous.",
                email, name,
            )  # fmt: skip
        token = request.form.get("form_token")
        if not (tokens.check_form(token) if token is not None else source == "ours"):
            return form_page(
                400, "Le formulaire a expiré : merci de le valider à nouveau.", email, name
            )
        if not request.form.get("website"):  # the hidden field only robots fill in
            try:
                enqueue_signup(
                    config,
                    store,
                    email,
                    name=name or None,
                    client=request.remote_addr,
                    secret=tokens.key,
                )
            except InvalidAddress:
                return form_page(400, "Cette adresse électronique n’est pas valide.", email, name)
            except RateLimited as exc:
                response = page(
                    "page.html.j2",
                    429,
                    heading="Trop de demandes",
                    paragraphs=[
                        "Trop de demandes d’abonnement ont été envoyées depuis votre connexion. "
                        "Merci de réessayer plus tard."
                    ],
                    back=True,
                )
                response.headers["Retry-After"] = str(exc.retry_after)
                return response
            if background:
                worker.wake()
        return page(
            "page.html.j2",
            heading="Vérifiez votre messagerie",
            paragraphs=[
                "Merci ! Si cette adresse peut recevoir la revue de presse, "
                "un message va y être envoyé avec un lien pour confirmer l’abonnement.",
                "Pensez à regarder dans les courriers indésirables.",
            ],
            back=True,
        )

    def already_confirmed() -> Response:
        return page(
            "page.html.j2",
            heading="Abonnement déjà confirmé",
            paragraphs=[
                "Votre abonnement est déjà confirmé\u00a0: vous recevez la revue de presse "
                "à cette adresse. Il n’y a rien d’autre à faire."
            ],
            back=True,
        )

    @app.get(urls.web_path(config, urls.CONFIRM_ROUTE))
    def confirm_page(token: str) -> Response:
        try:
            subject = tokens.read_confirm(token)
        except BadToken:
            return bad_link("de confirmation")
        if subscription_status(store, subject.subscriber_id, subject.digest) == "active":
            return already_confirmed()
        return page(
            "page.html.j2",
            heading="Confirmer votre abonnement",
            paragraphs=["Un clic pour recevoir chaque semaine la revue de presse."],
            button="Confirmer mon abonnement",
            action=urls.web_path(config, urls.CONFIRM_ROUTE, token),
        )

    @app.post(urls.web_path(config, urls.CONFIRM_ROUTE))
    def confirm(token: str) -> Response:
        try:
            subject = tokens.read_confirm(token)
        except BadToken:
            return bad_link("de confirmation")
        if subscription_status(store, subject.subscriber_id, subject.digest) == "active":
            return already_confirmed()
        if not confirm_subscription(store, subject.subscriber_id, subject.digest):
            return bad_link("de confirmation")
        return page(
            "page.html.j2",
            heading="Abonnement confirmé",
            paragraphs=["Merci ! Vous recevrez la prochaine revue de presse."],
            back=True,
        )

    @app.get(urls.web_path(config, urls.UNSUBSCRIBE_ROUTE))
    def unsubscribe_page(token: str) -> Response:
        try:
            tokens.read_unsubscribe(token)
        except BadToken:
            return bad_link("de désabonnement", expires=False)
        return page(
            "page.html.j2",
            heading="Se désabonner",
            paragraphs=[
                "Confirmez votre désabonnement : vous ne recevrez plus la revue de presse "
                "à cette adresse."
            ],
            button="Me désabonner",
            action=urls.web_path(config, urls.UNSUBSCRIBE_ROUTE, token),
        )

    @app.post(urls.web_path(config, urls.UNSUBSCRIBE_ROUTE))
    def unsubscribe_now(token: str) -> Response:
        try:
            subject = tokens.read_unsubscribe(token)
        except BadToken:
            return bad_link("de désabonnement", expires=False)
        one_click = request.form.get("List-Unsubscribe") == "One-Click"
        # A valid token of a forgotten subscriber gets the same answer: nothing is revealed.
        unsubscribe(
            store,
            subject.subscriber_id,
            subject.digest,
            method="one-click" if one_click else "link",
        )
        if one_click:
            return Response("Unsubscribed\n", mimetype="text/plain")
        return page(
            "page.html.j2",
            heading="Vous êtes désabonné·e",
            paragraphs=[
                "Votre désabonnement est enregistré : vous ne recevrez plus la revue de presse.",
                "Vous pouvez vous réabonner à tout moment depuis le site.",
            ],
            back=True,
        )

    @app.errorhandler(404)
    def not_found(_: Any) -> Response:
        return page("page.html.j2", 404, heading="Page introuvable", paragraphs=[], back=True)

    @app.errorhandler(405)
    def not_allowed(_: Any) -> Response:
        return page("page.html.j2", 405, heading="Méthode non autorisée", paragraphs=[], back=True)

    @app.errorhandler(500)
    def server_error(_: Any) -> Response:
        return page(
            "page.html.j2",
            500,
            heading="Service momentanément indisponible",
            paragraphs=["Votre demande n’a pas pu être traitée. Merci de réessayer plus tard."],
            back=True,
        )

    @app.errorhandler(413)
    def too_large(_: Any) -> Response:
        return page(
            "page.html.j2", 413, heading="Requête trop volumineuse", paragraphs=[], back=True
        )

    if background:
        worker.wake()  # also sends what a previous process left queued
    return app

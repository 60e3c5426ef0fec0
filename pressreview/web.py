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
token gets a 400 page. No response depends on whether an address is subscribed.
Production: ``waitress-serve --call pressreview.web:create_app`` (docs/delivery.md).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, request

from pressreview import urls
from pressreview.config import Config, load_config
from pressreview.deliver.single import confirmation_sender
from pressreview.errors import DeliveryError
from pressreview.store import Store, open_store
from pressreview.subscribers import (
    InvalidAddress,
    confirm_subscription,
    request_subscription,
    unsubscribe,
)
from pressreview.templating import template_env
from pressreview.tokens import BadToken, Tokens

log = logging.getLogger("pressreview.web")
MAX_FORM_BYTES = 16 * 1024


def create_app(
    config: Config | None = None,
    store: Store | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> Flask:
    """The WSGI application. Without arguments it loads feeds.yaml ($PRESSREVIEW_CONFIG)."""
    config = config or load_config()
    store = store or open_store(config)
    tokens = Tokens.from_env(environ)
    env = template_env(config, "web")
    send_confirmation = confirmation_sender(config, environ=environ)
    app = Flask("pressreview.web")
    app.config["MAX_CONTENT_LENGTH"] = MAX_FORM_BYTES
    base = {
        "lang": config.locale.split("_")[0],
        "site_title": config.archive.title,
        "archive_url": config.archive.base_url,
        "org": config.organisation,
        "paragraphs": [],
        "button": None,
        "action": None,
        "back": False,
    }

    def page(template: str, status: int = 200, **context: Any) -> Response:
        body = env.get_template(template).render({**base, **context})
        response = Response(body, status=status, mimetype="text/html")
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Content-Security-Policy"] = (
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
            "frame-ancestors 'none'"
        )
        return response

    def bad_link(kind: str) -> Response:
        return page(
            "page.html.j2",
            400,
            heading="Lien non valide",
            paragraphs=[
                f"Ce lien {kind} n’est pas valide : il a peut-être été tronqué ou a expiré.",
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
            action=urls.web_path(config, urls.SUBSCRIBE_ROUTE),
            error=error,
            email=email,
            name=name,
        )

    @app.get(urls.web_path(config, urls.SUBSCRIBE_ROUTE))
    def subscribe_form() -> Response:
        return form_page()

    @app.post(urls.web_path(config, urls.SUBSCRIBE_ROUTE))
    def subscribe() -> Response:
        email = request.form.get("email", "").strip()
        name = request.form.get("name", "").strip()[:200]
        if not request.form.get("website"):  # the hidden field only robots fill in
            try:
                request_subscription(
                    config,
                    store,
                    email,
                    send_confirmation=send_confirmation,
                    name=name or None,
                    environ=environ,
                )
            except InvalidAddress:
                return form_page(400, "Cette adresse électronique n’est pas valide.", email, name)
            except DeliveryError as exc:
                log.error("confirmation email not sent: %s", exc)
                return page(
                    "page.html.j2",
                    503,
                    heading="Service momentanément indisponible",
                    paragraphs=[
                        "Votre demande n’a pas pu être traitée. Merci de réessayer plus tard."
                    ],
                    back=True,
                )
        return page(
            "page.html.j2",
            heading="Vérifiez votre messagerie",
            paragraphs=[
                "Merci ! Si cette adresse peut recevoir la revue de presse, "
                "un message vient d’y être "
                "envoyé avec un lien pour confirmer l’abonnement.",
                "Pensez à regarder dans les courriers indésirables.",
            ],
            back=True,
        )

    @app.get(urls.web_path(config, urls.CONFIRM_ROUTE))
    def confirm_page(token: str) -> Response:
        try:
            tokens.read_confirm(token)
        except BadToken:
            return bad_link("de confirmation")
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
            return bad_link("de désabonnement")
        return page(
            "page.html.j2",
            heading="Se désabonner",
            paragraphs=["Vous ne recevrez plus la revue de presse à cette adresse."],
            button="Me désabonner",
            action=urls.web_path(config, urls.UNSUBSCRIBE_ROUTE, token),
        )

    @app.post(urls.web_path(config, urls.UNSUBSCRIBE_ROUTE))
    def unsubscribe_now(token: str) -> Response:
        try:
            subject = tokens.read_unsubscribe(token)
        except BadToken:
            return bad_link("de désabonnement")
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

    @app.errorhandler(413)
    def too_large(_: Any) -> Response:
        return page(
            "page.html.j2", 413, heading="Requête trop volumineuse", paragraphs=[], back=True
        )

    return app

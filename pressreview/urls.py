"""Every public address of the project, and the routes of the web endpoints.

Two sites are addressed:

- the static archive, under ``archive.base_url``: the pages of ``archive/``
  (paths relative to the site's root: ``numeros/12/``, ``rubriques/emploi/``,
  ``a-propos/``...), its Atom feed, sitemap and robots.txt; a snapshot's
  ``archive_url`` is :func:`issue_url`;
- the subscription endpoints of ``web.py``, under ``web.base_url``: the form
  (:data:`SUBSCRIBE_ROUTE`, where the archive's form posts too), the
  confirmation link and the unsubscribe link of every email.

Nothing else in the package puts an address together: the archive, the
snapshot, the emails and the Flask routes all ask this module, so a link and
the route that answers it cannot drift apart.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pressreview.config import Config, WebSettings
from pressreview.errors import UsageError

# -- the static archive: paths relative to its root -----------------------------------

#: The Atom feed of the latest issues.
FEED_PATH = "atom.xml"
SITEMAP_PATH = "sitemap.xml"
ROBOTS_PATH = "robots.txt"
#: The about page; the subscribe form is its ``#abonnement`` part.
ABOUT_PATH = "a-propos/"
SEARCH_PATH = "recherche/"
#: The agenda page and its iCalendar feed.
AGENDA_PATH = "agenda/"
AGENDA_ICS_PATH = "agenda.ics"
#: The legal pages (publisher, host) and the privacy page (what is kept about subscribers).
LEGAL_PATH = "mentions-legales/"
PRIVACY_PATH = "donnees-personnelles/"
#: Where the archive publishes organisation.logo_file (the email's logo).
LOGO_PATH = "logo.png"
#: The contrats de ville tracker page and its exports (docs/contracts.md).
CONTRACTS_PATH = "contrats-de-ville/"
CONTRACTS_CSV_PATH = CONTRACTS_PATH + "contrats-de-ville.csv"
CONTRACTS_JSON_PATH = CONTRACTS_PATH + "contrats-de-ville.json"
#: The folder of the issue pages (``numeros/<n>/``).
ISSUES_DIR = "numeros"
#: The kinds of group pages: one page per section, one per territory.
SECTIONS_DIR = "rubriques"
TERRITORIES_DIR = "territoires"


def issue_path(number: int) -> str:
    """The page of an issue, relative to the archive's root: ``numeros/<n>/``."""
    return f"{ISSUES_DIR}/{number}/"


def list_page_path(page: int) -> str:
    """A page of the list of issues: ``page/<n>/``."""
    return f"page/{page}/"


def group_path(kind: str, slug: str) -> str:
    """The page of a section (``rubriques/<slug>/``) or a territory (``territoires/<slug>/``)."""
    return f"{kind}/{slug}/"


def year_path(group: str, year: int) -> str:
    """The items of one year in a group's page (``group`` is a group_path)."""
    return f"{group}{year}/"


def archive_paths() -> dict[str, str]:
    """The fixed paths the archive's templates link to (``site.paths``)."""
    return {
        "about": ABOUT_PATH,
        "search": SEARCH_PATH,
        "feed": FEED_PATH,
        "agenda": AGENDA_PATH,
        "agenda_ics": AGENDA_ICS_PATH,
        "legal": LEGAL_PATH,
        "privacy": PRIVACY_PATH,
        "contracts": CONTRACTS_PATH,
        "sections": f"{SECTIONS_DIR}/",
        "territories": f"{TERRITORIES_DIR}/",
    }


def site_root(base_url: str) -> str:
    """A site's base address, checked, with its trailing slash (UsageError if it is not one)."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(
            f"base URL {base_url!r}: not an http(s) URL (e.g. https://veille.example.org/)"
        )
    if parts.query or parts.fragment:
        raise UsageError(f"base URL {base_url!r}: must not have a query or a fragment")
    return base_url if base_url.endswith("/") else base_url + "/"


def archive_root(config: Config) -> str:
    """``archive.base_url`` with its trailing slash."""
    return site_root(config.archive.base_url)


def legal_links(config: Config) -> dict[str, str]:
    """The archive's legal and privacy pages (``legal_url``, ``privacy_url``): linked from
    every email footer and the subscription pages."""
    root = archive_root(config)
    return {"legal_url": root + LEGAL_PATH, "privacy_url": root + PRIVACY_PATH}


def email_logo_url(config: Config) -> str | None:
    """The address of the email's logo: organisation.logo_url, else the copy of
    organisation.logo_file that the archive publishes at its root."""
    org = config.organisation
    if org.logo_url:
        return org.logo_url
    if org.logo_file:
        return archive_root(config) + LOGO_PATH
    return None


def issue_url(base_url: str, number: int) -> str:
    """The permanent address of an issue's page: ``<base_url>numeros/<n>/``."""
    return site_root(base_url) + issue_path(number)


def archive_issue_url(config: Config, number: int) -> str:
    """The public page of an issue in the configured archive (a snapshot's ``archive_url``)."""
    return issue_url(config.archive.base_url, number)


def contracts_url(config: Config) -> str:
    """The archive's contrats de ville tracker page (the email block links to it)."""
    return archive_root(config) + CONTRACTS_PATH


# -- the web endpoints: routes under the path of web.base_url --------------------------

#: GET: the form; POST: email (+ name) -> pending subscriber + confirmation email.
SUBSCRIBE_ROUTE = "/"
#: GET: a page with a button; POST: pending -> active.
CONFIRM_ROUTE = "/confirmer/<token>"
#: GET: a page with a button; POST: unsubscribed at once (also RFC 8058 one-click).
UNSUBSCRIBE_ROUTE = "/desabonnement/<token>"
#: The token of the sample unsubscribe link of test and preview copies.
SAMPLE_TOKEN = "exemple-de-lien-personnel"


def web_root(config: Config) -> str:
    """``web.base_url`` with its trailing slash."""
    base = config.web.base_url
    return base if base.endswith("/") else base + "/"


def web_prefix(config: Config) -> str:
    """The path the web application is mounted at, without trailing slash (``/abonnement``)."""
    return urlsplit(config.web.base_url).path.rstrip("/")


def web_path(config: Config, route: str, token: str | None = None) -> str:
    """A route under :func:`web_prefix`: a Flask rule, or with ``token`` a link's path."""
    path = route if token is None else route.replace("<token>", token)
    return web_prefix(config) + path


def _web_url(config: Config, route: str, token: str | None = None) -> str:
    path = route.lstrip("/")
    if token is not None:
        path = path.replace("<token>", token)
    return web_root(config) + path


def subscribe_url(config: Config) -> str:
    """Where a subscribe form posts (the web application's form route)."""
    return _web_url(config, SUBSCRIBE_ROUTE)


def archive_subscribe_url(config: Config) -> str | None:
    """The action of the archive's subscribe form, when a web endpoint is configured.

    None while ``web.base_url`` is the default (a local development address,
    not an endpoint readers could reach): the page then gives the contact address.
    """
    if config.web.base_url == WebSettings().base_url:
        return None
    return subscribe_url(config)


def confirm_url(config: Config, token: str) -> str:
    """The confirmation link of a double opt-in email."""
    return _web_url(config, CONFIRM_ROUTE, token)


def unsubscribe_url(config: Config, token: str) -> str:
    """A subscriber's personal unsubscribe link (also in List-Unsubscribe)."""
    return _web_url(config, UNSUBSCRIBE_ROUTE, token)


def sample_unsubscribe_url(config: Config) -> str:
    """The unsubscribe link of test and preview copies: no one's, points at the right route."""
    return unsubscribe_url(config, SAMPLE_TOKEN)

"""The Jinja2 environments of every template set: email, archive and web.

Templates live in ``templates/<subdir>/`` of the project; a ``templates_dir``
in the configuration is searched first (``<templates_dir>/<subdir>/``), so an
organisation can restyle one file without forking the others. The filters
(``format_date``, ``format_datetime``, ``format_number``) speak the
configured locale and time zone. Used by render (email), archive (pages) and
web (subscription pages); it imports none of them.
"""

from __future__ import annotations

import functools
import traceback
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
from babel.dates import format_datetime as babel_format_datetime
from babel.numbers import format_decimal
from markupsafe import Markup

from pressreview import typography
from pressreview.config import Config
from pressreview.errors import RenderError
from pressreview.text import safe_url


def _default_templates() -> Path:
    """The default theme: templates/ at the repository's root (a checkout or an
    editable install), or its copy installed as pressreview/templates (a wheel)."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "templates", here / "templates"):
        if (candidate / "email").is_dir():
            return candidate
    return here / "templates"  # pragma: no cover - a broken installation


#: Where the default theme lives: templates/<subdir>/.
TEMPLATES_ROOT = _default_templates()

# -- the Jinja environment -----------------------------------------------------


def _date_filter(locale: str) -> Callable[..., str]:
    def format_date_filter(value: Any, format: str = "long") -> str:
        """A date in words for readers: ``mardi 1er décembre 2026`` (format="full")."""
        return typography.format_date(value, format, locale)

    return format_date_filter


def _names_date_filter(locale: str) -> Callable[..., bool]:
    def names_date(title: Any, value: Any) -> bool:
        return typography.names_date(title, value, locale)

    return names_date


def _datetime_filter(locale: str, tz: Any) -> Callable[..., str]:
    def format_datetime_filter(value: Any, format: str = "medium") -> str:
        if value is None or value == "":
            return ""
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return babel_format_datetime(value, format=format, tzinfo=tz, locale=locale)

    return format_datetime_filter


def _number_filter(locale: str) -> Callable[..., str]:
    def format_number_filter(value: Any) -> str:
        return "" if value is None else format_decimal(value, locale=locale)

    return format_number_filter


def template_dirs(config: Config, subdir: str) -> list[Path]:
    """Folders searched for the templates of ``subdir``, first match wins."""
    dirs: list[Path] = []
    if config.templates_dir:
        dirs.append(config.resolve(config.templates_dir) / subdir)
    dirs.append(TEMPLATES_ROOT / subdir)
    return dirs


def template_env(config: Config, subdir: str) -> jinja2.Environment:
    """The Jinja2 environment for ``templates/<subdir>`` (email, archive, web).

    ``<templates_dir>/<subdir>`` of the configuration is searched first, then
    the project's default theme. Autoescape is on (except for ``*.txt.j2``
    templates, which produce plain text), undefined variables are errors, and
    the filters ``format_date`` (Babel, through typography.format_date:
    ``value|format_date("full")`` gives "mardi 1er décembre 2026"),
    ``format_datetime`` and ``format_number`` use ``config.locale`` and
    ``config.timezone``; ``typo`` / ``typo_html`` apply French typography (see
    typography.py), ``wrap`` wraps plain text, ``capfirst`` capitalizes the
    first letter only and ``title|names_date(date)`` tells whether a title
    already says that date in words.
    """
    loader = jinja2.FileSystemLoader([str(d) for d in template_dirs(config, subdir)])
    env = jinja2.Environment(
        loader=loader,
        autoescape=jinja2.select_autoescape(
            disabled_extensions=("txt.j2", "txt"), default_for_string=True, default=True
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["format_date"] = _date_filter(config.locale)
    env.filters["format_datetime"] = _datetime_filter(config.locale, config.tz)
    env.filters["format_number"] = _number_filter(config.locale)
    env.filters["typo"] = typography.typeset_value
    env.filters["typo_html"] = lambda value: Markup(typography.typeset_html(str(value or "")))
    env.filters["wrap"] = typography.wrap
    env.filters["capfirst"] = _capfirst
    env.filters["names_date"] = _names_date_filter(config.locale)
    env.filters["safe_url"] = safe_url
    return env


@functools.lru_cache(maxsize=16)
def _cached_env(dirs: tuple[str, ...], locale: str, timezone: str) -> jinja2.Environment:
    config = Config(templates_dir=None, locale=locale, timezone=timezone)
    env = template_env(config, "email")
    env.loader = jinja2.FileSystemLoader(list(dirs))
    return env


def email_env(config: Config) -> jinja2.Environment:
    """The (cached) environment of the email templates; templates reload when their file changes."""
    dirs = tuple(str(d) for d in template_dirs(config, "email"))
    return _cached_env(dirs, config.locale, config.timezone)


def _template_location(exc: BaseException, name: str) -> str:
    """``name, line N`` from a Jinja error or from the traceback of a render."""
    lineno = getattr(exc, "lineno", None)
    filename = getattr(exc, "filename", None) or getattr(exc, "name", None)
    if lineno is None:
        for frame in reversed(traceback.extract_tb(exc.__traceback__)):
            if frame.filename.endswith(".j2") or frame.filename == "<template>":
                lineno, filename = frame.lineno, frame.filename
                break
    where = filename or name
    return f"{where}, line {lineno}" if lineno else str(where)


def render_template(env: jinja2.Environment, name: str, context: Mapping[str, Any]) -> str:
    """Render one template; any failure becomes a RenderError naming the template and line."""
    try:
        template = env.get_template(name)
        return template.render(**context)
    except jinja2.TemplateNotFound as exc:
        searched = ", ".join(str(p) for p in getattr(env.loader, "searchpath", []))
        raise RenderError(f"template {exc.name} not found (searched {searched})") from None
    except jinja2.TemplateSyntaxError as exc:
        raise RenderError(
            f"{_template_location(exc, name)}: template syntax error: {exc.message}"
        ) from None
    except jinja2.UndefinedError as exc:
        raise RenderError(f"{_template_location(exc, name)}: {exc.message}") from None
    except RenderError as exc:
        raise RenderError(f"{_template_location(exc, name)}: {exc}") from None
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        raise RenderError(f"{_template_location(exc, name)}: {type(exc).__name__}: {exc}") from None


def _capfirst(value: Any) -> Any:
    """The first letter in capitals, the rest as is (Jinja's ``capitalize`` lowers it):
    "mercredi 2 décembre" as a line of its own reads "Mercredi 2 décembre"."""
    if isinstance(value, Markup):
        return Markup(value[:1].upper() + value[1:])
    text = "" if value is None else str(value)
    return text[:1].upper() + text[1:]

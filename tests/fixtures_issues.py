"""Shared helpers of the issues and render tests: fixed snapshots, checks, PNG reading."""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path
from typing import Any

from pressreview.config import Config, parse_config

SNAPSHOT_DIR = Path(__file__).parent / "snapshots" / "email"
UPDATE_ENV = "PRESSREVIEW_UPDATE_SNAPSHOTS"

OUTLETS = [
    "Le Courrier de Picardie",
    "L'Écho des Hauts-de-France",
    "La Voix du Nord",
    "Préfecture des Hauts-de-France",
    "Agence nationale de la cohésion des territoires",
]
TERRITORIES = [
    "Amiens Métropole",
    "Métropole européenne de Lille",
    "Creil Sud Oise",
    "CA de Lens-Liévin",
    "CU d'Arras",
]
SUBJECTS = [
    "signe son contrat de ville Quartiers 2030 avec l'État et la Région",
    "lance la rénovation de 450 logements sociaux dans le quartier prioritaire",
    "ouvre une maison France services au cœur du QPV",
    "réunit son conseil citoyen pour la première évaluation du contrat",
    "mobilise l'abattement de TFPB pour la gestion urbaine de proximité",
]


def fixed_config(**values: Any) -> Config:
    """A configuration built in code (no file): sections of the test brief."""
    data: dict[str, Any] = {
        "organisation": {
            "name": "Centre de ressources politique de la ville",
            "url": "https://crpv.example.org/",
            "logo_url": "https://crpv.example.org/static/logo.png",
            "postal_address": "1 rue de l'Exemple, 59000 Lille",
            "contact_email": "contact@crpv.example.org",
        },
        "sections": [
            {"key": "signatures", "title": "Signatures des contrats de ville"},
            {"key": "renouvellement", "title": "Renouvellement urbain"},
            {"key": "vie-des-quartiers", "title": "Vie des quartiers"},
        ],
        "archive": {"base_url": "https://veille.example.org/"},
    }
    data.update(values)
    return parse_config(data, environ={})


def fixed_snapshot(count: int = 6, *, excerpt_chars: int = 300) -> dict[str, Any]:
    """A published-issue snapshot with ``count`` items over three sections (plus "autres")."""
    keys = [
        ("signatures", "Signatures des contrats de ville"),
        ("renouvellement", "Renouvellement urbain"),
        ("vie-des-quartiers", "Vie des quartiers"),
        ("autres", "Autres actualités"),
    ]
    sections: list[dict[str, Any]] = [{"key": k, "title": t, "items": []} for k, t in keys]
    for i in range(count):
        place = TERRITORIES[i % len(TERRITORIES)]
        text = (
            f"{place} {SUBJECTS[i % len(SUBJECTS)]}. Le document, préparé avec les habitants, "
            "les bailleurs sociaux et les services de l'État, fixe les priorités pour 2030 : "
            "emploi des jeunes, tranquillité publique, réussite éducative et cadre de vie. "
            "Les élus saluent une démarche « plus simple et plus lisible »."
        )[:excerpt_chars]
        item = {
            "id": 100 + i,
            "title": f"{place} {SUBJECTS[i % len(SUBJECTS)]} (n° {i + 1})",
            "url": f"https://www.example-presse.fr/territoires/article-{i + 1}?id={i}&page=2",
            "outlet": OUTLETS[i % len(OUTLETS)],
            "published_at": f"2026-11-{10 + i % 10:02d}T09:00:00+00:00",
            "date": None if i == 2 else f"2026-11-{10 + i % 10:02d}",
            "territories": [place] if i % 4 else [place, "Nord"],
            "excerpt": text,
            "summary_html": f"<p>{text}</p>",
            "tags": ["presse"],
            "also": [
                {
                    "outlet": OUTLETS[(i + 1) % len(OUTLETS)],
                    "url": f"https://autre.example.fr/a/{i}",
                    "title": "Reprise",
                },
                {
                    "outlet": OUTLETS[(i + 2) % len(OUTLETS)],
                    "url": f"https://encore.example.fr/b/{i}",
                    "title": "Reprise",
                },
            ]
            if i % 3 == 0
            else [],
        }
        sections[i % 4]["items"].append(item)
    sections = [s for s in sections if s["items"]]
    return {
        "schema": 1,
        "number": 12,
        "title": "Quartiers 2030 : où en sont les signatures ?",
        "intro_md": "Bonjour,\n\nCette semaine, **trois signatures** et un [rapport](https://example.org/rapport).",
        "intro_html": "<p>Bonjour,</p>\n<p>Cette semaine, <strong>trois signatures</strong> et un "
        '<a href="https://example.org/rapport">rapport</a>.</p>',
        "published_at": "2026-11-23T07:00:00+00:00",
        "date": "2026-11-23",
        "locale": "fr_FR",
        "organisation": {
            "name": "Centre de ressources politique de la ville",
            "url": "https://crpv.example.org/",
            "logo_url": "https://crpv.example.org/static/logo.png",
            "postal_address": "1 rue de l'Exemple, 59000 Lille",
            "contact_email": "contact@crpv.example.org",
            "reason": "Vous recevez cette lettre parce que vous êtes abonné·e à la revue.",
        },
        "archive_url": "https://veille.example.org/numeros/12/",
        "item_count": count,
        "sections": sections,
        "subject": "Quartiers 2030 : où en sont les signatures ? (revue de presse n° 12)",
    }


# -- PNG reading (no imaging library needed) ------------------------------------


def png_pixels(path: Path) -> tuple[int, int, list[bytes]]:
    """Width, height and raw rows (filters undone) of an 8-bit RGB/RGBA PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width = 8, b"", 0
    height = color = 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        chunk = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", chunk[:10])
            assert depth == 8, f"unsupported bit depth {depth}"
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    channels = {2: 3, 6: 4, 0: 1, 4: 2}[color]
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        if f == 2:  # Up: the most common filter, done without a per-byte branch
            line = bytearray((v + u) & 255 for v, u in zip(line, prev, strict=True))
        elif f in (1, 3, 4):
            for x in range(stride):
                a = line[x - channels] if x >= channels else 0
                if f == 1:
                    line[x] = (line[x] + a) & 255
                    continue
                b = prev[x]
                if f == 3:
                    line[x] = (line[x] + (a + b) // 2) & 255
                    continue
                c = prev[x - channels] if x >= channels else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[x] = (line[x] + pred) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, [bytes(r) for r in rows]


def distinct_colours(path: Path, step: int = 4) -> int:
    """How many distinct pixel values a PNG holds (sampled every ``step`` pixels)."""
    width, _height, rows = png_pixels(path)
    channels = len(rows[0]) // width
    seen: set[bytes] = set()
    for row in rows[::step]:
        for x in range(0, width, step):
            seen.add(row[x * channels : (x + 1) * channels])
    return len(seen)


def mask(text: str) -> str:
    """Volatile values of a render masked for snapshot comparison: message ids, and
    the unsubscribe placeholder (random for each process)."""
    from pressreview.render import UNSUBSCRIBE_PLACEHOLDER

    text = text.replace(
        UNSUBSCRIBE_PLACEHOLDER, "https://desabonnement.invalid/pressreview-unsubscribe-placeholder"
    )
    return re.sub(r"<pr\.[^>]*>", "<MESSAGE-ID>", text)

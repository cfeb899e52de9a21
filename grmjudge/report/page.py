"""The report page: one HTML file with its CSS, script and data inlined, readable from ``file://`` or a mail.

Every caller and model text reaches the page either escaped into the HTML by Python or as JSON data that the
script puts on the page with ``textContent`` only, never as markup. A Content-Security-Policy allows the page's own
script alone (by its hash), no network and no inline handlers, so a text that slipped through would still not run.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from html import escape
from importlib import resources
from typing import Any

from grmjudge._version import __version__
from grmjudge.eval.position import PositionBias
from grmjudge.report import svg
from grmjudge.report.items import ItemView
from grmjudge.report.select import RULE
from grmjudge.report.sources import Texts
from grmjudge.report.summary import Summary

MAX_TEXT = 4000
"""Characters kept of each text on the page; the rest is cut, with a mark saying how much."""


def render(
    title: str,
    summary: Summary,
    shown: Sequence[ItemView],
    texts: Mapping[str, Texts],
    *,
    notes: Sequence[str],
    results: Mapping[str, Any] | None,
    about: Mapping[str, str],
) -> str:
    """The whole page."""
    script = _asset("report.js")
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    policy = (
        f"default-src 'none'; script-src 'sha256-{digest}'; style-src 'unsafe-inline'; img-src data:; "
        "base-uri 'none'; form-action 'none'"
    )
    data = {"items": [_item_data(item, texts.get(item.id)) for item in shown]}
    body = [
        _header(title, about),
        *(f'<p class="note">{escape(note)}</p>' for note in notes),
        _summary_section(summary),
        _eval_section(results) if results is not None else "",
        _position_section(summary.position_bias, summary.labelled > 0),
        _items_section(len(shown), summary.items),
    ]
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{policy}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_asset('report.css')}</style></head>"
        '<body><a class="skip" href="#items">Skip to the items</a><main>'
        + "".join(body)
        + f'</main><script type="application/json" id="report-data">{_json(data)}</script>'
        f"<script>{script}</script></body></html>\n"
    )


def _asset(name: str) -> str:
    return resources.files("grmjudge.report").joinpath("assets", name).read_text(encoding="utf-8")


def _json(data: object) -> str:
    """JSON that cannot close its script element: ``<``, ``>`` and ``&`` are written as escapes."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _cut(text: str | None) -> str | None:
    if text is None or len(text) <= MAX_TEXT:
        return text
    return text[:MAX_TEXT] + f"… [{len(text) - MAX_TEXT} more characters cut]"


def _item_data(item: ItemView, texts: Texts | None) -> dict[str, Any]:
    return {
        "id": item.id,
        "section": item.section,
        "query": _cut(texts.query) if texts else None,
        "responses": [_cut(r) for r in texts.responses] if texts else None,
        "label": item.label,
        "scores": list(item.scores) if item.scores is not None else None,
        "best": item.best,
        "noVerdict": not item.verdict,
        "failures": dict(item.failures),
        "error": item.error,
        "agreement": item.agreement,
        "spread": item.spread,
        "split": item.split,
        "wrong": item.wrong,
        "valid": sum(s.scores is not None for s in item.samples),
        "kept": sum(s.kept for s in item.samples),
        "samples": [
            {
                "shown": list(s.shown),
                "scores": list(s.scores) if s.scores is not None else None,
                "principles": _cut(s.principles),
                "critique": _cut(s.critique),
                "text": _cut(s.text) if s.principles is None and s.critique is None else None,
                "failure": s.failure,
                "meta": s.meta,
                "kept": s.kept,
            }
            for s in item.samples
        ],
    }


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "–"


def _share(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _table(caption: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    if not rows:
        return ""
    head = "".join(f'<th scope="col">{escape(h)}</th>' for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><caption>{escape(caption)}</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _header(title: str, about: Mapping[str, str]) -> str:
    facts = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in about.items())
    return (
        f'<header><h1>{escape(title)}</h1><dl class="about">{facts}</dl>'
        '<nav aria-label="Sections"><a href="#summary">Summary</a> <a href="#position">Position bias</a> '
        f'<a href="#items">Items</a></nav><p class="small">grmjudge {escape(__version__)}</p></header>'
    )


def _summary_section(s: Summary) -> str:
    cards = {
        "Items": f"{s.items:,}",
        "Verdicts": f"{s.verdicts:,} ({_pct(s.verdicts, s.items)})",
        "No verdict": f"{s.items - s.verdicts - sum(s.errors.values()):,}",
        "Errors": f"{sum(s.errors.values()):,}",
        "Samples (valid / all)": f"{s.valid_samples:,} / {s.samples:,}",
        "Requests": f"{s.requests:,}",
        "Tokens (prompt / completion)": (
            f"{s.prompt_tokens:,} / {s.completion_tokens:,}" if s.tokens_reported else "not reported"
        ),
        "Agree with the label": f"{s.right:,} of {s.labelled:,} ({_pct(s.right, s.labelled)})"
        if s.labelled
        else "no labels",
        "Mean vote agreement": _share(s.agreement_sum / s.agreement_items if s.agreement_items else None),
        "Unanimous items": f"{s.unanimous:,} ({_pct(s.unanimous, s.agreement_items)})",
        "Split votes": f"{s.split:,} ({_pct(s.split, s.items)})",
        "Meta RM keep rate": _pct(s.meta_kept, s.meta_valid) if s.meta_items else "no meta RM",
    }
    dl = "".join(f'<div class="card"><dt>{escape(k)}</dt><dd>{escape(v)}</dd></div>' for k, v in cards.items())
    tables = [
        _table("No verdict, by the reasons its samples failed", ["Reason", "Items"], _counted(s.no_verdict_reasons)),
        _table("Items that raised, by error", ["Error", "Items"], _counted(s.errors)),
        _table("Failed samples, by reason", ["Reason", "Samples"], _counted(s.sample_failures)),
    ]
    if s.sections:
        rows = [
            [name, f"{c.items:,}", f"{c.no_verdict:,}", f"{_pct(c.right, c.labelled)} of {c.labelled:,}"]
            for name, c in sorted(s.sections.items())
        ]
        tables.append(_table("Sections of this pass", ["Section", "Items", "No verdict", "Best = label"], rows))
    charts = [
        svg.bars("Sample scores (valid samples, every response)", *_sorted_counts(s.scores)),
        svg.bars(
            "Vote agreement (share of an item's samples naming its best)",
            [f"{10 * i}%" for i in range(10)],
            [float(s.agreement[i]) for i in range(10)],
        ),
        svg.bars("Score spread (largest range of one response's scores)", *_sorted_counts(s.spreads)),
    ]
    if s.meta_scores_kept or s.meta_scores_dropped:
        charts.append(svg.bars("Meta scores of kept samples", *svg.histogram(s.meta_scores_kept)))
        charts.append(svg.bars("Meta scores of dropped samples", *svg.histogram(s.meta_scores_dropped)))
    return (
        '<section id="summary" aria-labelledby="summary-h"><h2 id="summary-h">Summary</h2>'
        f'<dl class="cards">{dl}</dl><div class="charts">{"".join(charts)}</div>{"".join(tables)}</section>'
    )


def _counted(counts: Mapping[str, int]) -> list[list[str]]:
    return [[name, f"{n:,}"] for name, n in sorted(counts.items(), key=lambda kv: -kv[1])]


def _sorted_counts(counts: Mapping[int, int]) -> tuple[list[str], list[float]]:
    keys = sorted(counts)
    return [str(k) for k in keys], [float(counts[k]) for k in keys]


def _eval_section(results: Mapping[str, Any]) -> str:
    settings: Mapping[str, Any] = results.get("settings") or {}
    rows = [
        [name, _number(s["overall"]), f"{s['calls']:,}", f"{s['no_verdict_calls']:g}"] for name, s in settings.items()
    ]
    parts = [
        _table(
            "Settings (official scoring)", ["Setting", str(results.get("column", "Score")), "Calls", "No verdict"], rows
        )
    ]
    curve: Mapping[str, Any] = results.get("curve") or {}
    names = {"voting": "Voting@k", "metarm": "MetaRM@k"}
    series = {
        names.get(kind, kind): [(float(p["k"]), 100 * float(p["value"])) for p in points]
        for kind, points in curve.items()
    }
    if series:
        parts.append(svg.curves("Scaling curve (official score, %)", series, ylabel="%"))
    sections = list(dict.fromkeys(k for s in settings.values() for k in s.get("sections", {})))
    if sections:
        rows = [[name, *(_number(s["sections"].get(k)) for k in sections)] for name, s in settings.items()]
        parts.append(_table("Section scores (official scoring)", ["Setting", *sections], rows))
    subsets = list(dict.fromkeys(k for s in settings.values() for k in s.get("subsets", {})))
    if len(subsets) > 1:
        rows = [[name, *(_number(s["subsets"].get(k)) for k in subsets)] for name, s in settings.items()]
        parts.append(_table("Subset scores (official scoring)", ["Setting", *subsets], rows))
    title = f"Evaluation: {results.get('benchmark', '')}"
    return f'<section id="eval" aria-labelledby="eval-h"><h2 id="eval-h">{escape(title)}</h2>{"".join(parts)}</section>'


def _number(number: Mapping[str, Any] | None) -> str:
    if number is None:
        return "–"
    text = f"{100 * float(number['value']):.1f}"
    ci = number.get("ci")
    return text + (f" ({100 * float(ci[0]):.1f}–{100 * float(ci[1]):.1f})" if ci else "")


def _position_section(bias: PositionBias, labelled: bool) -> str:
    parts: list[str] = [
        "<p>From the shuffled samples themselves (valid samples, kept or not). Without a bias, each position wins "
        "1/n of the decisive samples; a sample whose top score is tied counts under ties.</p>"
    ]
    for row in bias.rows:
        header = ["", *(f"Position {i + 1}" for i in range(row.n))]
        rows = [["Wins", *(_share(v) for v in row.win_share)]]
        if labelled and sum(row.labelled):
            rows.append(
                ["Right when the labelled best is shown here", *(_share(v) for v in row.accuracy_by_label_position)]
            )
            rows.append(["Samples with the labelled best here", *(f"{v:,}" for v in row.labelled)])
        expected = _share(1 / row.n)
        caption = f"{row.n} responses: {row.decisive:,} decisive samples, {row.ties:,} ties (expected share {expected})"
        parts.append('<div class="pair">' + _table(caption, header, rows))
        parts.append(
            svg.bars(
                f"Wins by shown position, {row.n} responses",
                header[1:],
                [v or 0.0 for v in row.win_share],
                fmt="{:.2f}",
            )
            + "</div>"
        )
    parts.append(
        f"<p>Flip rate: <strong>{_share(bias.flip_across_orders)}</strong> of {bias.pairs_across_orders:,} pairs of "
        f"samples that saw different orders of the same item pick different winners; "
        f"<strong>{_share(bias.flip_within_order)}</strong> of {bias.pairs_within_order:,} pairs that saw the same "
        "order do (the noise of sampling alone).</p>"
    )
    heading = '<h2 id="position-h">Position bias</h2>'
    return f'<section id="position" aria-labelledby="position-h">{heading}{"".join(parts)}</section>'


def _items_section(shown: int, total: int) -> str:
    rule = f"Showing {shown:,} of {total:,} items in full: {RULE}."
    controls = (
        '<div class="controls" role="group" aria-label="Filters">'
        '<label>Search <input type="search" id="search" placeholder="id, query, response, critique"></label>'
        '<label><input type="checkbox" id="f-split"> split votes</label>'
        '<label><input type="checkbox" id="f-wrong"> wrong against the label</label>'
        '<label><input type="checkbox" id="f-noverdict"> no verdict</label>'
        '<label><input type="checkbox" id="f-spread"> spread at least '
        '<input type="number" id="spread-min" value="4" min="0" max="100" aria-label="minimum spread"></label>'
        '<button type="button" id="clear">Clear filters</button></div>'
    )
    columns = [
        ("order", "#"),
        ("id", "Item"),
        ("section", "Section"),
        ("best", "Best"),
        ("label", "Label"),
        ("agreement", "Agreement"),
        ("spread", "Spread"),
        ("valid", "Valid / kept"),
    ]
    head = "".join(
        f'<th scope="col" aria-sort="none"><button type="button" data-sort="{key}">{escape(name)}</button></th>'
        for key, name in columns
    )
    return (
        f'<section id="items" aria-labelledby="items-h"><h2 id="items-h">Items</h2><p>{escape(rule)}</p>{controls}'
        '<p id="item-count" role="status" aria-live="polite"></p>'
        f'<table class="items"><thead><tr>{head}<th scope="col">Flags</th></tr></thead>'
        '<tbody id="item-rows"></tbody></table></section>'
    )

"""A report as a list of sections of simple blocks, rendered to markdown and to self-contained HTML.

Blocks are built once and rendered twice, so the two files always say the same thing.  Tables are markdown pipe
tables (what the analysis functions return); in HTML they become ``<table>``s, ``**bold**`` becomes ``<b>``,
and figures are embedded as base64 PNG.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from importlib import resources


@dataclass
class Figure:
    """A figure saved as ``name`` next to the report and embedded in the HTML."""

    name: str
    png: bytes
    caption: str


@dataclass
class Section:
    """A titled part of the report: paragraphs, bullet lists, tables and figures, in order."""

    title: str
    blocks: list[tuple[str, object]] = field(default_factory=list)

    def p(self, text: str) -> Section:
        self.blocks.append(("p", text))
        return self

    def ul(self, items: list[str]) -> Section:
        if items:
            self.blocks.append(("ul", list(items)))
        return self

    def table(self, markdown: str, caption: str = "") -> Section:
        if caption:
            self.blocks.append(("caption", caption))
        self.blocks.append(("table", markdown))
        return self

    def figure(self, fig: Figure) -> Section:
        self.blocks.append(("figure", fig))
        return self

    def figures(self) -> list[Figure]:
        return [b for kind, b in self.blocks if kind == "figure"]


def to_markdown(title: str, sections: list[Section]) -> str:
    out = [f"# {title}", ""]
    for s in sections:
        out += [f"## {s.title}", ""]
        for kind, block in s.blocks:
            out += _md_block(kind, block) + [""]
    return "\n".join(out).rstrip() + "\n"


def _md_block(kind: str, block: object) -> list[str]:
    if kind == "p":
        return [str(block)]
    if kind == "caption":
        return [f"*{block}*"]
    if kind == "ul":
        return [f"- {item}" for item in block]
    if kind == "table":
        return [str(block)]
    fig = block
    return [f"![{fig.caption}]({fig.name})", "", f"*{fig.caption}*"]


def to_html(title: str, sections: list[Section]) -> str:
    css = resources.files("vptlab.report").joinpath("style.css").read_text()
    toc = "".join(f'<li><a href="#s{i}">{html.escape(s.title)}</a></li>' for i, s in enumerate(sections))
    body = [f"<h1>{html.escape(title)}</h1>", f"<nav><ol>{toc}</ol></nav>"]
    for i, s in enumerate(sections):
        body.append(f'<section id="s{i}"><h2>{html.escape(s.title)}</h2>')
        body += [_html_block(kind, block) for kind, block in s.blocks]
        body.append("</section>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{css}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def _inline(text: str) -> str:
    """Escape, then the two inline marks we use: ``**bold**`` and ``*italic*``; `code`."""
    text = html.escape(str(text))
    text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text)
    text = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"<i>\1</i>", text)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", text)


def _html_block(kind: str, block: object) -> str:
    if kind == "p":
        return f"<p>{_inline(block)}</p>"
    if kind == "caption":
        return f'<p class="caption">{_inline(block)}</p>'
    if kind == "ul":
        return "<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in block) + "</ul>"
    if kind == "table":
        return _html_table(str(block))
    fig = block
    data = base64.b64encode(fig.png).decode("ascii")
    return (
        f'<figure><img alt="{html.escape(fig.caption)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{_inline(fig.caption)}</figcaption></figure>"
    )


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _html_table(markdown: str) -> str:
    """A markdown pipe table (header, rule, rows) as an HTML table; right-aligned where the rule says so."""
    lines = [ln for ln in markdown.splitlines() if ln.strip()]
    header, rule, rows = _cells(lines[0]), _cells(lines[1]), [_cells(ln) for ln in lines[2:]]
    align = ["right" if r.endswith(":") else "left" for r in rule]
    head = "".join(f"<th>{_inline(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(f'<td style="text-align:{a}">{_inline(c)}</td>' for c, a in zip(row, align))
        + "</tr>"
        for row in rows
    )
    return f'<div class="table"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'

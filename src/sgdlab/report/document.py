"""A report as a list of blocks, written out as Markdown or as one self-contained HTML page.

The same blocks make ``report.md`` (figures linked by relative path) and ``report.html``
(figures embedded as base64 ``data:`` URIs, inline CSS, no external resource).
"""

from __future__ import annotations

import base64
import csv
import html
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

from markdown_it import MarkdownIt


@dataclass
class Heading:
    text: str
    level: int = 2
    anchor: str | None = None


@dataclass
class Paragraph:
    text: str  # plain text; ``**bold**`` is kept in Markdown and becomes <strong> in HTML


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Table:
    """A table: header and rows of cell text. ``caption`` is shown above it."""

    header: list[str]
    rows: list[list[str]]
    caption: str = ""
    note: str = ""
    sortable: bool = False  # in HTML: click a header to sort, type in a box to filter rows

    def markdown(self) -> str:
        def esc(s):
            return str(s).replace("|", "\\|").replace("\n", " ")

        lines = []
        if self.caption:
            lines += [f"**{self.caption}**", ""]
        lines.append("| " + " | ".join(esc(h) for h in self.header) + " |")
        lines.append("|" + "|".join("---" for _ in self.header) + "|")
        lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in self.rows]
        if self.note:
            lines += ["", f"*{self.note}*"]
        return "\n".join(lines)

    def csv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(self.header)
        w.writerows(self.rows)
        return buf.getvalue()


@dataclass
class Figure:
    """A figure written to disk: ``png`` is embedded in HTML, ``svg`` linked beside it."""

    png: Path
    caption: str
    svg: Path | None = None


@dataclass
class RawMarkdown:
    """Markdown written by another tool (``sgdlab compare``), included as is."""

    text: str
    source: str = ""


@dataclass
class Answers:
    """The findings box that opens a report: one line (Markdown inline) per question."""

    items: list[str]
    note: str = ""


@dataclass
class Html:
    """A block only a browser can show (``html``); ``markdown`` stands in for it in report.md."""

    html: str
    markdown: str = ""


@dataclass
class Document:
    title: str
    blocks: list = field(default_factory=list)
    head: list[str] = field(default_factory=list)  # extra <style>/<script> text for the HTML <head>
    tail: list[str] = field(default_factory=list)  # <script> elements run at the end of <body>

    def add(self, *blocks) -> None:
        self.blocks.extend(blocks)


# --------------------------------------------------------------------------- Markdown


def to_markdown(doc: Document, base: Path) -> str:
    out = [f"# {doc.title}", ""]
    for b in doc.blocks:
        if isinstance(b, Heading):
            out += ["#" * b.level + " " + b.text, ""]
        elif isinstance(b, Paragraph):
            out += [b.text, ""]
        elif isinstance(b, Bullets):
            out += [f"- {item}" for item in b.items] + [""]
        elif isinstance(b, Table):
            out += [b.markdown(), ""]
        elif isinstance(b, Figure):
            rel = b.png.relative_to(base).as_posix()
            out += [f"![{b.caption}]({rel})", "", f"*{b.caption}*"
                    + (f" ([SVG]({b.svg.relative_to(base).as_posix()}))" if b.svg else ""), ""]
        elif isinstance(b, RawMarkdown):
            if b.source:
                out += [f"*From `{b.source}`:*", ""]
            out += [_demote_headings(b.text.strip()), ""]
        elif isinstance(b, Answers):
            out += ["## Answers", ""] + [f"- {item}" for item in b.items] + [""]
            if b.note:
                out += [f"*{b.note}*", ""]
        elif isinstance(b, Html):
            if b.markdown:
                out += [b.markdown, ""]
    return "\n".join(out).rstrip() + "\n"


def _demote_headings(text: str) -> str:
    # Included documents sit under a level-2 section: their headings start at level 3.
    return re.sub(r"^(#{1,4}) ", lambda m: "#" * min(6, len(m.group(1)) + 2) + " ", text, flags=re.M)


# --------------------------------------------------------------------------- HTML

CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1.2em;color:#222;line-height:1.45}
h1{border-bottom:2px solid #444;padding-bottom:.2em}
h2{border-bottom:1px solid #bbb;padding-bottom:.15em;margin-top:2em}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.88em}
th,td{border:1px solid #ccc;padding:.25em .55em;text-align:left;vertical-align:top}
th{background:#f0f0f0}
tr:nth-child(even) td{background:#fafafa}
caption{caption-side:top;text-align:left;font-weight:bold;padding:.3em 0}
figure{margin:1em 0 1.6em;text-align:center}
figure img{max-width:100%;height:auto;border:1px solid #e4e4e4}
figcaption{font-size:.9em;color:#444;margin-top:.3em}
.note{font-size:.85em;color:#555;font-style:italic}
.answers{border:2px solid #2a6f97;background:#f2f8fb;border-radius:6px;padding:.2em 1.2em .6em;margin:1em 0 1.5em}
.answers h2{margin-top:.5em;border:none}
.answers li{margin:.35em 0}
table.sortable th{cursor:pointer;user-select:none}
table.sortable th.sorted-asc::after{content:" ▲"}
table.sortable th.sorted-desc::after{content:" ▼"}
.flag{color:#a33}
.scroll{overflow-x:auto}
code{background:#f3f3f3;padding:0 .2em}
nav ul{columns:2;font-size:.92em}
"""


# CommonMark with pipe tables; raw HTML in the source is escaped, not passed through
_MD = MarkdownIt("commonmark", {"html": False}).enable("table")


def _inline(text: str) -> str:
    """One line of Markdown (``**bold**``, ``*em*``, `` `code` ``) as inline HTML."""
    return _MD.renderInline(str(text))


def _table_html(t: Table) -> str:
    parts = []
    if t.sortable:
        parts.append('<p class="table-tools"><input type="search" class="table-filter" '
                     'placeholder="filter rows (e.g. relu, paper, 0.1)"> <span class="table-count"></span> '
                     '<span class="note">click a column header to sort</span></p>')
    parts.append('<div class="scroll"><table class="sortable">' if t.sortable else '<div class="scroll"><table>')
    if t.caption:
        parts.append(f"<caption>{_inline(t.caption)}</caption>")
    parts.append("<thead><tr>" + "".join(f"<th>{_inline(h)}</th>" for h in t.header) + "</tr></thead><tbody>")
    for row in t.rows:
        parts.append("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>")
    parts.append("</tbody></table></div>")
    if t.note:
        parts.append(f'<p class="note">{_inline(t.note)}</p>')
    return "".join(parts)


def data_uri(png: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(png).read_bytes()).decode("ascii")


def _offline(tokens) -> None:
    """Drop images (their PNGs are embedded separately) and keep only the text of links, so
    the page references nothing outside itself; demote headings under a level-2 section."""
    for tok in tokens:
        if tok.type in ("heading_open", "heading_close"):
            tok.tag = f"h{min(6, int(tok.tag[1]) + 2)}"
        if tok.children:
            tok.children = [c for c in tok.children if c.type not in ("image", "link_open", "link_close")]


def markdown_to_html(text: str) -> str:
    """Markdown written by another tool (``sgdlab compare``) as HTML, rendered by markdown-it-py
    (CommonMark plus pipe tables), offline: see :func:`_offline`."""
    tokens = _MD.parse(text)
    _offline(tokens)
    out = _MD.renderer.render(tokens, _MD.options, {})
    return out.replace("<table>", '<div class="scroll"><table>').replace("</table>", "</table></div>")


def to_html(doc: Document) -> str:
    body, toc, lead = [], [], 0
    for b in doc.blocks:
        if isinstance(b, Heading):
            anchor = b.anchor or re.sub(r"[^a-z0-9]+", "-", b.text.lower()).strip("-")
            if b.level == 2:
                toc.append(f'<li><a href="#{anchor}">{_inline(b.text)}</a></li>')
            body.append(f'<h{b.level} id="{anchor}">{_inline(b.text)}</h{b.level}>')
        elif isinstance(b, Paragraph):
            body.append(f"<p>{_inline(b.text)}</p>")
        elif isinstance(b, Bullets):
            body.append("<ul>" + "".join(f"<li>{_inline(it)}</li>" for it in b.items) + "</ul>")
        elif isinstance(b, Table):
            body.append(_table_html(b))
        elif isinstance(b, Figure):
            body.append(f'<figure><img src="{data_uri(b.png)}" alt="{html.escape(b.caption, quote=True)}">'
                        f"<figcaption>{_inline(b.caption)}</figcaption></figure>")
        elif isinstance(b, RawMarkdown):
            if b.source:
                body.append(f'<p class="note">From <code>{html.escape(b.source)}</code>:</p>')
            body.append(markdown_to_html(b.text))
        elif isinstance(b, Answers):
            lead += 1 if len(body) == lead else 0
            note = f'<p class="note">{_inline(b.note)}</p>' if b.note else ""
            body.append('<section class="answers" id="answers"><h2>Answers</h2><ul>'
                        + "".join(f"<li>{_inline(it)}</li>" for it in b.items) + f"</ul>{note}</section>")
        elif isinstance(b, Html):
            body.append(b.html)
    nav = f"<nav><ul>{''.join(toc)}</ul></nav>" if toc else ""
    body.insert(lead, nav)  # the contents come after the answers box
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(doc.title)}</title><style>{CSS}</style>{''.join(doc.head)}</head>\n<body>\n"
            f"<h1>{html.escape(doc.title)}</h1>\n" + "\n".join(body) + "\n" + "".join(doc.tail)
            + "\n</body></html>\n")

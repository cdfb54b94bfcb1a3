"""A Table as CSV (raw numbers), Markdown, LaTeX (booktabs) and an HTML fragment."""

from __future__ import annotations

import html
import re
from pathlib import Path

from dsrl_platform.report.tables import Table

FORMATS = ("csv", "md", "tex")
EMPTY = "No rows."


def markdown(t: Table) -> str:
    lines = [f"### {t.title}", ""]
    if t.display.empty:
        lines.append(EMPTY)
    else:
        cell = lambda s: str(s).replace("|", "\\|")  # noqa: E731
        lines.append("| " + " | ".join(cell(c) for c in t.display.columns) + " |")
        lines.append("|" + "|".join("---" for _ in t.display.columns) + "|")
        lines.extend("| " + " | ".join(cell(v) for v in row) + " |"
                     for row in t.display.itertuples(index=False))
    lines.extend(["", *(f"- {n}" for n in t.notes)] if t.notes else [])
    return "\n".join(lines) + "\n"


_TEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                "^": r"\textasciicircum{}", "±": r"$\pm$", "×": r"$\times$", "—": "---",
                "½": r"$\frac{1}{2}$", "−": "$-$"}
_TEX_RE = re.compile("|".join(re.escape(k) for k in _TEX_SPECIAL))


def tex_escape(s: str) -> str:
    return _TEX_RE.sub(lambda m: _TEX_SPECIAL[m.group()], str(s))


def latex(t: Table) -> str:
    cols = list(t.display.columns)
    lines = [f"% {tex_escape(t.title)} (needs \\usepackage{{booktabs}})",
             r"\begin{tabular}{" + "l" * max(len(cols), 1) + "}", r"\toprule",
             " & ".join(tex_escape(c) for c in cols) + r" \\", r"\midrule"]
    if t.display.empty:
        lines.append(rf"\multicolumn{{{max(len(cols), 1)}}}{{l}}{{{EMPTY}}} \\")
    lines.extend(" & ".join(tex_escape(v) for v in row) + r" \\"
                 for row in t.display.itertuples(index=False))
    lines.extend([r"\bottomrule", r"\end{tabular}"])
    lines.extend(f"% {tex_escape(n)}" for n in t.notes)
    return "\n".join(lines) + "\n"


def html_fragment(t: Table) -> str:
    e = html.escape
    parts = [f'<section class="table" id="table-{e(t.name)}"><h2>{e(t.title)}</h2>']
    if t.display.empty:
        parts.append(f'<p class="empty">{EMPTY}</p>')
    else:
        head = "".join(f"<th>{e(str(c))}</th>" for c in t.display.columns)
        body = "".join("<tr>" + "".join(f"<td>{e(str(v))}</td>" for v in row) + "</tr>"
                       for row in t.display.itertuples(index=False))
        parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
    parts.extend(f'<p class="note">{e(n)}</p>' for n in t.notes)
    files = " · ".join(f'<a href="tables/{e(t.name)}.{x}">{x}</a>' for x in FORMATS)
    parts.append(f'<p class="files">{files}</p></section>')
    return "".join(parts)


def write_table(t: Table, directory: Path) -> list[Path]:
    """tables/<name>.csv|md|tex under `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / f"{t.name}.{x}" for x in FORMATS]
    t.data.to_csv(paths[0], index=False)
    paths[1].write_text(markdown(t), encoding="utf-8")
    paths[2].write_text(latex(t), encoding="utf-8")
    return paths

"""Renders include/gracefulstop.h as the C half of the API reference: one section per declaration,
its comment as the text, an index of every function, and links from one function's text to
another's section. A function named in a comment that the header does not declare is a broken
reference: the build fails on it (as pdoc's warnings fail the Python half)."""

from __future__ import annotations

import html
import re
import sys
from pathlib import Path


def sections(header: str) -> list[tuple[str, str, str]]:
    """(name, comment, declaration) for each function or type the header declares, in order."""
    found = []
    pattern = re.compile(r"/\*(?P<comment>(?:(?!\*/).)*)\*/\s*\n(?P<decl>(?:typedef [^;]*?\}[^;]*;|[^#/][^;{]*?\bgracefulstop_\w+\s*\([^;]*\);))", re.S)
    for match in pattern.finditer(header):
        declaration = " ".join(match["decl"].split())
        name = re.search(r"\b(gracefulstop_\w+)\s*\(", declaration) or re.search(r"\}\s*(gracefulstop_\w+)\s*;", declaration)
        if name is None:
            continue
        comment = "\n".join(line.strip().lstrip("*").strip() for line in match["comment"].strip().splitlines())
        found.append((name.group(1), comment, declaration))
    return found


def main() -> int:
    header_path, out = Path(sys.argv[1]), Path(sys.argv[2])
    header = header_path.read_text()
    items = sections(header)
    declared = {name for name, _, _ in items} | set(re.findall(r"\b(gracefulstop_\w+)\s*\(", header))
    broken = sorted({ref for _, comment, _ in items for ref in re.findall(r"\b(gracefulstop_[a-z_]+)\(\)", comment)} - declared)
    if broken:
        print(f"docs: include/gracefulstop.h names functions it does not declare: {', '.join(broken)}", file=sys.stderr)
        return 1
    intro = re.match(r"/\*(.*?)\*/", header, re.S)
    intro_text = "\n".join(line.strip().lstrip("*").strip() for line in intro.group(1).strip().splitlines()) if intro else ""

    def linked(text: str) -> str:
        escaped = html.escape(text)
        return re.sub(r"\b(gracefulstop_\w+)\b", lambda m: f'<a href="#{m[1]}">{m[1]}</a>' if m[1] in {n for n, _, _ in items} else m[1], escaped)

    body = [f"<h1>The C API: include/gracefulstop.h</h1><pre class='intro'>{html.escape(intro_text)}</pre>", "<h2>Index</h2><ul class='index'>"]
    body += [f'<li><a href="#{name}"><code>{name}</code></a></li>' for name, _, _ in items]
    body.append("</ul>")
    for name, comment, declaration in items:
        body.append(f'<section id="{name}"><h3><code>{name}</code></h3><pre class="decl">{html.escape(declaration)}</pre><p>{linked(comment).replace(chr(10), "<br>")}</p></section>')
    style = "body{font:15px/1.5 system-ui,sans-serif;max-width:960px;margin:24px auto;color:#1d2330}pre{background:#f2f4f8;padding:8px;white-space:pre-wrap}code{font-family:ui-monospace,monospace}section{border-top:1px solid #e6e9f0;margin-top:18px}"
    out.write_text(f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>gracefulstop C API</title><style>{style}</style></head><body>{''.join(body)}<p><a href='gracefulstop.html'>The Python API</a></p></body></html>\n")
    print(f"docs: {len(items)} declarations of the C header")
    return 0


if __name__ == "__main__":
    sys.exit(main())

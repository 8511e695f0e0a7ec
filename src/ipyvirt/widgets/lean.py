"""A table's module and style made small: they travel in the comm_open of every table shown,
and a 10,000-domain table's whole first render (a fleet's too) is held to 20 KiB.

Not a general minifier: it knows what our own static files do and do not do (checked as it
goes, else it raises). No line spans a string or a template literal; a template literal
holds no other one; a regular expression literal holds no quote, space or ``//``; no
``a - -b`` or ``a + +b`` (which a dropped space would turn into ``--``, ``++``).
"""

from __future__ import annotations

import re

__all__ = ["lean"]

_QUOTES = "\"'`"
# a space between two of these stays (``return x``, ``const a``, ``x instanceof Node``)
_WORD = re.compile(r"[A-Za-z0-9_$]")
# CSS: spaces around these go; a descendant combinator's space (".a .b") stays
_CSS_SPACE = re.compile(r"\s*([{};,>])\s*|(:)\s+")


def lean(source: str, *, css: bool = False) -> str:
    """*source* (JavaScript, or CSS with *css*) without comments, indentation, blank lines
    and the spaces nothing needs."""
    if css:
        source = re.sub(r"/\*.*?\*/", "", source, flags=re.DOTALL)
        lines = (_CSS_SPACE.sub(r"\1\2", line.strip()) for line in source.splitlines())
        return "\n".join(line for line in lines if line)
    kept, comment = [], False
    for line in (line.strip() for line in source.splitlines()):
        if comment or line.startswith("/*"):  # a block comment: lines of its own
            comment = not line.endswith("*/")
            continue
        kept.append(_tight(line))
    return "\n".join(line for line in kept if line)


def _tight(line: str) -> str:
    """One line of JavaScript without its comment and the spaces around punctuation; the
    strings and template literals as they are."""
    out: list[str] = []
    quote = ""
    depth = 0  # of ${...} inside the template literal we are in
    i = 0
    while i < len(line):
        c = line[i]
        nxt = line[i + 1] if i + 1 < len(line) else ""
        if quote:
            out.append(c)
            if c == "\\":
                out.append(nxt)
                i += 1
            elif quote == "`" and c == "$" and nxt == "{":
                depth += 1
            elif quote == "`" and c == "}" and depth:
                depth -= 1
            elif c == "`" and quote == "`" and depth:
                raise ValueError(f"a template literal inside another: {line!r}")
            elif c == quote and not depth:
                quote = ""
        elif c == '"' and _plain(line, i):
            # as 'text': JSON (the comm) escapes every " it carries, and a ' not
            end = line.index('"', i + 1)
            out.append("'" + line[i + 1 : end] + "'")
            i = end
        elif c in _QUOTES:
            quote = c
            out.append(c)
        elif c == "/" and nxt == "/":
            break  # a comment to the end of the line
        elif c == " ":
            if out and _WORD.match(out[-1]) and _WORD.match(nxt):
                out.append(c)
        else:
            out.append(c)
        i += 1
    if quote:
        raise ValueError(f"a string goes on past the end of the line: {line!r}")
    return "".join(out).rstrip()


def _plain(line: str, at: int) -> bool:
    """The "string" opening at *at* holds no ' and no escape: it may be written 'so'."""
    end = line.find('"', at + 1)
    return end > at and not any(c in "'\\" for c in line[at + 1 : end])

"""The Markdown of doc/man/*.md, read as blocks and written as roff for the man pages.

Only what those sources use, so that they read well on a forge and as man pages alike:
`# SECTION`, `## Subsection`, paragraphs, `- ` bullet lists, code blocks indented by
four spaces, and tables (`| a | b |`, a `|---|` line under the header). In text,
`code` becomes bold and *word* italic. Anything else is an error naming the line.
"""

import re


class MarkupError(Exception):
    pass


class Block:
    """kind: section, subsection, para, code, bullets, table, or roff (lines a caller
    made); line: where it starts."""

    def __init__(self, kind, line, text=None, rows=None):
        self.kind = kind
        self.line = line
        self.text = text      # str (section, subsection, para) or [str] (code, bullets)
        self.rows = rows      # table: [header cells] + [row cells]...

    def __repr__(self):
        return "Block(%r, %r)" % (self.kind, self.text or self.rows)


TABLE_RULE = re.compile(r"^\|(\s*:?-+:?\s*\|)+$")


def cells(line):
    """The cells of a table row; a `|` inside `code` does not split."""
    inner = line.strip()[1:-1] if line.strip().endswith("|") else line.strip()[1:]
    found, cell, code = [], "", False
    for ch in inner:
        if ch == "`":
            code = not code
        if ch == "|" and not code:
            found.append(cell.strip())
            cell = ""
        else:
            cell += ch
    found.append(cell.strip())
    return found


def parse(text, source):
    """[Block]: the document, block by block."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        line, number = lines[i], i + 1
        if not line.strip():
            i += 1
        elif line.startswith("# "):
            blocks.append(Block("section", number, line[2:].strip()))
            i += 1
        elif line.startswith("## "):
            blocks.append(Block("subsection", number, line[3:].strip()))
            i += 1
        elif line.startswith("    "):
            code = []
            while i < len(lines) and (lines[i].startswith("    ") or not lines[i].strip()):
                code.append(lines[i][4:])
                i += 1
            while code and not code[-1].strip():
                code.pop()
            blocks.append(Block("code", number, code))
        elif line.startswith("|"):
            if i + 1 >= len(lines) or not TABLE_RULE.match(lines[i + 1].strip()):
                raise MarkupError("%s:%d: a table needs a |---| line under its header" % (source, number))
            rows = [cells(line)]
            i += 2
            while i < len(lines) and lines[i].startswith("|"):
                row = cells(lines[i])
                if len(row) != len(rows[0]):
                    raise MarkupError("%s:%d: %d cells, the header has %d"
                                      % (source, i + 1, len(row), len(rows[0])))
                rows.append(row)
                i += 1
            blocks.append(Block("table", number, rows=rows))
        elif line.startswith("- "):
            items = []
            while i < len(lines) and (lines[i].startswith("- ") or lines[i].startswith("  ")):
                if lines[i].startswith("- "):
                    items.append(lines[i][2:].strip())
                else:
                    items[-1] += " " + lines[i].strip()
                i += 1
            blocks.append(Block("bullets", number, items))
        elif line.startswith(("#", ">", "* ", "```")):
            raise MarkupError("%s:%d: not in the subset tools/mdroff.py reads: %s" % (source, number, line))
        else:
            para = []
            while i < len(lines) and lines[i].strip() and not lines[i].startswith(("#", "|", "- ", "    ")):
                para.append(lines[i].strip())
                i += 1
            blocks.append(Block("para", number, " ".join(para)))
    return blocks


# ---- roff ----------------------------------------------------------------------------

def esc(text):
    """Plain text as roff: backslashes and minus signs escaped, `code` bold, *word*
    italic, no line read as a request."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    parts = re.split(r"`([^`]+)`", text)   # odd items are code
    for i in range(0, len(parts), 2):
        parts[i] = re.sub(r"(?<![\w*])\*([^*\s][^*]*)\*(?![\w*])", r"\\fI\1\\fR", parts[i])
    for i in range(1, len(parts), 2):
        parts[i] = "\\fB%s\\fR" % parts[i]
    text = "".join(parts)
    return "\n".join("\\&" + line if line[:1] in (".", "'") else line for line in text.split("\n"))


def code(lines):
    """A literal block, indented."""
    out = [".PP", ".RS 4", ".nf"]
    for line in lines:
        out.append("\\&" + line.replace("\\", "\\e").replace("-", "\\-") if line else "")
    return out + [".fi", ".RE"]


def bullets(items):
    out = []
    for item in items:
        out += [".IP \\(bu 2", esc(item)]
    return out


def definitions(rows):
    """A two-column table as a list: the first cell the term, the second what it means."""
    out = []
    for term, meaning in rows:
        out += [".TP", esc(term), esc(meaning)]
    return out


def tbl(rows, widths=None):
    """A table for tbl(1): the header bold, long cells as text blocks. The page must
    begin with the '\\" t line for man(1) to run tbl."""
    ncol = len(rows[0])
    spec = " ".join("l" for _ in range(ncol))
    body = " ".join(("lx" if widths is None or widths[i] else "l") for i in range(ncol))
    out = [".TS", "allbox tab(|);", spec.replace("l", "lb"), body + "."]
    out.append("|".join(esc(c) for c in rows[0]))
    for row in rows[1:]:
        out.append("|".join("T{\n%s\nT}" % esc(c) if len(c) > 20 else esc(c) for c in row))
    return out + [".TE"]


def render(blocks, table=None):
    """roff for the blocks; `table(block)` may return the lines of a table it renders
    itself, or None for the default (a definition list for two columns, else tbl)."""
    out = []
    for block in blocks:
        if block.kind == "section":
            out.append(".SH " + block.text.upper())
        elif block.kind == "subsection":
            out.append(".SS " + esc(block.text))
        elif block.kind == "para":
            if out and not out[-1].startswith((".SH", ".SS")):
                out.append(".PP")
            out.append(esc(block.text))
        elif block.kind == "code":
            out += code(block.text)
        elif block.kind == "bullets":
            out += bullets(block.text)
        elif block.kind == "roff":   # lines made by the caller
            out += block.text
        elif block.kind == "table":
            lines = table(block) if table else None
            if lines is None:
                lines = definitions(block.rows[1:]) if len(block.rows[0]) == 2 else tbl(block.rows)
            out += lines
    return out

#!/usr/bin/env python3
"""Doxygen INPUT_FILTER for goro's public headers (docs/Doxyfile.in).

goro's headers document each declaration with the plain `//` comment just
above it (docs/../design style: "documented at the declaration"), which
Doxygen would not read. This filter hands Doxygen the same header with those
comments as documentation, changing nothing else (line numbers included):

  - the comment that opens the file becomes the file's documentation
    (@file), kept as written (@verbatim): it holds examples and tables;
  - a comment block at namespace or class scope becomes `///` documentation
    of what follows it, up to the next blank line, comment or access label:
    the declarations there form a member group, which shares the comment
    (DISTRIBUTE_GROUP_DOC), as the header means it; a trailing `// ...`
    after a member becomes `///<`;
    Doxygen's special characters in them are escaped outside `code spans`;
  - comments inside function bodies, `// namespace x` closers, and comments
    on specializations in namespace std stay plain comments; the contents of
    a `namespace std` block are left out (blank lines).
Usage: doxygen_filter.py FILE (writes the filtered header to stdout).
"""
import re
import sys

SPECIAL = re.compile(r"([\\@<>&#%$])")


def escape(text):
    # Escapes Doxygen's special characters outside `code spans`.
    parts = text.split("`")
    for i in range(0, len(parts), 2):
        parts[i] = SPECIAL.sub(r"\\\1", parts[i])
    return "`".join(parts)


def code_part(line):
    # The line without string/char literals and its // comment, for brace counting.
    out, i, q = [], 0, None
    while i < len(line):
        c = line[i]
        if q:
            if c == "\\":
                i += 2
                continue
            if c == q:
                q = None
        elif c in "\"'":
            q = c
        elif line.startswith("//", i):
            break
        else:
            out.append(c)
        i += 1
    return "".join(out)


def documents_std(lines, i):
    # Whether the comment at line i is about a specialization in namespace
    # std (std::hash, ranges::disable_sized_range): not goro's API.
    while i < len(lines) and lines[i].lstrip().startswith("//"):
        i += 1
    while i < len(lines) and lines[i].lstrip().startswith("template"):
        i += 1
    return i < len(lines) and re.match(r"^\s*(namespace\s+std\b|(struct|class)\s+std::)", lines[i])


def main(path):
    lines = open(path, encoding="utf-8").read().split("\n")
    out = []
    # File comment: the leading run of // lines.
    n = 0
    while n < len(lines) and lines[n].startswith("//"):
        n += 1
    if n:  # as many lines as the comment had
        body = [l[2:] for l in lines[:n]]
        body[0] = "/** @verbatim" + body[0]
        body[-1] += " @endverbatim @file */"
        out.extend(body)
    stack = []  # one of "ns", "type", "code" per open brace
    pending = ""  # code since the last ; { or } (what a { belongs to)
    group = None  # depth of the open member group, if any
    prev_comment = False
    std_depth = None  # inside `namespace std... {` opened at this depth
    for index in range(n, len(lines)):
        line = lines[index]
        stripped = line.lstrip()
        if std_depth is None and re.match(r"^namespace\s+std\b[\w:]*\s*\{", stripped):
            std_depth = len(stack)
        if std_depth is not None:
            # Specializations in namespace std: not goro's API, hidden from
            # Doxygen (which misreads variable template specializations).
            for c in code_part(line):
                if c == "{":
                    stack.append("ns")
                elif c == "}" and stack:
                    stack.pop()
            out.append("")
            if len(stack) == std_depth:
                std_depth = None
            continue
        in_code = "code" in stack
        depth = len(stack)
        prefix = ""
        if group is not None and not in_code and depth == group:
            # A comment block, a blank line or an access label ends the group.
            if (stripped.startswith("//") and not prev_comment) or not stripped or re.match(
                    r"^(public|private|protected)\s*:", stripped) or stripped.startswith("}"):
                prefix, group = "/**@}*/ ", None
        if group is not None and depth < group:
            prefix, group = "/**@}*/ ", None
        if stripped.startswith("//") and not in_code:
            indent = line[: len(line) - len(stripped)]
            body = stripped[2:]
            if (re.match(r"^\s*(namespace\b|NOLINT)", body) or body.startswith("/")
                    or documents_std(lines, index)):
                out.append(line)
                prev_comment = False
                continue
            if not prev_comment:  # a comment block opens a member group
                prefix += "/**@{*/ "
                group = depth
            out.append(indent + prefix + "///" + escape(body))
            prev_comment = True
            continue
        prev_comment = False
        code = code_part(line)
        m = re.search(r";\s*//\s?(.*)$", line)
        if m and not in_code and not stripped.startswith("#"):
            line = line[: m.start()] + "; ///< " + escape(m.group(1))
        if prefix:
            indent = line[: len(line) - len(stripped)]
            line = indent + prefix + stripped
        out.append(line)
        for c in code:
            if c == "{":
                head = pending.strip()
                if re.search(r"\bnamespace\b[\w:\s]*$", head) or re.search(r'extern\s+"C"\s*$', head):
                    stack.append("ns")
                elif ((t := re.search(r".*\b(?:class|struct|union|enum)\b([^()]*)$", head))
                      and "=" not in t.group(1)):
                    # (after the last class-key: a template's defaults may hold '=')
                    stack.append("type")
                else:
                    stack.append("code")
                pending = ""
            elif c == "}":
                if stack:
                    stack.pop()
                if group is not None and len(stack) < group:
                    # The scope closed with the group open: close it after.
                    out[-1] += " /**@}*/"
                    group = None
                pending = ""
            elif c == ";":
                pending = ""
            else:
                pending += c
        pending += " "
    if group is not None:
        out.append("/**@}*/")
    sys.stdout.write("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1])

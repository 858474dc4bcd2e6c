#!/usr/bin/env python3
"""Fail on a cycle in the file-level `use` graph of src/.

Every `.rs` file under src/ is a node. A file depends on another when it names an item of it:
a `use` (re-exports included) or a path in code (`crate::a::b::X`, `super::x::Y`,
`self::x::Z`, `$crate::...` in macros, `child::X` for a module the file declares). The path
goes to the file of its longest module prefix (`crate::reconcile::run::Run` ->
src/reconcile/run.rs; `crate::reconcile::Mode` -> src/reconcile/mod.rs). A `mod x;`
declaration is not a dependency: a file and the parent `mod.rs` declaring it are no cycle by
themselves, but a child that uses its parent (`use super::X`) while the parent uses the child
(a `pub use child::Y` re-export counts) is one, and so are siblings that use each other.

Usage: module_cycles.py [SRC_DIR]   (default: src next to this repository's tests/)
Prints every cycle (strongly connected component) with the paths that make its edges, and
exits 1 when there is one.
"""

import os
import re
import sys
from collections import defaultdict

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def strip_code(text):
    """Remove comments, strings and char literals (keeping newlines), so that paths in
    docs and messages are not taken for dependencies."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    out.append("\n" if text[i] == "\n" else "")
                    i += 1
        elif c == "r" and re.match(r'r#*"', text[i:]) and (i == 0 or not re.match(r"\w", text[i - 1])):
            m = re.match(r'r(#*)"', text[i:])
            end = text.find('"' + m.group(1), i + len(m.group(0)))
            end = n if end < 0 else end + 1 + len(m.group(1))
            out.append("\n" * text.count("\n", i, end) + '""')
            i = end
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append("\n" * text.count("\n", i, j) + '""')
            i = j + 1
        elif c == "'":
            m = re.match(r"'(\\.[^']*|[^\\'])'", text[i:])
            if m:
                out.append("' '")
                i += len(m.group(0))
            else:  # a lifetime
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def module_of(rel):
    """Module path (tuple) of a file relative to src/."""
    parts = rel[:-3].split(os.sep)
    if parts in (["lib"], ["main"]):
        return ()
    if parts[-1] == "mod":
        parts = parts[:-1]
    return tuple(parts)


def expand_use_tree(tree):
    """`a::{b, c::{d, self}}` -> [a::b, a::c::d, a::c]; aliases dropped."""
    tree = re.sub(r"\s+as\s+" + IDENT, "", tree)
    tree = re.sub(r"\s+", "", tree)

    def expand(prefix, t):
        depth, brace = 0, -1
        for k, ch in enumerate(t):
            if ch == "{" and depth == 0:
                brace = k
                break
        if brace < 0:
            path = prefix + [p for p in t.split("::") if p]
            if path and path[-1] == "self":
                path = path[:-1]
            return [path] if path else []
        head = [p for p in t[:brace].split("::") if p]
        body = t[brace + 1 : t.rindex("}")]
        items, depth, start = [], 0, 0
        for k, ch in enumerate(body):
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            elif ch == "," and depth == 0:
                items.append(body[start:k])
                start = k + 1
        items.append(body[start:])
        result = []
        for item in items:
            if item:
                result.extend(expand(prefix + head, item))
        return result

    return expand([], tree)


class Graph:
    def __init__(self, src):
        self.src = src
        self.files = {}  # module path -> file (relative)
        for root, _, names in os.walk(src):
            for name in names:
                if name.endswith(".rs"):
                    rel = os.path.relpath(os.path.join(root, name), src)
                    if rel == "main.rs":
                        continue  # the binary: a crate of its own
                    self.files[module_of(rel)] = rel
        self.edges = defaultdict(lambda: defaultdict(set))  # file -> file -> {paths}

    def resolve(self, segments):
        """The file of the longest module prefix of an absolute path."""
        for k in range(len(segments), -1, -1):
            f = self.files.get(tuple(segments[:k]))
            if f is not None:
                return f
        return None

    def absolute(self, module, children, path):
        """An absolute module path for `path` written in `module`, or None (external)."""
        if not path:
            return None
        first = path[0]
        if first in ("crate", "$crate"):
            return list(path[1:])
        if first == "self":
            return list(module) + list(path[1:])
        if first == "super":
            base = list(module)
            rest = list(path)
            while rest and rest[0] == "super":
                base = base[:-1]
                rest = rest[1:]
            return base + rest
        if first in children:
            return list(module) + list(path)
        return None

    def add(self, rel, module, children, path, text):
        target_path = self.absolute(module, children, path)
        if target_path is None:
            return
        target = self.resolve(target_path)
        if target is not None and target != rel:
            self.edges[rel][target].add(text)

    def scan(self, rel):
        text = strip_code(open(os.path.join(self.src, rel), encoding="utf-8").read())
        base = module_of(rel)
        # Modules this file declares (`mod x;`) and inline ones (`mod x {`), by position.
        declared = set(re.findall(r"\bmod\s+(" + IDENT + r")\s*;", text))
        inline = []  # (start, end, name)
        for m in re.finditer(r"\bmod\s+(" + IDENT + r")\s*\{", text):
            depth, k = 0, m.end() - 1
            while k < len(text):
                if text[k] == "{":
                    depth += 1
                elif text[k] == "}":
                    depth -= 1
                    if depth == 0:
                        break
                k += 1
            inline.append((m.start(), k, m.group(1)))

        def module_at(pos):
            mod = list(base)
            for start, end, name in sorted(inline):
                if start < pos <= end:
                    mod.append(name)
            return tuple(mod)

        children = declared | {name for _, _, name in inline}
        for m in re.finditer(r"\buse\s+([^;]+);", text):
            module = module_at(m.start())
            for path in expand_use_tree(m.group(1)):
                self.add(rel, module, children, path, "use " + "::".join(path))
        path_re = r"(?<![\w:])((?:\$crate|crate|self|super)(?:::" + IDENT + r")+)"
        for m in re.finditer(path_re, text):
            segments = m.group(1).split("::")
            self.add(rel, module_at(m.start()), children, segments, m.group(1))
        for child in children:
            for m in re.finditer(r"(?<![\w:$])(" + child + r"(?:::" + IDENT + r")+)", text):
                if re.search(r"\bmod\s+$", text[max(0, m.start() - 10) : m.start()]):
                    continue
                self.add(rel, module_at(m.start()), children, m.group(1).split("::"), m.group(1))

    def build(self):
        for rel in sorted(self.files.values()):
            self.scan(rel)
        return self

    def cycles(self):
        """Strongly connected components of more than one file (Tarjan)."""
        index, low, on, stack, out = {}, {}, set(), [], []
        counter = [0]
        nodes = sorted(self.files.values())

        def visit(v):
            index[v] = low[v] = counter[0]
            counter[0] += 1
            stack.append(v)
            on.add(v)
            for w in sorted(self.edges[v]):
                if w not in index:
                    visit(w)
                    low[v] = min(low[v], low[w])
                elif w in on:
                    low[v] = min(low[v], index[w])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))

        sys.setrecursionlimit(10000)
        for v in nodes:
            if v not in index:
                visit(v)
        return sorted(out)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "..", "src")
    graph = Graph(os.path.normpath(src)).build()
    cycles = graph.cycles()
    if not cycles:
        print(f"module cycles: none ({len(graph.files)} files)")
        return 0
    print(f"module cycles: {len(cycles)} cycle(s) between files of src/:")
    for comp in cycles:
        members = set(comp)
        print("\n  " + " <-> ".join(comp))
        for a in comp:
            for b in sorted(graph.edges[a]):
                if b in members:
                    why = ", ".join(sorted(graph.edges[a][b])[:3])
                    print(f"    {a} -> {b}  ({why})")
    return 1


if __name__ == "__main__":
    sys.exit(main())

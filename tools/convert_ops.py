#!/usr/bin/env python3
"""One-off conversion of the old operation tables (`views!`, `ops!`, `steps!`, with
`= |core| expr`, `example { }` and `aio { }`) to the new `ops!` syntax (issue #22).

    python3 tools/convert_ops.py pottery/src/collections/dict.rs [...]

Per file: the `views!` blocks fold into the header of the first `ops!` table naming their
view, the `steps!` entries join that table (marked `#[steps(r)]`), each entry becomes a `fn`
with a real signature and where clause whose body calls the renamed plan builder
(`core.insert(..)` -> `self.core.insert_plan(..)`), and each example loses the hidden set-up
and teardown lines the macro now writes (`#[example]`), or keeps its own (`#[example(bare)]`:
only the server and the final `Ok` are written; `#[example(raw)]`: nothing).

Plan builders (the `Core` methods returning an `Op`) are renamed `*_plan` in the same file
(and in `extra` files given with `--core FILE`), and get a doc line naming their request.
"""

import re
import sys

# The standard example of each table: (variable, type, constructor, arguments, teardown).
EXAMPLES = {
    "collections/dict.rs": [("d", "This<String, i64>", "random", "&redis", "clear")],
    "collections/set.rs": [("s", "This<u32>", "random", "&redis", "clear")],
    "collections/list.rs": [
        ("x", "This<u8>", "random", "&redis", "clear"),
        ("l", "This<u8>", "random", "&redis", "clear"),
        ("d", "This<u8>", "random", "&redis", "clear"),
    ],
    "collections/counter.rs": [("c", "This<char>", "random", "&redis", "clear")],
    "cache/redis_cache/mod.rs": [("cache", "This", "random", "&redis", "clear")],
    "primitives/queue.rs": [None],
    "primitives/ratelimit.rs": [None],
    "probabilistic/bloom.rs": [("f", "This<u32>", "random", "&redis, 100, 0.01", "clear")],
    "probabilistic/hyperloglog.rs": [("h", "This<u32>", "random", "&redis", "clear")],
}

REDIS = "# let redis = pottery::testing::doctest_redis();"
TOKIO = "# tokio::runtime::Runtime::new().unwrap().block_on(async {"
OK = "# Ok::<(), pottery::Error>(())"
OK_AIO = "# Ok::<(), pottery::Error>(()) }).unwrap();"

stats = {"full": 0, "bare": 0, "raw": 0}


def norm(s):
    return re.sub(r"\s+", "", s)


def blocks(lines):
    """(kind, start, end) of each `crate::shell::X! {` .. `}` block (end inclusive)."""
    out = []
    i = 0
    while i < len(lines):
        m = re.match(r"^crate::shell::(views|ops|steps)(?:_v1)?! \{\s*$", lines[i])
        if m:
            j = i + 1
            while lines[j].rstrip() != "}":
                j += 1
            out.append((m.group(1), i, j))
            i = j
        i += 1
    return out


def split_top(s, sep=","):
    """Split at top-level separators (outside <>, (), [])."""
    depth, cur, out = 0, "", []
    for ch in s:
        if ch in "<([{":
            depth += 1
        elif ch in ">)]}":
            depth -= 1
        if ch == sep and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


def parse_views(body):
    docs = [l for l in body if l.strip().startswith("///")]
    decl = " ".join(l.strip() for l in body if not l.strip().startswith("///"))
    m = re.match(r"(\w+)<([^>]*)> on (.+?), for \[(\w+), (aio::\w+)\]\s*where \[(.*)\];", decl)
    assert m, decl
    return {"view": m.group(1), "core": m.group(3), "blocking": m.group(4),
            "aio": m.group(5), "docs": docs}


def parse_header(text):
    # ops:   Core<K, V>, [K, V] where [..] batch where [..] for [V, B, aio::B], [..];
    # steps: Core<T>, [T] where [..] for [B, aio::B];
    m = re.match(r"(.+?), \[([^\]]*)\] where \[([^\]]*)\]\s*(?:batch where \[([^\]]*)\]\s*)?for (.*);$",
                 text)
    assert m, text
    targets = re.findall(r"\[([^\]]*)\]", m.group(5))
    return {"core": m.group(1), "gens": [g.strip() for g in m.group(2).split(",") if g.strip()],
            "bounds": m.group(3), "targets": [[t.strip() for t in tg.split(",")] for tg in targets]}


def parse_entries(body):
    """The entries after the header: docs, signature text, examples."""
    entries = []
    i = 0
    n = len(body)
    while i < n:
        if not body[i].strip():
            i += 1
            continue
        docs = []
        while body[i].strip().startswith("///") or body[i].strip().startswith("#["):
            assert body[i].strip().startswith("///"), "non-doc attribute: " + body[i]
            docs.append(body[i].strip())
            i += 1
        assert body[i].strip().startswith("fn "), body[i]
        sig = []
        while body[i].strip() != "example {":
            sig.append(body[i])
            i += 1
        i += 1
        ex = []
        while not re.match(r"^\s*\}\s*;?\s*$", body[i]):
            ex.append(body[i].strip())
            i += 1
        closed = body[i].strip() == "};"
        i += 1
        aio = None
        if not closed:
            assert body[i].strip() == "aio {", body[i]
            i += 1
            aio = []
            while not re.match(r"^\s*\};\s*$", body[i]):
                aio.append(body[i].strip())
                i += 1
            i += 1
        entries.append({"docs": docs, "sig": sig, "ex": ex, "aio": aio})
    return entries


def doc_text(line):
    assert line.startswith("///"), line
    return line[3:]


def let_re(spec, aio):
    ex, ty, ctor, args, _ = spec
    gens = ""
    m = re.match(r"This(<.*>)?$", ty)
    if m and m.group(1):
        gens = re.escape(norm(m.group(1)))
    shell = r"(?:This|pottery::(?:aio::)?\w+)"
    annot = r"(?::" + shell + gens + r")" + ("?" if not gens else "")
    call = shell + r"::" + re.escape(ctor) + r"\(" + re.escape(norm(args)) + r"\)" + (
        r"\.await" if aio else "") + r"\?;"
    return re.compile(r"^#let" + re.escape(ex) + annot + "=" + call + "$")


def classify(ex_lines, spec, aio):
    """(mode, body lines) of an example, fences removed."""
    assert ex_lines[0].strip() == "/// ```" and ex_lines[-1].strip() == "/// ```", ex_lines
    text = [doc_text(l) for l in ex_lines[1:-1]]
    s = [t.strip() for t in text]
    pre = [REDIS, TOKIO] if aio else [REDIS]
    ok = OK_AIO if aio else OK
    if s[:len(pre)] == pre and s and s[-1] == ok:
        k = len(pre)
        if spec is not None and len(s) >= k + 3:
            ex, _, _, _, td = spec
            tear = "# %s.%s()%s?;" % (ex, td, ".await" if aio else "")
            if let_re(spec, aio).match(norm(s[k])) and s[-2] == tear:
                stats["full"] += 1
                return "", text[k + 1:-2]
        stats["bare"] += 1
        return "bare", text[k:-1]
    stats["raw"] += 1
    return "raw", text


def convert_body(expr_lines, cvar, rvar, steps, plans):
    """The new body lines (unindented) from the old closure expression."""
    text = "\n".join(expr_lines).strip()
    assert text.endswith(","), text
    text = text[:-1].rstrip()
    # `core.x(` -> `self.core.x(`; a bare `core` (a value) -> `&self.core`
    text = re.sub(r"(?<![\w.])%s\b(?=\s*\.)" % cvar, "self.core", text)
    text = re.sub(r"(?<![\w.&])%s\b(?!\s*\.)" % cvar, "&self.core", text)
    text = re.sub(r"(?<![\w.])&%s\b(?!\s*\.)" % cvar, "&self.core", text)
    text = rename_calls(text, plans)
    m = None
    if steps:
        m = re.match(r"^async move \{(.*)\}$", text, re.S)
        text = m.group(1) if m else text + "\n.await"
    lines = text.split("\n")
    # re-indent: first line is flush, the others keep their indent relative to the least
    rest = [l for l in lines[1:] if l.strip()]
    ind = min((len(l) - len(l.lstrip()) for l in rest), default=0)
    out = [lines[0].strip()] + [("    " if lines[0].strip() else "") + l[ind:] if l.strip() else ""
                                for l in lines[1:]]
    if steps and m:
        # the inner of `async move {` .. `}`: drop the empty first/last lines
        while out and not out[0].strip():
            out.pop(0)
        while out and not out[-1].strip():
            out.pop()
    if steps and not m:
        # `expr\n.await` -> `expr.await` when the expression is one line
        if len(out) == 2:
            out = [out[0] + ".await"]
        else:
            out[-1] = out[-1].strip()
            out = out[:-1] + ["    " + out[-1]]
    text = "\n".join(out)
    mv = re.search(r"move \|[^|]*\|", text)
    if mv and "&self.core.key" in text[mv.end():] and not steps:
        # a decoder closure outlives `&self` in the batch view: it borrows the key only
        text = "let key = &self.core.key;\n" + text[:mv.end()] + text[mv.end():].replace(
            "&self.core.key", "key")
    return text.split("\n")


def rename_calls(text, plans):
    for p in plans:
        text = re.sub(r"(\bcore\s*\.)%s(?=\s*(?:::<[^>]*>)?\()" % p, r"\g<1>" + p + "_plan", text)
    return text


def convert_entry(e, spec, plans, steps, ind):
    sig = "\n".join(e["sig"])
    m = re.match(r"\s*fn (\w+)(<[^(]*>)?\((.*?)\)\s*->\s*(.*?)(?:\s+where \[(.*?)\])?\s*=\s*\|(\w+)(?:,\s*(\w+))?\|(.*)$",
                 sig, re.S)
    assert m, sig
    name, gen, args, out, where, cvar, rvar, expr = m.groups()
    args = " ".join(args.split())
    args = args.rstrip(", ")
    out = " ".join(out.split())
    expr_lines = expr.split("\n")
    body = convert_body(expr_lines, cvar, rvar, steps, plans)
    res = []
    P = " " * ind
    res += [P + d for d in e["docs"]]
    mode, lines = classify(e["ex"], spec, False)
    res.append(P + ("#[example]" if not mode else "#[example(%s)]" % mode))
    res += [(P + "///" + t).rstrip() for t in lines]
    if e["aio"] is not None:
        mode, lines = classify(e["aio"], spec, True)
        res.append(P + ("#[example(async)]" if not mode else "#[example(async, %s)]" % mode))
        res += [(P + "///" + t).rstrip() for t in lines]
    if steps:
        res.append(P + "#[steps(%s)]" % rvar)
    head = "fn %s%s(&self%s) -> %s" % (name, gen or "", ", " + args if args else "", out)
    if where:
        res.append(P + head)
        res.append(P + "where")
        for pred in split_top(where):
            res.append(P + "    " + pred + ",")
        res.append(P + "{")
    else:
        if len(P + head + " {") > 100:
            # long argument lists: one per line, as rustfmt writes them
            res.append(P + "fn %s%s(" % (name, gen or ""))
            res.append(P + "    &self,")
            for a in split_top(args):
                res.append(P + "    " + a + ",")
            res.append(P + ") -> %s {" % out)
        else:
            res.append(P + head + " {")
    res += [(P + "    " + l).rstrip() for l in body]
    res.append(P + "}")
    return res


def plan_builders(lines):
    """Names of the `Core` methods that return a plan, and their def line numbers."""
    names = []
    in_core = False
    for i, l in enumerate(lines):
        if re.match(r"^impl(<.*>)? Core(<.*>)?\s*$", l) or re.match(r"^impl(<.*>)? Core(<.*>)? \{", l):
            in_core = True
        elif in_core and l.rstrip() == "}":
            in_core = False
        elif in_core:
            m = re.match(r"^    (?:pub(?:\([\w:]+\))? )?fn (\w+)\b", l)
            if m:
                sig = l
                j = i
                while not sig.rstrip().endswith("{") and not sig.rstrip().endswith(";"):
                    j += 1
                    sig += lines[j]
                ret = sig.split("->")[-1] if "->" in sig else ""
                if re.search(r"\bOp<", ret) and not m.group(1).endswith("_plan") and "op: Op<" not in sig:
                    names.append(m.group(1))
    return names


def rename_core(lines, plans, scripts):
    """Renames the plan builders (defs and calls) and gives each a doc line naming its
    request."""
    out = []
    in_core = False
    i = 0
    while i < len(lines):
        l = lines[i]
        if re.match(r"^impl(<.*>)? Core(<.*>)?( \{)?\s*$", l):
            in_core = True
        elif in_core and l.rstrip() == "}":
            in_core = False
        m = re.match(r"^(    (?:pub(?:\([\w:]+\))? )?fn )(\w+)\b(.*)$", l) if in_core else None
        if m and m.group(2) in plans:
            # find the body to describe the request
            j = i
            depth = 0
            started = False
            while True:
                depth += lines[j].count("{") - lines[j].count("}")
                if "{" in lines[j]:
                    started = True
                if started and depth <= 0:
                    break
                j += 1
            body = "\n".join(lines[i:j + 1])
            used = [s for s in scripts if re.search(r"\b%s\b" % s, body)]
            cmds = re.findall(r'cmd\("([A-Z]+)"\)', body)
            cmds = list(dict.fromkeys(cmds))
            doc = None
            if used:
                doc = "    /// The plan: " + ", ".join("`scripts/%s` (`%s`)" % (scripts[s], s) for s in used) + (
                    "; " + ", ".join("`%s`" % c for c in cmds) if cmds else "") + "."
            elif cmds:
                doc = "    /// The plan: " + ", ".join("`%s`" % c for c in cmds) + "."
            if doc and not (out and "The plan:" in out[-1]):
                out.append(doc)
            l = m.group(1) + m.group(2) + "_plan" + m.group(3)
        out.append(l)
        i += 1
    text = "\n".join(out)
    for p in plans:
        text = re.sub(r"(?<=\bself\.)%s(?=\s*(?:::<[^>]*>)?\()" % p, p + "_plan", text) if False else text
    return text.split("\n")


def rename_inside_core_calls(lines, plans):
    """`self.x(` inside the Core impl and `core.x(` anywhere: the renamed builders."""
    out = []
    in_core = False
    for l in lines:
        if re.match(r"^impl(<.*>)? Core(<.*>)?( \{)?\s*$", l):
            in_core = True
        elif in_core and l.rstrip() == "}":
            in_core = False
        for p in plans:
            if in_core:
                l = re.sub(r"(?<=\bself\.)%s(?=\s*(?:::<[^>]*>)?\()" % p, p + "_plan", l)
            if not l.strip().startswith("//"):
                l = re.sub(r"(?<=core\.)%s(?=\s*(?:::<[^>]*>)?\()" % p, p + "_plan", l)
        out.append(l)
    return out


def convert(path, rel, core_paths):
    lines = open(path).read().split("\n")
    specs = EXAMPLES[rel]
    core_files = {}
    plans = []
    scripts = {}
    for cp in [path] + core_paths:
        cl = open(cp).read().split("\n") if cp != path else lines
        core_files[cp] = cl
        plans += plan_builders(cl)
        for l in cl:
            m = re.match(r'^script!\((\w+), "([^"]+)"', l)
            if m:
                scripts[m.group(1)] = m.group(2)
    bl = blocks(lines)
    views = {}
    for kind, s, e in bl:
        if kind == "views":
            v = parse_views(lines[s + 1:e])
            views[v["view"]] = v
    # steps entries join the first ops table with the same shells
    steps_entries = []
    for kind, s, e in bl:
        if kind == "steps":
            body = lines[s + 1:e]
            k = 0
            while not body[k].rstrip().endswith(";"):
                k += 1
            hdr = parse_header(" ".join(x.strip() for x in body[:k + 1]))
            steps_entries.append((hdr, parse_entries(body[k + 1:])))
    replacement = {}
    declared = set()
    table_no = 0
    for kind, s, e in bl:
        if kind != "ops":
            replacement[s] = []
            continue
        body = lines[s + 1:e]
        k = 0
        while not body[k].rstrip().endswith(";"):
            k += 1
        hdr = parse_header(" ".join(x.strip() for x in body[:k + 1]))
        entries = parse_entries(body[k + 1:])
        spec = specs[table_no] if table_no < len(specs) else specs[-1]
        table_no += 1
        gens = hdr["gens"]
        preds = {}
        for pred in split_top(hdr["bounds"]):
            g, b = pred.split(":", 1)
            preds[g.strip()] = b.strip()
        generics = ", ".join("%s: %s" % (g, preds[g]) if g in preds else g for g in gens)
        ga = "<%s>" % ", ".join(gens) if gens else ""
        out = ["crate::shell::ops! {"]
        out += [
            "    // How to find an operation: the method's docs (`%s::%s`) -> its `fn` entry in this"
            % (hdr["targets"][0][1], first_name(entries)),
            "    // table (same name; the body builds the plan) -> the plan builder it calls, `Core::*_plan`",
            "    // (above), whose doc line names the request: the command, or the `scripts/*.lua` it runs.",
        ]
        head = "    impl%s" % ("<%s>" % generics if gens else "")
        tparts = []
        for (view, blocking, aio) in hdr["targets"]:
            vdocs = []
            decl = view
            if view in views and view not in declared:
                declared.add(view)
                vdocs = ["        " + d.strip() for d in views[view]["docs"]]
                decl = "%s(%s)" % (view, views[view]["core"])
            tparts.append((vdocs, "%s%s and %s%s, batch %s" % (blocking, ga, aio, ga, decl)))
        if len(tparts) == 1 and not tparts[0][0]:
            out.append(head + " " + tparts[0][1] + " {")
        else:
            out.append(head)
            for n_, (vdocs, t) in enumerate(tparts):
                out += vdocs
                out.append("        " + t + (";" if n_ + 1 < len(tparts) else ""))
            out.append("    {")
        if spec is not None:
            ex, ty, ctor, args, td = spec
            out.append("        example %s: %s = %s(%s), %s;" % (ex, ty, ctor, args, td))
        for en in entries:
            out.append("")
            out += convert_entry(en, spec, plans, False, 8)
        tshells = [t[1:] for t in hdr["targets"]]
        for shdr, sentries in steps_entries:
            if [t for t in shdr["targets"]] == tshells:
                for en in sentries:
                    out.append("")
                    out += convert_entry(en, spec, plans, True, 8)
                shdr["targets"] = None
        out.append("    }")
        out.append("}")
        replacement[s] = out
    for shdr, _ in steps_entries:
        assert shdr["targets"] is None, "steps table without an ops table: %s" % shdr
    new = []
    i = 0
    starts = {s: e for _, s, e in bl}
    while i < len(lines):
        if i in starts:
            rep = replacement[i]
            new += rep
            i = starts[i] + 1
            if not rep and i < len(lines) and not lines[i].strip():
                i += 1  # a removed block: drop the blank line after it
            continue
        new.append(lines[i])
        i += 1
    new = rename_core(new, plans, scripts)
    new = rename_inside_core_calls(new, plans)
    open(path, "w").write("\n".join(new))
    for cp in core_paths:
        cl = rename_core(core_files[cp], plans, scripts)
        cl = rename_inside_core_calls(cl, plans)
        open(cp, "w").write("\n".join(cl))
    print(path, "plans renamed:", len(plans), stats, file=sys.stderr)


def first_name(entries):
    m = re.match(r"\s*fn (\w+)", entries[0]["sig"][0])
    return m.group(1)


if __name__ == "__main__":
    args = sys.argv[1:]
    core_paths = []
    if "--core" in args:
        k = args.index("--core")
        core_paths = [args[k + 1]]
        args = args[:k] + args[k + 2:]
    for p in args:
        rel = p.split("pottery/src/")[1]
        convert(p, rel, core_paths)

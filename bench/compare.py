#!/usr/bin/env python3
"""Side-by-side runner: goro, Go and Boost.Fiber on the workloads of
bench/workloads.tsv (bench/compare.sh builds the programs and calls this).

For each workload row and each procs count, it runs every implementation's
program N times, alternating run by run (goro, Go, Fiber; then Go, Fiber,
goro; ...), each run a fresh process doing the workload once:

    <program> <workload> <procs> <n> 1 [key=value ...]   -> RESULT <impl> <workload> <procs> <value>

and prints a Markdown table of medians with [min-max], flags cells whose
max/min > 1.5 (bimodal or noisy), the ratios goro/Go and goro/Fiber, and
draws an SVG bar chart of the ratios at procs=2 with gnuplot. With --doc it
writes the table and chart into the file between the compare-table markers.

--validate-table FILE only parses the table (exit 1 with the line on a
malformed row). --check (the ctest smoke test) fails unless every program
lists exactly the table's workloads and every run printed a sane value.
"""
import argparse
import datetime
import math
import os
import re
import json
import statistics
import subprocess
import sys

IMPL_LABELS = {"go": "Go", "goro": "goro", "fiber": "Boost.Fiber"}
DEFAULT_ORDER = ["goro", "go", "fiber"]
BEGIN, END = "<!-- compare-table:begin -->", "<!-- compare-table:end -->"
SPREAD_FLAG = 1.5


class TableError(Exception):
    pass


class Row:
    def __init__(self, name, unit, n, quick_n, params, description):
        self.name, self.unit, self.n, self.quick_n = name, unit, n, quick_n
        self.params, self.description = params, description

    def args(self):
        return [f"{k}={v}" for k, v in self.params]

    # Rows whose value may legitimately be 0 (CPU time of an idle runtime).
    def zero_ok(self):
        return "CPU" in self.unit


NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
INT_RE = re.compile(r"^[1-9][0-9]*$")
PARAM_RE = re.compile(r"^([a-z][a-z0-9_]*)=(-?[0-9]+)$")


def parse_table(path):
    """The rows of the workload table; TableError names the bad line."""
    rows, seen = [], set()
    with open(path, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.rstrip("\n")
            where = f"{path}:{lineno}"
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            fields = line.split("\t")
            if len(fields) != 6:
                raise TableError(f"{where}: {len(fields)} tab-separated fields, want 6 "
                                 "(name, unit, n, quick_n, params, description)")
            name, unit, n, quick_n, params, desc = fields
            if not NAME_RE.match(name):
                raise TableError(f"{where}: bad name {name!r} (want [a-z][a-z0-9_]*)")
            if name in seen:
                raise TableError(f"{where}: workload {name} listed twice")
            if not unit.strip() or unit != unit.strip():
                raise TableError(f"{where}: {name}: empty unit or unit with surrounding blanks")
            for label, v in (("n", n), ("quick_n", quick_n)):
                if not INT_RE.match(v):
                    raise TableError(f"{where}: {name}: {label} {v!r} is not a positive integer")
            kv = []
            if params != "-":
                for item in params.split(","):
                    m = PARAM_RE.match(item)
                    if not m:
                        raise TableError(f"{where}: {name}: bad parameter {item!r} "
                                         "(want key=integer, comma-separated, or -)")
                    if any(k == m.group(1) for k, _ in kv):
                        raise TableError(f"{where}: {name}: parameter {m.group(1)} given twice")
                    kv.append((m.group(1), int(m.group(2))))
            if not desc.strip():
                raise TableError(f"{where}: {name}: empty description")
            seen.add(name)
            rows.append(Row(name, unit, int(n), int(quick_n), kv, desc.strip()))
    if not rows:
        raise TableError(f"{path}: no workloads")
    return rows


RESULT_RE = re.compile(r"^RESULT (\S+) (\S+) (\d+) (\S+)(?: # (.*))?$")


class Run:
    def __init__(self, status, value=None, note=""):
        self.status, self.value, self.note = status, value, note  # ok | n/a | fail | timeout


def run_one(binary, impl, row, procs, n, timeout):
    cmd = [binary, row.name, str(procs), str(n), "1", *row.args()]
    env = dict(os.environ, GOMAXPROCS=str(procs), GORO_MAXPROCS=str(procs))
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return Run("timeout", note=f"no result after {timeout} s")
    results = [RESULT_RE.match(l) for l in p.stdout.splitlines()]
    results = [m for m in results if m]
    err = (p.stderr.strip().splitlines() or [""])[-1]
    if p.returncode != 0 or len(results) != 1:
        return Run("fail", note=f"exit {p.returncode}, {len(results)} result lines; {err}")
    m = results[0]
    if (m.group(1), m.group(2), m.group(3)) != (impl, row.name, str(procs)):
        return Run("fail", note=f"result line for the wrong run: {m.group(0)}")
    if m.group(4) == "n/a":
        return Run("n/a", note=m.group(5) or "")
    try:
        v = float(m.group(4))
    except ValueError:
        return Run("fail", note=f"value {m.group(4)!r} is not a number")
    if not math.isfinite(v) or v < 0 or (v == 0 and not row.zero_ok()):
        return Run("fail", note=f"value {v} is not a sane positive number")
    return Run("ok", v)


def program_output(binary, flag):
    try:
        return subprocess.run([binary, flag], capture_output=True, text=True,
                              timeout=60).stdout.strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"({e})"


def fmt(v):
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3g}"


class Cell:
    def __init__(self, runs):
        self.runs = runs
        vals = [r.value for r in runs if r.status == "ok"]
        self.vals = vals
        self.median = statistics.median(vals) if vals else None
        self.na = next((r.note for r in runs if r.status == "n/a"), None)
        self.failed = [r for r in runs if r.status in ("fail", "timeout")]

    def spread(self):
        if len(self.vals) < 2 or min(self.vals) <= 0:
            return None
        return max(self.vals) / min(self.vals)

    def text(self):
        if self.median is None:
            if self.na is not None:
                return "n/a"
            if self.failed:
                return self.failed[0].status
            return "—"
        s = fmt(self.median)
        if len(self.vals) > 1:
            s += f" [{fmt(min(self.vals))}–{fmt(max(self.vals))}]"
            sp = self.spread()
            if sp is not None and sp > SPREAD_FLAG:
                s += " ⚠"
        if self.failed:
            s += f" ({len(self.failed)} of {len(self.runs)} failed)"
        return s


def ratio(a, b):
    if a is None or b is None or a.median is None or b.median is None or b.median <= 0:
        return None
    return a.median / b.median


def machine():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores"


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def gnuplot_chart(path, rows, cells, impls, procs, title_lines, datadir):
    """SVG bars of goro/Go and goro/Fiber per workload at `procs`."""
    data = os.path.join(datadir, "compare_chart.dat")
    series = [(o, f"goro / {IMPL_LABELS[o]}") for o in ("go", "fiber") if o in impls]
    ratios, missing = [], set()
    with open(data, "w") as f:
        for i, row in enumerate(rows):
            vals = []
            for other, _ in series:
                r = ratio(cells.get((row.name, procs, "goro")), cells.get((row.name, procs, other)))
                vals.append(r if r is not None and r > 0 else None)
                if vals[-1] is None:
                    missing.add(other)
                if vals[-1] is not None:
                    ratios.append(vals[-1])
            # Columns: index, name, one ratio per series, then one "n/a"
            # marker per series (1 where the ratio is missing).
            f.write(f"{i} {row.name} " + " ".join("?" if v is None else f"{v:.4g}" for v in vals)
                    + " " + " ".join("1" if v is None else "?" for v in vals) + "\n")
    lo = min([0.5] + [r / 1.6 for r in ratios])
    hi = max([2.0] + [r * 1.4 for r in ratios])
    width = 0.8 / max(1, len(series))
    colors = ["#3b75af", "#ef8636"]
    plots = []
    for k, (other, label) in enumerate(series):
        col = 3 + k
        off = -0.4 + width * k
        x = f"($1{off:+.3f}+{width / 2:.3f})"
        plots.append(
            f"'{data}' using {x}:(1):($1{off:+.3f}+0.02):($1{off + width:+.3f}-0.02):"
            f"(${col}<1?${col}:1):(${col}<1?1:${col}) with boxxyerror fs solid 0.85 noborder "
            f"lc rgb '{colors[k]}' title '{label}'")
        plots.append(
            f"'{data}' using {x}:(${col}>=1?${col}*1.12:${col}/1.12):(sprintf('%.2f',${col})) "
            f"with labels font ',9' notitle")
        if other in missing:
            plots.append(
                f"'{data}' using {x}:(${col + len(series)}*1.12):('n/a') with labels font ',9' "
                f"tc rgb '{colors[k]}' notitle")
    title = "\\n".join(t.replace('"', "'") for t in title_lines)
    script = f"""
set terminal svg size 1100,560 dynamic noenhanced font 'sans,12' background rgb 'white'
set output '{path}'
set datafile missing '?'
set title "{title}"
set logscale y 2
set yrange [{lo:.4g}:{hi:.4g}]
set xrange [-0.6:{len(rows) - 0.4}]
set ylabel 'goro time / other time (log scale; below 1: goro is faster)'
set xtics ({", ".join(f'"{r.name}" {i}' for i, r in enumerate(rows))}) nomirror font ',10'
set ytics nomirror
set grid ytics lc rgb '#dddddd'
set key top left box opaque
set arrow from -0.6,1 to {len(rows) - 0.4},1 nohead dt 2 lw 1.5 lc rgb 'black'
set bmargin 3
plot {", ".join(plots)}
"""
    subprocess.run(["gnuplot"], input=script, text=True, check=True)


def goro_commit():
    """HEAD's short hash, with "+local changes" when src/ or include/ differ."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, cwd=root).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src", "include"],
                               capture_output=True, text=True, cwd=root).stdout.strip()
    except OSError:
        return ""
    return head + (" + local changes to src/ or include/" if head and dirty else "")


def write_doc(path, block):
    text = open(path, encoding="utf-8").read()
    if BEGIN not in text or END not in text:
        sys.exit(f"{path}: markers {BEGIN} / {END} not found")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"{head}{BEGIN}\n{block}\n{END}{tail}")


def report(opts, rows, runs, meta):
    """Prints the table and note, draws the chart, writes compare.md (and
    the doc); returns the problems found in the runs."""
    impls, procs_list, reps = meta["impls"], meta["procs"], meta["reps"]
    cells = {key: Cell(rs) for key, rs in runs.items()}
    shown = [i for i in ["go", "goro", "fiber"] if i in impls]
    ratio_cols = [o for o in ("go", "fiber") if o in impls and "goro" in impls]
    header = ("| workload | unit | procs | " + " | ".join(IMPL_LABELS[i] for i in shown)
              + "".join(f" | goro/{'Fiber' if o == 'fiber' else IMPL_LABELS[o]}" for o in ratio_cols)
              + " |")
    lines = [header, "|---|---|---:|" + "---:|" * (len(shown) + len(ratio_cols))]
    flagged = 0
    for row in rows:
        for procs in procs_list:
            texts = [c.text() if c else "—" for c in (cells.get((row.name, procs, i)) for i in shown)]
            flagged += sum("⚠" in t for t in texts)
            for o in ratio_cols:
                r = ratio(cells.get((row.name, procs, "goro")), cells.get((row.name, procs, o)))
                texts.append("n/a" if r is None else f"{r:.2f}")
            lines.append(f"| {row.name} | {row.unit} | {procs} | " + " | ".join(texts) + " |")
    table = "\n".join(lines)

    versions = meta["versions"]
    vers = "; ".join(versions[i] for i in ("go", "goro", "fiber") if versions.get(i))
    date = meta["date"]
    commit = meta["commit"]
    note = (f"Measured {date} by `{meta['command']}`{' (QUICK sizes)' if meta['quick'] else ''}: "
            f"{reps} alternating run{'s' if reps != 1 else ''} per cell, each a fresh process; "
            f"machine {meta['machine']}; {vers}"
            f"{f'; goro at commit {commit}' if commit else ''}; "
            f"load average before {meta['load_before']}, after {meta['load_after']}. "
            f"Cells: median [min–max] over the runs; ⚠ marks a cell whose max/min > {SPREAD_FLAG} "
            f"({flagged} here). Ratios are of medians; every unit is lower-is-better, so a ratio "
            f"below 1 means goro is faster (or smaller).")
    chart_procs = 2 if 2 in procs_list else procs_list[0]
    chart = opts.chart or os.path.join(opts.out, "compare.svg")
    have_chart = False
    if "goro" in impls and len(impls) > 1:
        title = [f"goro / Go and goro / Boost.Fiber, procs={chart_procs}, medians of {reps} "
                 f"alternating runs", f"{meta['machine']}; {vers}", f"{meta['command']}, {date}"]
        try:
            os.makedirs(os.path.dirname(os.path.abspath(chart)), exist_ok=True)
            gnuplot_chart(chart, rows, cells, impls, chart_procs, title, opts.out)
            have_chart = True
        except (OSError, subprocess.CalledProcessError) as e:
            print(f"warning: no chart ({e}); install gnuplot-nox", file=sys.stderr)

    print()
    print(table)
    print()
    print(note)
    # The CPU-time rows (idle_cpu): printed on their own as well.
    for row in (r for r in rows if r.zero_ok()):
        got = [(p, cells.get((row.name, p, "goro"))) for p in procs_list]
        got = [(p, c) for p, c in got if c and c.median is not None]
        if got:
            print(f"{row.name} (goro, n={row.quick_n if meta['quick'] else row.n}): "
                  + ", ".join(f"procs={p}: {fmt(c.median)} {row.unit}" for p, c in got))
    block = table + "\n\n" + note + "\n"
    if have_chart:
        link = opts.chart_link or os.path.relpath(
            chart, os.path.dirname(os.path.abspath(opts.doc)) if opts.doc else opts.out)
        block = (f"![goro/Go and goro/Boost.Fiber at procs={chart_procs}]({link})\n\n"
                 f"*Chart: goro's median divided by Go's and by Boost.Fiber's for each workload at "
                 f"procs={chart_procs} (log scale; the dashed line is parity, bars below it are "
                 f"workloads where goro is faster). Machine: {meta['machine']}. Versions: {vers}. "
                 f"Command: `{meta['command']}`.*\n\n") + block
    with open(os.path.join(opts.out, "compare.md"), "w") as f:
        f.write(block)
    print(f"\nwritten to {os.path.join(opts.out, 'compare.md')}"
          + (f" and {chart}" if have_chart else ""))
    if opts.doc:
        write_doc(opts.doc, block)
        print(f"written to {opts.doc}")


def load_runs(directory):
    """The runs and meta data a previous invocation left in directory."""
    with open(os.path.join(directory, "meta.json")) as f:
        meta = json.load(f)
    runs = {}
    with open(os.path.join(directory, "results.tsv")) as f:
        next(f)
        for line in f:
            name, procs, _, impl, status, value, note = line.rstrip("\n").split("\t")
            runs.setdefault((name, int(procs), impl), []).append(
                Run(status, float(value) if value else None, note))
    return runs, meta


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--table",
                    default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "workloads.tsv"))
    ap.add_argument("--validate-table", action="store_true", help="only parse the table")
    ap.add_argument("--bin", action="append", default=[], metavar="IMPL=PATH",
                    help="program of an implementation (goro, go, fiber); repeatable")
    ap.add_argument("--reps", type=int, default=5, help="alternating runs per cell")
    ap.add_argument("--procs", default="1,2,8")
    ap.add_argument("--workloads", default="", help="comma-separated subset of the table")
    ap.add_argument("--quick", action="store_true", help="quick_n sizes")
    ap.add_argument("--timeout", type=float, default=300, help="seconds per run")
    ap.add_argument("--check", action="store_true",
                    help="fail unless every program lists the table and every run gave a sane value")
    ap.add_argument("--out", default="build/compare",
                    help="directory for results.tsv, meta.json, compare.md and the chart")
    ap.add_argument("--rerender", default="", metavar="DIR",
                    help="run nothing: redo table, chart and doc from DIR's results.tsv and meta.json")
    ap.add_argument("--doc", default="", help="Markdown file to write the table into (markers)")
    ap.add_argument("--chart", default="", help="SVG path (default OUT/compare.svg)")
    ap.add_argument("--chart-link", default="", help="how the doc links the chart")
    ap.add_argument("--command", default="python3 bench/compare.py", help="shown in the note")
    opts = ap.parse_args()

    try:
        rows = parse_table(opts.table)
    except (TableError, OSError) as e:
        print(f"workload table: {e}", file=sys.stderr)
        return 1
    if opts.validate_table:
        print(f"{opts.table}: {len(rows)} workloads: {' '.join(r.name for r in rows)}")
        return 0
    table_names = {r.name for r in rows}
    if opts.rerender:
        runs, meta = load_runs(opts.rerender)
        opts.out = opts.rerender
        rows = [r for r in rows if r.name in meta["workloads"]]
        report(opts, rows, runs, meta)
        return 0
    if opts.workloads:
        want = opts.workloads.split(",")
        unknown = [w for w in want if w not in table_names]
        if unknown:
            print(f"not in the table: {' '.join(unknown)}", file=sys.stderr)
            return 2
        rows = [r for r in rows if r.name in want]
    procs_list = [int(p) for p in opts.procs.split(",")]
    bins = {}
    for b in opts.bin:
        impl, _, path = b.partition("=")
        if impl not in IMPL_LABELS or not path:
            print(f"--bin {b}: want goro=PATH, go=PATH or fiber=PATH", file=sys.stderr)
            return 2
        bins[impl] = path
    impls = [i for i in DEFAULT_ORDER if i in bins]
    if not impls:
        print("no programs given (--bin)", file=sys.stderr)
        return 2
    problems = []
    versions = {}
    for impl in impls:
        listed = set(program_output(bins[impl], "--list").split())
        if listed != table_names:
            msg = (f"{impl} ({bins[impl]}) implements {sorted(listed - table_names) or 'nothing'} "
                   f"beyond the table and lacks {sorted(table_names - listed) or 'nothing'}")
            problems.append(msg)
            print(f"warning: {msg}", file=sys.stderr)
        versions[impl] = program_output(bins[impl], "--version")

    os.makedirs(opts.out, exist_ok=True)
    meta = {"command": opts.command, "quick": opts.quick, "reps": opts.reps, "procs": procs_list,
            "impls": impls, "workloads": [r.name for r in rows], "versions": versions,
            "commit": goro_commit(), "machine": machine(), "load_before": loadavg(),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    runs = {}
    with open(os.path.join(opts.out, "results.tsv"), "w") as raw:
        raw.write("workload\tprocs\trep\timpl\tstatus\tvalue\tnote\n")
        for row in rows:
            n = row.quick_n if opts.quick else row.n
            for procs in procs_list:
                for rep in range(opts.reps):
                    k = rep % len(impls)
                    shown = []
                    for impl in impls[k:] + impls[:k]:
                        r = run_one(bins[impl], impl, row, procs, n, opts.timeout)
                        runs.setdefault((row.name, procs, impl), []).append(r)
                        note = r.note.replace("\t", " ").replace("\n", " ")
                        raw.write(f"{row.name}\t{procs}\t{rep + 1}\t{impl}\t{r.status}\t"
                                  f"{'' if r.value is None else r.value}\t{note}\n")
                        raw.flush()
                        shown.append(f"{impl} {fmt(r.value) if r.status == 'ok' else r.status}")
                        if r.status in ("fail", "timeout"):
                            problems.append(f"{impl} {row.name} procs={procs} run {rep + 1}: "
                                            f"{r.status}: {r.note}")
                        if r.status == "n/a" and not r.note:
                            problems.append(f"{impl} {row.name}: n/a without a reason")
                    print(f"{row.name:<11} procs={procs} run {rep + 1}/{opts.reps}: "
                          + ", ".join(shown) + f" ({row.unit})", flush=True)
    meta["load_after"] = loadavg()
    with open(os.path.join(opts.out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    report(opts, rows, runs, meta)
    if opts.check and problems:
        print("\nproblems:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""bench_report.py: the report of tools/bench/run, from its raw data.

tools/bench/run leaves in its output directory

    meta.json           the machine, the commands with their exit status,
                        the settings (mode, runs, sizes), the notes
    raw/alloc.<r>.txt   run_alloc_bench's ALLOC_BENCH_RAW lines of run r:
                        "<allocator> <workload> <median_ns> <min_ns>"
    raw/xthread.<r>.txt the same for the xthread_* workloads (frees by
                        another thread)
    raw/fastpath.txt    callgrind_fastpath.sh's FASTPATH_RAW lines
    raw/gc.txt          run_gc_bench --raw lines, one per run
    raw/pause.txt       run_pause_probe --raw lines, one per run

and write() turns them into report.md, the charts (*.png) and
results.json next to them.  Nothing here measures anything: every figure
is a median, minimum, maximum or ratio of figures in those files.

Conventions, stated once in the report too:
  - a cell "m (lo–hi)" is the median of the successful runs with their
    minimum and maximum; a single run shows just its value;
  - for alloc, one run is one process per allocator; its figure is the
    median of the in-process repetitions (alloc_bench -r);
  - a ratio is mgc's median divided by the peer's median: below 1, mgc
    is faster (or smaller);
  - the alloc summary is the geometric mean of the per-workload ratios.
"""
import json
import math
import os

# Peers in summary-column order: (key, heading).
PEERS = [("bdwgc", "bdwgc"), ("glibc", "glibc malloc"), ("mimalloc", "mimalloc"),
         ("jemalloc", "jemalloc"), ("go", "Go")]
ALLOCATORS = ["mgc", "glibc", "mimalloc", "jemalloc"]
# References in the allocation table, not peers: gc_alloc zeroes and
# malloc does not, so mgc is also set against mimalloc's calloc, and mgc's
# unzeroed gc_alloc_atomic against mimalloc's malloc.
ALLOC_REFERENCES = ["mgc_atomic", "mimalloc_calloc"]
ALLOC_REFERENCE_RATIOS = [("mgc", "mimalloc_calloc"), ("mgc_atomic", "mimalloc")]
GC_VARIANTS = ["mgc", "mgc_nowb", "bdwgc", "glibc", "go"]
COUNTS = {"collections", "iters_per_s"}
PAUSE_VARIANTS = ["mgc", "mgc-stw", "bdwgc", "bdwgc-inc", "go", "malloc", "spin"]
COLORS = {"mgc": "#1f77b4", "mgc_nowb": "#aec7e8", "mgc-stw": "#aec7e8",
          "bdwgc": "#d62728", "bdwgc-inc": "#ff9896", "glibc": "#7f7f7f",
          "malloc": "#7f7f7f", "mimalloc": "#2ca02c", "jemalloc": "#9467bd",
          "go": "#17becf", "spin": "#c7c7c7"}


# ---- numbers ----------------------------------------------------------------------

def stats(values):
    """median, min, max and count of a list of numbers (None when empty)."""
    v = sorted(x for x in values if x is not None)
    if not v:
        return None
    n = len(v)
    med = v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2
    return {"median": med, "min": v[0], "max": v[-1], "n": n}


def num(x):
    """A figure with about three significant digits."""
    if x is None:
        return "–"
    a = abs(x)
    if a >= 100:
        return f"{x:.0f}"
    if a >= 10:
        return f"{x:.1f}"
    if a >= 1:
        return f"{x:.2f}"
    return f"{x:#.3g}"


def count(x):
    """A count (or a median of counts, which may end in .5)."""
    return num(x) if x is None or x != int(x) else f"{x:.0f}"


def cell(s, fmt=num):
    if s is None:
        return "–"
    if s["n"] == 1 or s["min"] == s["max"]:
        return fmt(s["median"])
    return f"{fmt(s['median'])} ({fmt(s['min'])}–{fmt(s['max'])})"


def ratio(a, b):
    """a's median over b's (stats dicts or None)."""
    if a is None or b is None or not b["median"]:
        return None
    return a["median"] / b["median"]


def rcell(r, overlap=False):
    return "–" if r is None else f"{r:.2f}" + ("°" if overlap else "")


def overlap(a, b):
    """Whether two stats' min–max ranges (of several runs) overlap: then
    the run cannot tell the two apart."""
    return bool(a and b and a["n"] > 1 and b["n"] > 1 and
                a["min"] <= b["max"] and b["min"] <= a["max"])


def geomean(rs):
    rs = [r for r in rs if r]
    return math.exp(sum(math.log(r) for r in rs) / len(rs)) if rs else None


def fnum(s):
    """A raw field as a float, None for '-' or garbage."""
    try:
        return float(s)
    except (TypeError, ValueError):
        return None


# ---- reading the raw lines ----------------------------------------------------------

def lines(path):
    try:
        with open(path) as f:
            return [l.split() for l in f if l.strip() and not l.startswith("#")]
    except OSError:
        return []


def keyvals(words):
    return dict(w.split("=", 1) for w in words if "=" in w)


def read_alloc(rawdir, prefix="alloc."):
    """{workload: {allocator: stats of the per-run medians}}, workloads in
    their first order, from the raw files named prefix<r>.txt."""
    runs = sorted(f for f in os.listdir(rawdir) if f.startswith(prefix))
    per = {}
    for f in runs:
        for w in lines(os.path.join(rawdir, f)):
            if len(w) == 4:
                per.setdefault(w[1], {}).setdefault(w[0], []).append(fnum(w[2]))
    return {wl: {a: stats(v) for a, v in d.items()} for wl, d in per.items()}, len(runs)


def read_fastpath(rawdir):
    fp = {}
    for w in lines(os.path.join(rawdir, "fastpath.txt")):
        kv = keyvals(w[1:])
        fp.setdefault(kv["variant"], {})[kv["mode"]] = fnum(kv.get("ir_per_alloc"))
    return fp


def read_runs(path, group):
    """{group key: {variant: [key=value dicts, one per run]}}."""
    out = {}
    for w in lines(path):
        kv = keyvals(w[1:])
        out.setdefault(group(kv), {}).setdefault(kv["variant"], []).append(kv)
    return out


def ok_stats(rs, key, scale=1.0):
    """stats of a key over the runs that exited 0."""
    return stats([fnum(r.get(key)) / scale for r in rs
                  if r.get("rc") == "0" and fnum(r.get(key)) is not None])


def n_ok(rs):
    return sum(r.get("rc") == "0" for r in rs)


# ---- the report's sections ------------------------------------------------------------

class Report:
    def __init__(self, outdir):
        self.outdir = outdir
        self.rawdir = os.path.join(outdir, "raw")
        with open(os.path.join(outdir, "meta.json")) as f:
            self.meta = json.load(f)
        self.md = []
        self.summary = []      # (benchmark, measure, {peer: ratio}, {peers overlapping})
        self.results = {}
        self.charts = []
        self.chart_error = None

    def p(self, *text):
        self.md.extend(text)

    def table(self, head, rows, align=None):
        align = align or ["---"] + ["---:"] * (len(head) - 1)
        self.p("| " + " | ".join(head) + " |", "| " + " | ".join(align) + " |")
        self.p(*("| " + " | ".join(r) + " |" for r in rows))
        self.p("")

    def chart(self, name, draw, caption):
        """Draws a chart with draw(plt) into name.png and links it."""
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError as e:
            self.chart_error = f"charts skipped: matplotlib not importable ({e}); " \
                               "install python3-matplotlib (tools/setup-deps)"
            return
        fig = draw(plt)
        fig.savefig(os.path.join(self.outdir, name + ".png"), dpi=110, bbox_inches="tight")
        plt.close(fig)
        self.charts.append(name + ".png")
        self.p(f"![{caption}]({name}.png)", "")

    # -- header ---------------------------------------------------------------------

    def header(self):
        m, s = self.meta["machine"], self.meta["settings"]
        g = m["git"]
        self.p("# mgc benchmark report", "")
        commit = g["commit"][:12]
        self.p(f"A **{s['mode']}** run of `tools/bench/run`, started {m['date_utc']}, "
               f"on commit `{commit}`" + (f" (\"{g['subject']}\")" if g.get("subject") else "") +
               (", **with uncommitted changes** to " + ", ".join(f"`{d}`" for d in g["dirty"])
                if g.get("dirty") else "") + f"; {self.meta['seconds']} s in all.", "")
        self.p("## Machine", "")
        load0, load1 = m["load_start"], self.meta["load_end"]
        v = m["versions"]
        self.p(f"- CPU: {m['cpu_model']}; {m['cpus_usable']} CPUs usable of {m['cpus_online']} "
               f"online, {m['threads_per_core']} thread(s) per core; hypervisor: {m['hypervisor']}; "
               f"{m['mem_gib']} GiB RAM",
               f"- Kernel: {m['kernel']}; {m['os']}",
               f"- Load average (1, 5, 15 min) at start: {' '.join(load0)}; at end: {' '.join(load1)}",
               f"- Compiler: {m['cc'][0]}; glibc {v['libc6']}",
               f"- Peers: bdwgc (libgc-dev) {v['libgc-dev']}, mimalloc {v['libmimalloc-dev']}, "
               f"jemalloc {v['libjemalloc-dev']}, Go {m['go'].replace('go version ', '')}, valgrind {v['valgrind']}",
               f"- mgc build: `{self.meta['builddir']}`, " +
               ", ".join(f"{k}={val}" for k, val in self.meta.get("build_options", {}).items()),
               f"- Benchmarks run under `nice -n {s['nice']}`" if s["nice"] else
               "- Benchmarks run at normal priority", "")
        busy = fnum(load0[0]) or 0
        notes = list(self.meta.get("notes", []))
        if busy > 0.5 * m["cpus_usable"]:
            notes.append(f"The machine was busy when the run started (load average {load0[0]} "
                         f"on {m['cpus_usable']} CPUs): absolute times and pauses are noisy; "
                         "ratios within this run, where variants ran interleaved under the "
                         "same load, are the better guide.")
        self.p("## Notes", "")
        self.p(*(f"- {n}" for n in notes))
        self.p("- A cell `m (lo–hi)` is the median of the successful runs with their minimum "
               "and maximum; a ratio is mgc's median divided by the peer's: **below 1, mgc is "
               "faster or smaller**.",
               "- A ratio marked ° : the min–max ranges of mgc and that peer overlap, so this "
               "run cannot tell the two apart.",
               "- Each collector and allocator runs with its defaults (environment passed "
               "through; see the commands).  mgc is the concurrent collector unless labelled "
               "`mgc-stw`.", "")

    # -- benchmarks -------------------------------------------------------------------

    def alloc(self):
        self.alloc_table(
            "alloc", "alloc.", "## Allocation: ns per allocation + free (`run_alloc_bench`)",
            "`ring_N`: a window of live objects of N bytes, one allocated and the oldest freed "
            "per op; `batch_N`: allocate a batch, free it; `mix`: a fixed size mix.  mgc frees "
            "explicitly here (`gc_free`).",
            "alloc, geometric mean of {n} workloads", "ns per alloc + free",
            "Allocation cost by workload (median, min–max)",
            "allocation cost per workload and allocator")

    def xthread(self):
        self.alloc_table(
            "xthread", "xthread.",
            "## Frees by another thread: ns per object (`run_alloc_bench ... xthread_64 xthread_mix`)",
            "One thread allocates each object (64 bytes, or the size mix) and passes it through "
            "a queue of 1024 slots to a second thread, which frees it; an op is one object "
            "through the queue, the two threads working at once.",
            "frees by another thread, geometric mean of {n} workloads", "ns per object",
            "Frees by another thread (median, min–max)",
            "cost per object passed to another thread to free")

    def alloc_table(self, key, prefix, title, workloads_text, summary_label, measure,
                    chart_title, chart_alt):
        """The table, reference ratios, summary row and chart of a set of
        run_alloc_bench runs (raw files prefix<r>.txt, settings key_args)."""
        data, runs = read_alloc(self.rawdir, prefix)
        if not data:
            return
        s = self.meta["settings"]
        self.results[key] = data
        self.p(title, "",
               f"{runs} run(s); each runs every allocator's `alloc_bench` once with "
               f"`{' '.join(s[key + '_args'])}` (repetitions per workload, ms per repetition) "
               f"and reports the median repetition.  {workloads_text}", "")
        allocs = [a for a in ALLOCATORS if any(a in d for d in data.values())]
        refs = [a for a in ALLOC_REFERENCES if any(a in d for d in data.values())]
        ref_pairs = [(a, b) for a, b in ALLOC_REFERENCE_RATIOS
                     if any(a in d and b in d for d in data.values())]
        peers = [a for a in allocs if a != "mgc"]
        rows, per_peer, per_ref = [], {a: [] for a in peers}, {p: [] for p in ref_pairs}
        for wl, d in data.items():
            rs = [ratio(d.get("mgc"), d.get(a)) for a in peers]
            for a, r in zip(peers, rs):
                per_peer[a].append(r)
            refrs = [ratio(d.get(a), d.get(b)) for a, b in ref_pairs]
            for p, r in zip(ref_pairs, refrs):
                per_ref[p].append(r)
            rows.append([wl] + [cell(d.get(a)) for a in allocs + refs] +
                        [rcell(r, overlap(d.get("mgc"), d.get(a))) for a, r in zip(peers, rs)] +
                        [rcell(r, overlap(d.get(a), d.get(b))) for (a, b), r in zip(ref_pairs, refrs)])
        self.table(["workload"] + allocs + refs + [f"mgc / {a}" for a in peers] +
                   [f"{a} / {b}" for a, b in ref_pairs], rows)
        if ref_pairs:
            gms = {p: geomean(per_ref[p]) for p in ref_pairs}
            means = ", ".join(f"{a} / {b} {g:.2f}" for (a, b), g in gms.items() if g)
            self.p("", f"References (not in the summary): `mgc_atomic` is `gc_alloc_atomic` + "
                   "`gc_free`, memory neither zeroed nor scanned, as malloc's; `mimalloc_calloc` "
                   f"hands out zeroed memory, as `gc_alloc`.  Geometric means: {means}.", "")
        self.summary.append((summary_label.format(n=len(data)), measure,
                             {a: geomean(per_peer[a]) for a in peers}, set()))
        self.chart(key, lambda plt: draw_groups(
            plt, list(data), allocs, lambda wl, a: data[wl].get(a),
            f"{measure} (log)", chart_title, log=True), chart_alt)

    def fastpath(self):
        fp = read_fastpath(self.rawdir)
        if not fp:
            return
        env = self.meta["settings"]["fastpath_env"]
        self.results["fastpath"] = fp
        self.p("## Fast path: instructions per allocation (`callgrind_fastpath.sh`)", "",
               f"Instruction counts under callgrind, (Ir(K={env['FASTPATH_K2']}) − "
               f"Ir(K={env['FASTPATH_K1']})) / (K2 − K1): deterministic, so one run.  mgc: "
               "`gc_alloc(16)` (scanned) and `gc_alloc_atomic(64)`; the others `malloc` of the "
               "same sizes, never freed.", "")
        variants = [a for a in ALLOCATORS if a in fp]
        rows = []
        for a in variants:
            r = [ratio(st(fp["mgc"].get(m)), st(fp[a].get(m))) if "mgc" in fp and a != "mgc"
                 else None for m in ("scan", "atomic")]
            rows.append([a, num(fp[a].get("scan")), num(fp[a].get("atomic"))] + [rcell(x) for x in r])
        self.table(["allocator", "16 B scanned", "64 B atomic", "mgc / this, 16 B",
                    "mgc / this, 64 B"], rows)
        for m, label in (("scan", "16 B scanned"), ("atomic", "64 B atomic")):
            self.summary.append((f"fast path, {label}", "instructions per allocation",
                                 {a: ratio(st(fp["mgc"].get(m)), st(fp[a].get(m)))
                                  for a in variants if a != "mgc" and "mgc" in fp}, set()))

    def gc(self):
        data = read_runs(os.path.join(self.rawdir, "gc.txt"), lambda kv: kv["workload"])
        if not data:
            return
        s = self.meta["settings"]
        args = dict(zip(s["gc_args"][::2], s["gc_args"][1::2]))
        titles = {"binarytrees": f"binary-trees, depth {args.get('--depth')}, 1 thread",
                  "binarytrees_mt": f"binary-trees, depth {args.get('--depth')}, "
                                    f"{s.get('threads')} threads",
                  "gcbench": f"GCBench-style, scale {args.get('--scale')}"}
        self.p("## Garbage-collection benchmarks (`run_gc_bench`)", "",
               f"{s['runs']} run(s) per variant, interleaved.  Each run is timed by "
               "`/usr/bin/time` (wall, user + system CPU, peak RSS of the process); collections, "
               "longest collection pause and heap size are what each program's collector "
               "reports about itself (bdwgc: a whole collection, from `GC_EVENT_START` to "
               "`GC_EVENT_END`; Go: `MemStats.PauseNs`).  glibc is the same program with "
               "explicit `free`.  Every run's output is compared to the reference.  Each "
               "run's output and stderr: `" + self.meta["builddir"] +
               "/tools/bench/gc-bench-logs/`.", "")
        agg = {}
        for wl, byv in data.items():
            agg[wl] = self.gc_workload(titles.get(wl, wl), byv)
        self.results["gc"] = agg
        self.chart("gc", lambda plt: draw_gc(plt, agg, titles),
                   "wall time and peak RSS per GC benchmark")

    def gc_workload(self, title, byv):
        variants = [v for v in GC_VARIANTS if v in byv]
        a = {v: {"wall_s": ok_stats(byv[v], "wall_s"), "cpu_s": ok_stats(byv[v], "cpu_s"),
                 "rss_mb": ok_stats(byv[v], "rss_kb", 1024.0),
                 "collections": ok_stats(byv[v], "collections"),
                 "max_pause_ms": ok_stats(byv[v], "max_pause_ms"),
                 "ok": n_ok(byv[v]), "runs": len(byv[v]),
                 "differs": sum(r.get("output") == "differs" for r in byv[v])} for v in variants}
        self.p(f"### {title}", "")
        rows = []
        mgc = a.get("mgc")
        for v in variants:
            x = a[v]
            rw = ratio(mgc["wall_s"], x["wall_s"]) if mgc and v != "mgc" else None
            rr = ratio(mgc["rss_mb"], x["rss_mb"]) if mgc and v != "mgc" else None
            out = "same" if not x["differs"] else f"DIFFERS in {x['differs']}"
            rows.append([v, cell(x["wall_s"]), cell(x["cpu_s"]), cell(x["rss_mb"]),
                         cell(x["collections"], count), cell(x["max_pause_ms"]),
                         f"{x['ok']}/{x['runs']}", out,
                         rcell(rw, v != "mgc" and overlap(mgc["wall_s"], x["wall_s"])),
                         rcell(rr, v != "mgc" and overlap(mgc["rss_mb"], x["rss_mb"]))])
        self.table(["variant", "wall s", "CPU s", "peak RSS MB", "collections",
                    "longest pause ms", "runs ok", "output", "mgc / this, wall",
                    "mgc / this, RSS"], rows, ["---"] + ["---:"] * 6 + ["---"] + ["---:"] * 2)
        for key, label in (("wall_s", "wall time"), ("cpu_s", "CPU time (all threads)"),
                           ("rss_mb", "peak RSS")):
            peers = [v for v in variants if mgc and v != "mgc"]
            self.summary.append((title, label, {v: ratio(mgc[key], a[v][key]) for v in peers},
                                 {v for v in peers if overlap(mgc[key], a[v][key])}))
        return a

    def pause(self):
        data = read_runs(os.path.join(self.rawdir, "pause.txt"), lambda kv: int(kv["live_mib"]))
        if not data:
            return
        s = self.meta["settings"]
        args = dict(zip(s["pause_args"][::2], s["pause_args"][1::2]))
        self.p("## Pauses the mutator sees (`run_pause_probe`)", "",
               f"A mutator replaces nodes of a live heap of small objects and allocates "
               f"short-lived garbage for {args.get('--seconds')} s; a gap is the time between "
               f"the ends of consecutive iterations (normally about a microsecond), so a gap "
               f"holds any stop, assist or descheduling.  {s['pause_runs']} run(s) per cell, "
               "interleaved.  `mgc-stw`: MGC_CONCURRENT=0; `bdwgc-inc`: bdwgc in incremental "
               "mode; `malloc`: no collector at all, the noise floor of this machine at this "
               "time; `spin`: about 1 µs of arithmetic per iteration, no memory touched, the "
               "floor of any loop.  \"Collector's longest stop\" is what the collector itself reports.  "
               "Each run's full output: `pause-logs/` under `" + self.meta["builddir"] +
               "/tools/bench/pause/`.", "")
        agg = {}
        keys = [("gap_max_us", 1000, "max gap ms"), ("gap_p999_us", 1000, "p99.9 gap ms"),
                ("gap_p99_us", 1000, "p99 gap ms"), ("gap_p50_us", 1, "median gap µs"),
                ("iters_per_s", 1, "iterations/s"), ("collections", 1, "collections"),
                ("peak_rss_mib", 1, "peak RSS MiB"), ("self_max_pause_us", 1000,
                                                      "collector's longest stop ms")]
        for size in sorted(data):
            byv = data[size]
            variants = [v for v in PAUSE_VARIANTS if v in byv]
            a = {v: {k: ok_stats(byv[v], k, sc) for k, sc, _ in keys} for v in variants}
            for v in variants:
                a[v]["ok"], a[v]["runs"] = n_ok(byv[v]), len(byv[v])
            agg[size] = a
            mgc = a.get("mgc")
            self.p(f"### live heap {size} MiB", "")
            rows = []
            for v in variants:
                x = a[v]
                rg = ratio(mgc["gap_max_us"], x["gap_max_us"]) if mgc and v != "mgc" else None
                rp = ratio(mgc["gap_p99_us"], x["gap_p99_us"]) if mgc and v != "mgc" else None
                self_ = "–" if v in ("malloc", "spin") else cell(x["self_max_pause_us"])
                rows.append([v] + [cell(x[k], count if k in COUNTS else num)
                                   for k, _, _ in keys[:-1]] + [self_] +
                            [f"{x['ok']}/{x['runs']}",
                             rcell(rg, v != "mgc" and overlap(mgc["gap_max_us"], x["gap_max_us"])),
                             rcell(rp, v != "mgc" and overlap(mgc["gap_p99_us"], x["gap_p99_us"]))])
            self.table(["variant"] + [h for _, _, h in keys] +
                       ["runs ok", "mgc / this, max gap", "mgc / this, p99"], rows)
            for key, label in (("gap_max_us", "max gap"), ("gap_p99_us", "p99 gap"),
                               ("peak_rss_mib", "peak RSS")):
                peers = [v for v in ("bdwgc", "go") if mgc and v in a]
                self.summary.append((f"pause probe, {size} MiB live", label,
                                     {v: ratio(mgc[key], a[v][key]) for v in peers},
                                     {v for v in peers if overlap(mgc[key], a[v][key])}))
        self.results["pause"] = {str(k): v for k, v in agg.items()}
        self.chart("pause", lambda plt: draw_pause(plt, agg),
                   "longest and p99 gaps per pause-probe variant")

    # -- summary, commands ------------------------------------------------------------------

    def summary_section(self):
        peers = [(k, h) for k, h in PEERS if any(k in r for _, _, r, _ in self.summary)]
        rows = [[b, m] + [rcell(r.get(k), k in o) for k, _ in peers]
                for b, m, r, o in self.summary]
        body = self.md
        self.md = []
        self.p("## Summary: mgc / peer (below 1: mgc faster or smaller)", "")
        self.table(["benchmark", "measure"] + [h for _, h in peers], rows,
                   ["---", "---"] + ["---:"] * len(peers))
        self.p("° the min–max ranges of mgc and the peer overlap: this run cannot tell them "
               "apart.  The alloc and cross-thread rows are geometric means of per-workload "
               "ratios; the fast path counts are deterministic.", "")
        self.p("For pauses, bdwgc is its default (non-incremental) mode and mgc the concurrent "
               "collector; the sections below have every variant.", "")
        self.chart("ratios", lambda plt: draw_ratios(plt, self.summary, peers),
                   "mgc / peer ratios of this run")
        return body

    def commands(self):
        self.p("## Commands", "",
               "Run from the source tree's root, in this order (paths outside the tree are "
               "absolute); raw lines in `raw/`, each command's output in `logs/` of the "
               "output directory.", "", "```sh", self.meta["invocation"])
        for st_ in self.meta["steps"]:
            self.p(st_["command"])
        self.p("```", "")
        self.p("| step | exit | seconds |", "| --- | ---: | ---: |",
               *(f"| {x['name']} | {x['rc']} | {x['seconds']} |" for x in self.meta["steps"]), "")
        failed = [x for x in self.meta["steps"] if x["rc"] != 0]
        if failed:
            self.p("**Failed steps**: " + "; ".join(f"{x['name']} (exit {x['rc']}, "
                                                      f"see `{x['stderr']}`)" for x in failed), "")
        if self.chart_error:
            self.p(f"Note: {self.chart_error}.", "")


def st(x):
    """A single figure as a stats dict."""
    return None if x is None else {"median": x, "min": x, "max": x, "n": 1}


# ---- charts -------------------------------------------------------------------------

def errbars(ss):
    lo = [s["median"] - s["min"] if s else 0 for s in ss]
    hi = [s["max"] - s["median"] if s else 0 for s in ss]
    return [lo, hi]


def bars(ax, groups, series, get, log=False):
    """Grouped bars: one group per item of groups, one bar per series,
    heights get(group, series) (stats dicts), min–max as error bars."""
    width = 0.8 / max(len(series), 1)
    for i, sname in enumerate(series):
        ss = [get(g, sname) for g in groups]
        xs = [j + (i - (len(series) - 1) / 2) * width for j in range(len(groups))]
        ax.bar(xs, [s["median"] if s else 0 for s in ss], width, yerr=errbars(ss),
               capsize=2, label=sname, color=COLORS.get(sname), error_kw={"lw": 0.8})
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(groups, rotation=30, ha="right", fontsize=8)
    if log:
        ax.set_yscale("log")
    ax.grid(axis="y", alpha=0.3)


def draw_groups(plt, groups, series, get, ylabel, title, log=False):
    fig, ax = plt.subplots(figsize=(max(6, len(groups) * 0.9), 4))
    bars(ax, groups, series, get, log)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    return fig


def draw_gc(plt, agg, titles):
    wls = list(agg)
    fig, axes = plt.subplots(2, len(wls), figsize=(4 * len(wls), 6.5), squeeze=False)
    for j, wl in enumerate(wls):
        variants = list(agg[wl])
        for i, (key, label) in enumerate((("wall_s", "wall s"), ("rss_mb", "peak RSS MB"))):
            ax = axes[i][j]
            bars(ax, [""], variants, lambda g, v: agg[wl][v][key])
            ax.set_xticks([])
            ax.set_ylabel(label)
            if i == 0:
                ax.set_title(titles.get(wl, wl), fontsize=9)
    axes[0][0].legend(fontsize=8)
    fig.suptitle("GC benchmarks (median, min–max)")
    fig.tight_layout()
    return fig


def draw_pause(plt, agg):
    sizes = sorted(agg)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, (key, label) in zip(axes, (("gap_max_us", "longest gap ms (log)"),
                                       ("gap_p99_us", "p99 gap ms (log)"))):
        variants = [v for v in PAUSE_VARIANTS if any(v in agg[s] for s in sizes)]
        bars(ax, [f"{s} MiB live" for s in sizes], variants,
             lambda g, v: agg[int(g.split()[0])].get(v, {}).get(key), log=True)
        ax.set_ylabel(label)
    axes[1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1))
    fig.suptitle("Gaps the mutator saw (median, min–max)")
    fig.tight_layout()
    return fig


def draw_ratios(plt, summary, peers):
    items = [(f"{b}: {m} vs {h}", r[k]) for b, m, r, _ in summary for k, h in peers
             if r.get(k)]
    fig, ax = plt.subplots(figsize=(8, 0.28 * len(items) + 1.2))
    ys = range(len(items))
    vals = [v for _, v in items]
    ax.barh(list(ys), vals, color=["#2ca02c" if v < 1 else "#d62728" for v in vals])
    ax.set_yticks(list(ys))
    ax.set_yticklabels([t for t, _ in items], fontsize=7)
    ax.invert_yaxis()
    for y, v in zip(ys, vals):
        ax.text(v, y, f" {v:.2f}", va="center", fontsize=7)
    ax.set_xscale("log")
    ax.set_xlim(min(vals + [1]) / 1.5, max(vals + [1]) * 2.5)
    ax.axvline(1, color="black", lw=0.8)
    ax.set_xlabel("mgc / peer, ratio of medians (log; left of 1: mgc better)")
    ax.grid(axis="x", alpha=0.3, which="both")
    fig.tight_layout()
    return fig


# ---- entry ------------------------------------------------------------------------------

def write(outdir):
    """Writes report.md, the charts and results.json into outdir; returns
    the report's path."""
    r = Report(outdir)
    for f in os.listdir(outdir):
        if f.endswith(".png"):
            os.remove(os.path.join(outdir, f))
    r.header()
    head = r.md
    r.md = []
    r.alloc()
    r.xthread()
    r.fastpath()
    r.gc()
    r.pause()
    r.commands()
    body = r.summary_section()
    r.md = head + r.md + body
    path = os.path.join(outdir, "report.md")
    with open(path, "w") as f:
        f.write("\n".join(r.md).rstrip() + "\n")
    with open(os.path.join(outdir, "results.json"), "w") as f:
        json.dump({"summary": [{"benchmark": b, "measure": m, "ratios": x,
                            "ranges_overlap": sorted(o)} for b, m, x, o in r.summary],
                   "results": r.results}, f, indent=1)
    return path

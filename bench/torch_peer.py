#!/usr/bin/python3
"""Time the balm_bench shapes in PyTorch on one thread and print how many
times faster libbalm is.

  /usr/bin/python3 bench/torch_peer.py [--balm BALM.json] [--out TORCH.json]
                   [--repetitions 5] [--min-time 0.2] [--dram] [--filter REGEX]

Two formulations per op where they differ (impl field of the name):
  torch_authors  the authors' code: a Python loop over the batch for pooling,
                 the sigmoid over the gate expanded to [T][B][D], autograd for
                 the backward passes, their FCM module;
  torch          idiomatic vectorised PyTorch (one masked sum, the sigmoid on
                 [B][D] broadcast, explicit backward formulas).
Names and shapes are balm_bench's (`<family>/<op>/<impl>/<shape>`), so the
output JSON (Google Benchmark's format: median, stddev and cv aggregates)
goes through bench/compare and bench/report like balm_bench's.

Needs Debian's python3-torch (not needed by CI or the build). Same inputs as
balm_bench: masks with a third of the samples missing and present prefixes
of random length; the data values do not matter for the timing."""
import argparse
import json
import os
import re
import statistics
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    print("torch_peer: PyTorch is not installed (apt-get install python3-torch)",
          file=sys.stderr)
    sys.exit(2)

import benchjson  # noqa: E402

# balm_bench's shapes (bench/bench_util.c): keep in step.
SEQ_SHAPES = [("iemocap_l", 110, 16, 1024), ("iemocap_a", 110, 16, 1582),
              ("iemocap_v", 110, 16, 342), ("mosei_l", 50, 32, 1024),
              ("mosei_a", 50, 32, 512), ("mosei_v", 50, 32, 1024), ("l2", 16, 16, 512),
              ("dram", 1024, 64, 4096)]
VEC_SHAPES = [("n5400", 5400), ("n64K", 65536), ("n64M", 64 << 20)]
KL_N, KL_C = 1760, 6
DATASETS = [("iemocap", 110, 16, (1024, 1582, 342), 737),
            ("mosei", 50, 32, (1024, 512, 1024), 640)]


def make_mask(T, B, gen):
    """[T][B]: a third of the samples missing, the rest a present prefix >= T/2."""
    m = torch.zeros(T, B)
    for b in range(B):
        r = int(torch.randint(0, 3, (1,), generator=gen))
        if r == 0:
            continue
        n = T // 2 + int(torch.randint(0, T - T // 2 + 1, (1,), generator=gen))
        m[:n, b] = 1.0
    return m


# ---------------------------------------------------------------- the authors'
def authors_pool(x, m):
    """The authors' masked mean: a Python loop over the batch."""
    out = []
    for b in range(x.shape[1]):
        mb = m[:, b]
        out.append((x[:, b, :] * mb.unsqueeze(-1)).sum(0) / (mb.sum() + 1e-8))
    return torch.stack(out)


def authors_gate(x, m, e):
    """The sigmoid over the gate expanded to [T][B][D]."""
    g = 2 * torch.sigmoid(e.unsqueeze(0).expand(x.shape[0], -1, -1))
    return g * x * m.unsqueeze(-1)


class AuthorsFCM(torch.nn.Module):
    def __init__(self, d, dg):
        super().__init__()
        self.glob = torch.nn.Linear(sum(d), dg)
        self.heads = torch.nn.ModuleList(torch.nn.Linear(dg, dm) for dm in d)

    def forward(self, xs, ms):
        s = [authors_pool(x, m) for x, m in zip(xs, ms)]
        z = F.relu(self.glob(torch.cat(s, 1)))
        return [authors_gate(x, m, h(z)) for x, m, h in zip(xs, ms, self.heads)]


# ---------------------------------------------------------------- idiomatic
def torch_pool(x, m):
    cnt = m.sum(0)
    return (x * m.unsqueeze(-1)).sum(0) / (cnt + 1e-8).unsqueeze(-1)


def torch_gate(x, m, e):
    return (2 * torch.sigmoid(e)).unsqueeze(0) * x * m.unsqueeze(-1)


class TorchFCM(AuthorsFCM):
    def forward(self, xs, ms):
        s = [torch_pool(x, m) for x, m in zip(xs, ms)]
        z = F.relu(self.glob(torch.cat(s, 1)))
        return [torch_gate(x, m, h(z)) for x, m, h in zip(xs, ms, self.heads)]


# ---------------------------------------------------------------- timing
def measure(fn, reps, min_time, setup=None):
    """Per-call (wall, cpu) seconds for each repetition; setup() (untimed)
    before every call when given and returns the call's argument."""
    arg = setup() if setup else None
    fn(arg)  # warm up
    res = []
    n = 1
    while True:  # calibrate the number of calls per repetition
        w, c = _run(fn, n, setup)
        if w >= min_time or n >= 1 << 20:
            break
        n = max(n + 1, min(n * 10, int(n * min_time / max(w, 1e-9) * 1.2) + 1))
    for _ in range(reps):
        w, c = _run(fn, n, setup)
        res.append((w / n, c / n, n))
    return res


def _run(fn, n, setup):
    w = c = 0.0
    for _ in range(n):
        arg = setup() if setup else None
        w0, c0 = time.perf_counter(), time.process_time()
        fn(arg)
        w += time.perf_counter() - w0
        c += time.process_time() - c0
    return w, c


def entries(name, res, bytes_=None, items=None):
    """Google Benchmark 1.7 aggregate entries (times in us)."""
    out = []
    walls = [r[0] * 1e6 for r in res]
    cpus = [r[1] * 1e6 for r in res]
    iters = res[0][2]

    def agg(an, w, c, unit="time"):
        e = {"name": "%s_%s" % (name, an), "run_name": name, "run_type": "aggregate",
             "repetitions": len(res), "threads": 1, "aggregate_name": an,
             "aggregate_unit": unit, "iterations": iters, "real_time": w, "cpu_time": c,
             "time_unit": "us"}
        if unit == "time" and an in ("mean", "median") and c > 0:
            if bytes_:
                e["bytes_per_second"] = bytes_ / (c * 1e-6)
            if items:
                e["items_per_second"] = items / (c * 1e-6)
        return e

    mw, mc = statistics.mean(walls), statistics.mean(cpus)
    sw = statistics.stdev(walls) if len(walls) > 1 else 0.0
    sc = statistics.stdev(cpus) if len(cpus) > 1 else 0.0
    out.append(agg("mean", mw, mc))
    out.append(agg("median", statistics.median(walls), statistics.median(cpus)))
    out.append(agg("stddev", sw, sc))
    out.append(agg("cv", sw / mw if mw else 0.0, sc / mc if mc else 0.0, "percentage"))
    return out


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--balm", help="balm_bench JSON to compare against")
    ap.add_argument("--out", help="write the PyTorch timings here (JSON)")
    ap.add_argument("--repetitions", type=int, default=5)
    ap.add_argument("--min-time", type=float, default=0.2,
                    help="seconds per repetition (default 0.2)")
    ap.add_argument("--dram", action="store_true",
                    help="also the 1 GiB 'dram' shape and n64M (slow, several GiB)")
    ap.add_argument("--filter", help="only names matching this regex")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    torch.set_grad_enabled(False)
    gen = torch.Generator().manual_seed(42)
    rx = re.compile(a.filter) if a.filter else None
    bench = []

    def run(name, fn, setup=None, bytes_=None, items=None, grad=False):
        if rx and not rx.search(name):
            return
        with torch.set_grad_enabled(grad):
            res = measure(fn, a.repetitions, a.min_time, setup)
        ent = entries(name, res, bytes_, items)
        bench.extend(ent)
        print("%-40s %12s (cpu, median of %d)" % (name, benchjson.fmt_time(ent[1]["cpu_time"] * 1e-6),
                                                  a.repetitions), flush=True)

    for sh, T, B, D in SEQ_SHAPES:
        if sh == "dram" and not a.dram:
            continue
        x = torch.rand(T, B, D, generator=gen) * 2 - 1
        m = make_mask(T, B, gen)
        e = torch.rand(B, D, generator=gen) * 8 - 4
        ds = torch.rand(B, D, generator=gen) * 2 - 1
        dy = torch.rand(T, B, D, generator=gen) * 2 - 1
        dx = torch.zeros(T, B, D)
        n = T * B * D
        run("pool/fwd/torch_authors/%s" % sh, lambda _: authors_pool(x, m), items=n)
        run("pool/fwd/torch/%s" % sh, lambda _: torch_pool(x, m), items=n)

        def pool_graph():
            xr = x.clone().requires_grad_(True)
            return xr, authors_pool(xr, m)
        run("pool/bwd/torch_authors/%s" % sh, lambda g: g[1].backward(ds), setup=pool_graph,
            items=n, grad=True)
        run("pool/bwd/torch/%s" % sh,
            lambda _: dx.add_(m.unsqueeze(-1) * (ds / (m.sum(0) + 1e-8).unsqueeze(-1)).unsqueeze(0)),
            items=n)
        run("gate/fwd/torch_authors/%s" % sh, lambda _: authors_gate(x, m, e), items=n)
        run("gate/fwd/torch/%s" % sh, lambda _: torch_gate(x, m, e), items=n)

        def gate_graph():
            er = e.clone().requires_grad_(True)
            xr = x.clone().requires_grad_(True)
            return authors_gate(xr, m, er)
        run("gate/bwd/torch_authors/%s" % sh, lambda y: y.backward(dy), setup=gate_graph,
            items=n, grad=True)

        def gate_bwd(_):
            s = torch.sigmoid(e)
            mm = m.unsqueeze(-1)
            gdx = (2 * s).unsqueeze(0) * mm * dy
            gde = (dy * x * mm).sum(0) * 2 * s * (1 - s)
            return gdx, gde
        run("gate/bwd/torch/%s" % sh, gate_bwd, items=n)
        del x, dy, dx

    p = torch.softmax(torch.rand(KL_N, KL_C, generator=gen) * 6 - 3, 1)
    lq = torch.log_softmax(torch.rand(KL_N, KL_C, generator=gen) * 6 - 3, 1)
    run("kl/cls/torch/N%dC%d" % (KL_N, KL_C),
        lambda _: F.kl_div(lq, p, reduction="batchmean"), items=KL_N * KL_C)
    f = torch.rand(KL_N, generator=gen) * 12 - 6
    u = torch.rand(KL_N, generator=gen) * 12 - 6

    def kl_reg(_):
        pr = torch.stack([torch.sigmoid(-f), torch.sigmoid(f)], 1)
        lq2 = torch.stack([F.logsigmoid(-u), F.logsigmoid(u)], 1)
        return F.kl_div(lq2, pr, reduction="batchmean")
    run("kl/reg/torch/N%d" % KL_N, kl_reg, items=KL_N)

    for sh, n in VEC_SHAPES:
        if sh == "n64M" and not a.dram:
            continue
        w = [torch.rand(n, generator=gen) * 2 - 1 for _ in range(5)]
        run("cos/dot_norms/torch/%s" % sh, lambda _: F.cosine_similarity(w[0], w[1], dim=0),
            items=n)
        run("cos/direction/torch/%s" % sh,
            lambda _: torch.mul(w[0], 0.3).add_(w[1], alpha=-0.2).add_(w[2], alpha=0.1)
            .add_(w[3], alpha=-0.05), items=n)
        run("grad/scale/torch/%s" % sh, lambda _: w[4].mul_(1.0), items=n)
        run("grad/std/torch/%s" % sh, lambda _: w[4].std(), items=n)
        run("grad/noise/torch/%s" % sh,
            lambda _: w[4].mul_(1.0).add_(torch.randn(n), alpha=1e-3), items=n)
        del w

    for ds_name, T, B, d, dg in DATASETS:
        xs = [torch.rand(T, B, dm, generator=gen) * 2 - 1 for dm in d]
        ms = [make_mask(T, B, gen) for _ in d]
        dys = [torch.rand(T, B, dm, generator=gen) * 2 - 1 for dm in d]
        items = sum(T * B * dm for dm in d)
        for impl, cls in (("torch_authors", AuthorsFCM), ("torch", TorchFCM)):
            mod = cls(d, dg)
            # with autograd on, as in training (the graph is recorded)
            run("fcm/fwd/%s/%s" % (impl, ds_name), lambda _: mod(xs, ms), items=items,
                grad=True)

            def graph():
                xr = [x.clone().requires_grad_(True) for x in xs]
                return mod(xr, ms)

            def bwd(ys):
                torch.autograd.backward(ys, dys)
            run("fcm/bwd/%s/%s" % (impl, ds_name), bwd, setup=graph, items=items, grad=True)

    doc = {"context": {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                       "executable": "bench/torch_peer.py",
                       "torch_version": torch.__version__, "torch_threads": 1,
                       "num_cpus": os.cpu_count()},
           "benchmarks": bench}
    if a.out:
        with open(a.out, "w") as fo:
            json.dump(doc, fo, indent=1)
            fo.write("\n")
    if a.balm:
        print_ratios(a.balm, doc)
    return 0


def print_ratios(balm_path, doc):
    """How many times faster the best libbalm impl is than each PyTorch one."""
    _, balm = benchjson.load(balm_path)
    best = {}
    for b in balm.values():
        p = b.parts()
        t = b.time("cpu_time")
        if not p or b.error or not t or p[2] in ("naive", "onednn") or p[0] == "mem":
            continue
        key = (p[0], p[1], p[3])
        if key not in best or t < best[key][0]:
            best[key] = (t, p[2])
    tmp = os.path.join(os.path.dirname(os.path.abspath(balm_path)), ".torch_peer.tmp.json")
    with open(tmp, "w") as fo:
        json.dump(doc, fo)
    _, tor = benchjson.load(tmp)
    os.unlink(tmp)
    print("\n%-34s %12s %14s %12s %9s" % ("pytorch benchmark", "torch", "libbalm best",
                                         "impl", "speedup"))
    for name in sorted(tor):
        p = tor[name].parts()
        key = (p[0], p[1], p[3])
        tt = tor[name].time("cpu_time")
        if key not in best:
            print("%-34s %12s %14s %12s %9s" % (name, benchjson.fmt_time(tt), "-", "-", "-"))
            continue
        bt, impl = best[key]
        print("%-34s %12s %14s %12s %9s" % (name, benchjson.fmt_time(tt), benchjson.fmt_time(bt),
                                           impl, benchjson.ratio_str(tt / bt)))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

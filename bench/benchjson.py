"""Reading Google Benchmark JSON (balm_bench's and torch_peer.py's) into one
summary per benchmark: median time, relative spread, rates. Standard library
only, so that bench/compare runs in CI without numpy or torch."""
import json
import math
import statistics

# Seconds per unit of Google Benchmark's time_unit.
_UNIT = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}


class Bench:
    """One benchmark across its repetitions. Times are in seconds."""

    def __init__(self, name):
        self.name = name
        self.median = {}   # metric -> seconds
        self.spread = {}   # metric -> relative standard deviation (cv), 0 if unknown
        self.reps = 0
        self.error = None  # SkipWithError message
        self.bytes_per_second = None
        self.items_per_second = None
        self.label = ""
        self.samples = {"real_time": [], "cpu_time": []}
        self.counters = {}

    def time(self, metric):
        return self.median.get(metric)

    def parts(self):
        """(family, op, impl, shape) of a `<family>/<op>/<impl>/<shape>` name."""
        p = self.name.split("/")
        return tuple(p) if len(p) == 4 else None


def _seconds(entry, key):
    v = entry.get(key)
    if v is None:
        return None
    return float(v) * _UNIT.get(entry.get("time_unit", "ns"), 1e-9)


def load(path):
    """Return (context dict, {name: Bench}) for one JSON file."""
    with open(path) as f:
        doc = json.load(f)
    out = {}
    aggregates = {}
    for e in doc.get("benchmarks", []):
        name = e.get("run_name") or e.get("name")
        b = out.get(name)
        if b is None:
            b = out[name] = Bench(name)
        if e.get("error_occurred"):
            b.error = e.get("error_message", "error")
            continue
        if e.get("label"):
            b.label = e["label"]
        if e.get("run_type") == "aggregate":
            agg = e.get("aggregate_name")
            aggregates.setdefault(name, {})[agg] = e
            continue
        b.reps += 1
        for m in ("real_time", "cpu_time"):
            s = _seconds(e, m)
            if s is not None:
                b.samples[m].append(s)
        for k in ("bytes_per_second", "items_per_second"):
            if k in e:
                b.counters.setdefault(k, []).append(float(e[k]))
        for k, v in e.items():
            if k.startswith("target_") or k in ("items", "bytes", "elements"):
                b.counters.setdefault(k, []).append(float(v))
    for name, b in out.items():
        if b.error:
            continue
        agg = aggregates.get(name, {})
        med, mean, sd, cv = (agg.get(k) for k in ("median", "mean", "stddev", "cv"))
        for m in ("real_time", "cpu_time"):
            if med is not None:
                b.median[m] = _seconds(med, m)
            elif b.samples[m]:
                b.median[m] = statistics.median(b.samples[m])
            if cv is not None and cv.get("aggregate_unit") == "percentage":
                b.spread[m] = float(cv.get(m, 0.0))
            elif sd is not None and mean is not None and _seconds(mean, m):
                b.spread[m] = _seconds(sd, m) / _seconds(mean, m)
            elif len(b.samples[m]) >= 2:
                b.spread[m] = statistics.stdev(b.samples[m]) / statistics.mean(b.samples[m])
            else:
                b.spread[m] = 0.0
        src = med if med is not None else None
        if src is not None:
            b.reps = max(b.reps, int(src.get("repetitions", 0) or 0))
            b.bytes_per_second = src.get("bytes_per_second")
            b.items_per_second = src.get("items_per_second")
        else:
            for k in ("bytes_per_second", "items_per_second"):
                vals = b.counters.get(k)
                if vals:
                    setattr(b, k, statistics.median(vals))
    return doc.get("context", {}), out


def ratio_str(r):
    if r is None or not math.isfinite(r):
        return "-"
    return "%.2fx" % r if r < 100 else "%.0fx" % r


def fmt_time(s):
    if s is None:
        return "-"
    for unit, f in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)):
        if s >= f:
            return "%.3g %s" % (s / f, unit)
    return "%.3g ns" % (s / 1e-9)

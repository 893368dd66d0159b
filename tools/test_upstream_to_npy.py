#!/usr/bin/python3
"""Test of tools/upstream_to_npy.py: builds tiny upstream-style pickles,
converts them, checks every array, runs `balm train --data` on the result
(classification and regression) and checks the refusals of bad pickles.
Usage: test_upstream_to_npy.py [--balm PATH_TO_BALM]. Exit 77 (skip) without numpy."""
import json
import os
import pickle
import subprocess
import sys
import tempfile

try:
    import numpy as np
except ImportError:
    print("numpy missing: skipped")
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
TOOL = os.path.join(HERE, "upstream_to_npy.py")
DIMS = {"text": 5, "audio": 3, "visual": 2}


def make(rng, regression=False, with_val=True, n_dialogs=(12, 3, 4)):
    d = {m: {} for m in DIMS}
    d["label"], d["speaker"] = {}, {}
    ids = []
    for split, nd in zip(("tr", "va", "te"), n_dialogs):
        vids = []
        for k in range(nd):
            vid = f"{split}{k}"
            n = int(rng.integers(2, 7))
            t = rng.normal(size=(n, DIMS["text"]))
            # lists of vectors for text, 2-D arrays for the others: both occur upstream
            d["text"][vid] = [row.tolist() for row in t]
            d["audio"][vid] = np.c_[t[:, :2], rng.normal(size=(n, 1))]
            d["visual"][vid] = rng.normal(size=(n, DIMS["visual"])).astype(np.float32)
            y = t[:, 0] - t[:, 1]
            d["label"][vid] = y.tolist() if regression else [int(v > 0) + 2 * int(v > 1) for v in y]
            d["speaker"][vid] = ["M" if i % 2 else "F" for i in range(n)]
            vids.append(vid)
        ids.append(vids)
    d["trainVid"], d["testVid"] = ids[0], ids[2]
    if with_val:
        d["valVid"] = ids[1]
    return d


def run(args, expect_rc):
    p = subprocess.run([sys.executable, TOOL] + args, capture_output=True, text=True)
    if p.returncode != expect_rc:
        sys.exit(f"FAIL: {args} gave {p.returncode}, expected {expect_rc}\n{p.stdout}{p.stderr}")
    return p


def check_out(d, out, with_val):
    splits = [("train", "trainVid"), ("test", "testVid")] + ([("valid", "valVid")] if with_val else [])
    if not with_val:
        assert not os.path.exists(os.path.join(out, "valid_labels.npy"))
    for split, key in splits:
        vids = d[key]
        lab = np.load(os.path.join(out, f"{split}_labels.npy"))
        off = np.load(os.path.join(out, f"{split}_dialogs.npy"))
        assert lab.dtype == np.float32 and off.dtype == np.float32
        assert off[0] == 0 and off.shape == (len(vids) + 1,)
        assert off[-1] == lab.shape[0]
        for m, w in DIMS.items():
            x = np.load(os.path.join(out, f"{split}_{m}.npy"))
            assert x.dtype == np.float32 and x.flags["C_CONTIGUOUS"], (split, m)
            assert x.shape == (lab.shape[0], w), (split, m, x.shape)
            for k, vid in enumerate(vids):
                a, b = int(off[k]), int(off[k + 1])
                want = np.asarray(d[m][vid], dtype=np.float32)
                assert np.array_equal(x[a:b], want), (split, m, vid)
                assert np.array_equal(lab[a:b], np.asarray(d["label"][vid], dtype=np.float32))


def train(balm, out, extra=()):
    log = os.path.join(out, "log.jsonl")
    p = subprocess.run([balm, "train", "--data", out, "--epochs", "2", "--log", log] + list(extra),
                       capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"FAIL: balm train --data {out}: rc {p.returncode}\n{p.stdout}{p.stderr}")
    final = json.loads(open(log).read().splitlines()[-1])
    assert final.get("final") and 0 <= final["test_f1"] <= 1 and 0 <= final["test_acc"] <= 1, final
    return final


def main():
    balm = sys.argv[sys.argv.index("--balm") + 1] if "--balm" in sys.argv else None
    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory() as tmp:
        for regression in (False, True):
            for with_val in (True, False):
                d = make(rng, regression, with_val)
                pkl = os.path.join(tmp, "f.pkl")
                with open(pkl, "wb") as f:
                    pickle.dump(d, f)
                out = os.path.join(tmp, f"out_{int(regression)}{int(with_val)}")
                p = run([pkl, out], 0)
                assert "train:" in p.stdout and "test:" in p.stdout
                check_out(d, out, with_val)
                if balm:
                    train(balm, out)
        # Python 2 style pickle (protocol 2) loads too
        d = make(rng)
        pkl = os.path.join(tmp, "p2.pkl")
        with open(pkl, "wb") as f:
            pickle.dump(d, f, protocol=2)
        run([pkl, os.path.join(tmp, "p2")], 0)
        # refusals: missing key, utterance counts that disagree, ragged widths, not a dict
        bad = make(rng)
        del bad["testVid"]
        with open(pkl, "wb") as f:
            pickle.dump(bad, f)
        p = run([pkl, os.path.join(tmp, "bad")], 1)
        assert "missing key 'testVid'" in p.stderr, p.stderr
        bad = make(rng)
        vid = bad["trainVid"][0]
        bad["audio"][vid] = bad["audio"][vid][:-1]
        with open(pkl, "wb") as f:
            pickle.dump(bad, f)
        p = run([pkl, os.path.join(tmp, "bad")], 1)
        assert f"dialogue '{vid}': 'audio' has" in p.stderr, p.stderr
        bad = make(rng)
        vid = bad["trainVid"][1]
        bad["visual"][vid] = np.zeros((len(bad["label"][vid]), 9))
        with open(pkl, "wb") as f:
            pickle.dump(bad, f)
        p = run([pkl, os.path.join(tmp, "bad")], 1)
        assert "'visual' has width 9" in p.stderr, p.stderr
        with open(pkl, "wb") as f:
            pickle.dump([1, 2, 3], f)
        p = run([pkl, os.path.join(tmp, "bad")], 1)
        assert "expected a dict" in p.stderr, p.stderr
        with open(pkl, "wb") as f:
            f.write(b"not a pickle")
        run([pkl, os.path.join(tmp, "bad")], 1)
        run([], 2)
    print("upstream_to_npy: all checks passed" + ("" if balm else " (balm train not run)"))


if __name__ == "__main__":
    main()

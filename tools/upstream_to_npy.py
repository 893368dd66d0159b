#!/usr/bin/python3
"""Convert upstream BALM's pickled IEMOCAP / CMU-MOSEI features into the .npy
layout `balm train --data DIR` reads.

Input: a pickle holding a dict with
  trainVid, testVid (and optionally valVid): lists of dialogue ids,
  text, audio, visual: dicts  vid -> per-utterance feature vectors [n_utt][D],
  label: dict vid -> per-utterance labels (class ids or regression targets),
  speaker (optional, ignored): dict vid -> per-utterance speakers.
Output, per split (train, valid if valVid is present, test), float32 C order:
  <split>_text.npy, <split>_audio.npy, <split>_visual.npy   [N][D]
  <split>_labels.npy   [N]
  <split>_dialogs.npy  [n_dialogs + 1]  offsets 0, end of dialogue 1, ..., N
Without valVid the trainer holds out 10% of the training dialogues itself.

Usage: upstream_to_npy.py FEATURES.pkl OUT_DIR
Needs numpy (the Debian python3-numpy of /usr/bin/python3)."""
import os
import pickle
import sys

import numpy as np

MODS = ("text", "audio", "visual")
SPLITS = (("train", "trainVid"), ("valid", "valVid"), ("test", "testVid"))


class ConvertError(Exception):
    pass


def load_pickle(path):
    with open(path, "rb") as f:
        try:
            return pickle.load(f)
        except UnicodeDecodeError:
            # pickles written by Python 2 (upstream's feature files)
            f.seek(0)
            return pickle.load(f, encoding="latin1")


def utterances(d, key, vid):
    if vid not in d[key]:
        raise ConvertError(f"dialogue {vid!r} of the split has no entry in '{key}'")
    a = np.asarray(d[key][vid], dtype=np.float64)
    if a.ndim == 1 and key == "label":
        return a
    if a.ndim == 1:
        a = a.reshape(1, -1) if a.size else a.reshape(0, 0)
    if a.ndim != 2:
        a = a.reshape(a.shape[0], -1)
    return a


def convert_split(d, vids, name):
    feats = {m: [] for m in MODS}
    labels, offsets = [], [0]
    width = {}
    for vid in vids:
        lab = np.asarray(utterances(d, "label", vid), dtype=np.float64).reshape(-1)
        n = lab.shape[0]
        if n == 0:
            raise ConvertError(f"{name}: dialogue {vid!r} has no utterances")
        for m in MODS:
            a = utterances(d, m, vid)
            if a.shape[0] != n:
                raise ConvertError(f"{name}: dialogue {vid!r}: '{m}' has {a.shape[0]} utterances, "
                                   f"'label' has {n}")
            if m in width and a.shape[1] != width[m]:
                raise ConvertError(f"{name}: dialogue {vid!r}: '{m}' has width {a.shape[1]}, "
                                   f"earlier dialogues {width[m]}")
            width[m] = a.shape[1]
            if not np.all(np.isfinite(a)):
                raise ConvertError(f"{name}: dialogue {vid!r}: '{m}' holds NaN or Inf")
            feats[m].append(a)
        labels.append(lab)
        offsets.append(offsets[-1] + n)
    if not vids:
        raise ConvertError(f"{name}: the split lists no dialogues")
    out = {m: np.ascontiguousarray(np.concatenate(feats[m]), dtype=np.float32) for m in MODS}
    out["labels"] = np.concatenate(labels).astype(np.float32)
    out["dialogs"] = np.asarray(offsets, dtype=np.float32)
    if offsets[-1] >= 1 << 24:
        raise ConvertError(f"{name}: {offsets[-1]} utterances do not fit float32 offsets exactly")
    return out


def convert(pkl, out_dir):
    d = load_pickle(pkl)
    if not isinstance(d, dict):
        raise ConvertError(f"{pkl}: expected a dict, found {type(d).__name__}")
    for key in ("trainVid", "testVid", "label") + MODS:
        if key not in d:
            raise ConvertError(f"{pkl}: missing key '{key}' (have: {', '.join(map(str, d.keys()))})")
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for split, key in SPLITS:
        if key not in d:
            continue
        arrays = convert_split(d, list(d[key]), split)
        for k, a in arrays.items():
            path = os.path.join(out_dir, f"{split}_{k}.npy")
            np.save(path, a)
            written.append(path)
        n, nd = arrays["labels"].shape[0], arrays["dialogs"].shape[0] - 1
        dims = "/".join(str(arrays[m].shape[1]) for m in MODS)
        print(f"{split}: {n} utterances in {nd} dialogues, d text/audio/visual = {dims}")
    return written


def main(argv):
    if len(argv) != 3 or argv[1] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr if len(argv) != 2 else sys.stdout)
        return 0 if len(argv) == 2 else 2
    try:
        convert(argv[1], argv[2])
    except (OSError, pickle.UnpicklingError, EOFError, ConvertError, ValueError) as e:
        print(f"upstream_to_npy: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

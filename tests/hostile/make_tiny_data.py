#!/usr/bin/env python3
"""Writes a tiny `balm train --data` set (train and test splits, 3 classes,
d = 6/4/3) into the folder given as argv[1]. Standard library only, so it
runs under any python3. Deterministic."""
import os, struct, sys

def npy(path, shape, vals):
    hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }" % (
        '%d,' % shape[0] if len(shape) == 1 else ', '.join(map(str, shape)))
    total = (10 + len(hdr) + 1 + 63) // 64 * 64
    hdr += ' ' * (total - 10 - len(hdr) - 1) + '\n'
    with open(path, 'wb') as f:
        f.write(b'\x93NUMPY\x01\x00' + struct.pack('<H', len(hdr)) + hdr.encode())
        f.write(struct.pack('<%df' % len(vals), *vals))

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
seed = 12345
def rnd():
    global seed
    seed = (seed * 1103515245 + 12345) & 0x7fffffff
    return seed / 0x7fffffff - 0.5
for split, n in (('train', 96), ('test', 48)):
    labels = [float(i % 3) for i in range(n)]
    for name, d in (('text', 6), ('audio', 4), ('visual', 3)):
        npy(os.path.join(out, '%s_%s.npy' % (split, name)), (n, d),
            [rnd() + (labels[i] if j == 0 else 0) for i in range(n) for j in range(d)])
    npy(os.path.join(out, split + '_labels.npy'), (n,), labels)
    offs = list(range(0, n, 8)) + [n]
    npy(os.path.join(out, split + '_dialogs.npy'), (len(offs),), [float(o) for o in offs])

#!/usr/bin/python3
"""Writes the seed corpora of the fuzz harnesses into tests/fuzz-corpus/<target>/.
Deterministic; rerun after a format change. Uses only the standard library and
the small golden cases in tests/data/golden."""
import gzip, os, struct, zlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
OUT = os.path.join(ROOT, 'tests', 'fuzz-corpus')
GOLD = os.path.join(ROOT, 'tests', 'data', 'golden')


def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data)


def npy(shape, values=None, descr='<f4', fortran=False, major=1):
    hdr = "{'descr': '%s', 'fortran_order': %s, 'shape': (%s), }" % (
        descr, 'True' if fortran else 'False',
        ''.join('%d, ' % s for s in shape).rstrip(' ') if len(shape) != 1 else '%d,' % shape[0])
    pre = 10 if major == 1 else 12
    total = (pre + len(hdr) + 1 + 63) // 64 * 64
    hdr = hdr + ' ' * (total - pre - len(hdr) - 1) + '\n'
    lenb = struct.pack('<H', len(hdr)) if major == 1 else struct.pack('<I', len(hdr))
    n = 1
    for s in shape:
        n *= s
    if values is None:
        values = [0.5 * i - 1 for i in range(n)]
    return b'\x93NUMPY' + bytes([major, 0]) + lenb + hdr.encode() + struct.pack('<%df' % len(values), *values)


# --- npy
put('fuzz_npy', 'scalar0d.npy', npy(()))
put('fuzz_npy', 'vec3.npy', npy((3,)))
put('fuzz_npy', 'empty.npy', npy((0,)))
put('fuzz_npy', 'mat2x3.npy', npy((2, 3)))
put('fuzz_npy', 'v2_3d.npy', npy((2, 1, 2), major=2))
put('fuzz_npy', 'v3_8d.npy', npy((1,) * 8, major=3))
put('fuzz_npy', 'fortran.npy', npy((2, 2), fortran=True))
put('fuzz_npy', 'f8.npy', npy((1,), values=[0, 0], descr='<f8'))
put('fuzz_npy', 'truncated.npy', npy((4,))[:-3])
for case, arr in (('fcm_tiny', 'amask'), ('kl_reg', 'fused'), ('coeff_step', 'prev_kl')):
    with open(os.path.join(GOLD, case, arr + '.npy'), 'rb') as f:
        put('fuzz_npy', 'golden_%s_%s.npy' % (case, arr), f.read())

# --- idx: first byte = mode (bits 0-1: ndim-1, bit 2: expect 28x28)
def idx(dims, payload=None):
    n = 1
    for d in dims:
        n *= d
    payload = bytes((7 * i) & 0xff for i in range(n)) if payload is None else payload
    return bytes([0, 0, 8, len(dims)]) + b''.join(struct.pack('>I', d) for d in dims) + payload

gz = lambda b: gzip.compress(b, mtime=0)
put('fuzz_idx', 'labels_plain', bytes([0]) + idx((5,)))
put('fuzz_idx', 'labels_gz', bytes([0]) + gz(idx((5,))))
put('fuzz_idx', 'images_gz', bytes([2 | 4]) + gz(idx((2, 28, 28))))
put('fuzz_idx', 'images_any', bytes([2]) + idx((1, 3, 2)))
put('fuzz_idx', 'images_prefix', bytes([2 | 4 | 0x10]) + gz(idx((3, 28, 28))))
put('fuzz_idx', 'dims4', bytes([3]) + gz(idx((1, 2, 2, 2))))
put('fuzz_idx', 'trailing', bytes([0]) + idx((2,)) + b'x')

# --- checkpoints for the harness's model: enc_l.w 12, enc_l.b 4, scalar 1
META = (3, 2, 1, 4, 2, 1, 1, 0)
def ckpt(tensors, meta=META, version=2):
    b = b'BALMCKPT' + struct.pack('<III', version, 0x01020304, len(tensors))
    b += struct.pack('<8Q', *meta)
    for name, vals in tensors:
        b += struct.pack('<I', len(name)) + name.encode() + struct.pack('<Q', len(vals))
        b += struct.pack('<%df' % len(vals), *vals)
    return b + struct.pack('<I', zlib.crc32(b) & 0xffffffff)

good = [('enc_l.w', [0.25 * i for i in range(12)]), ('enc_l.b', [1, 2, 3, 4]), ('scalar', [7])]
put('fuzz_ckpt', 'good', b'\0' + ckpt(good))
put('fuzz_ckpt', 'good_fixcrc', b'\xc5' + ckpt(good))
put('fuzz_ckpt', 'wrong_meta', b'\0' + ckpt(good, meta=(3, 2, 1, 4, 2, 1, 0, 0)))
put('fuzz_ckpt', 'wrong_name', b'\xc5' + ckpt([('enc_l.x', good[0][1])] + good[1:]))
put('fuzz_ckpt', 'short_count', b'\xc5' + ckpt([good[0], ('enc_l.b', [1, 2, 3]), good[2]]))
put('fuzz_ckpt', 'truncated', b'\0' + ckpt(good)[:50])
put('fuzz_ckpt', 'version1', b'\0' + ckpt(good, version=1))

# --- balm train argv vectors, arguments separated by NUL bytes
for name, args in (('defaults', []), ('full', ['--epochs', '3', '--batch-size=8', '--lr', '1e-3',
                   '--tau', '0.3', '--rho', '1.4', '--missing-rates', '0.5,0.7,0.3',
                   '--mask-order', 'shuffled', '--isa', 'avx2', '--seed', '7', '--no-noise']),
                   ('bad_rate', ['--missing-rates', '1,0,0']), ('help', ['--help']),
                   ('window', ['--start-epoch', '2', '--end-epoch', '5', '--limit=100'])):
    put('fuzz_train_flags', name, b'\0'.join(a.encode() for a in args))

# --- balm check cases as archives: case.txt, then "\n@@ name\n" + npy bytes
for case in ('coeff_first', 'coeff_step', 'kl_cls_small', 'kl_reg', 'cos_zero', 'fcm_tiny'):
    d = os.path.join(GOLD, case)
    with open(os.path.join(d, 'case.txt'), 'rb') as f:
        blob = f.read().rstrip(b'\n')
    for fn in sorted(os.listdir(d)):
        if fn.endswith('.npy'):
            with open(os.path.join(d, fn), 'rb') as f:
                blob += b'\n@@ ' + fn[:-4].encode() + b'\n' + f.read()
    put('fuzz_check', case, blob)
put('fuzz_check', 'no_kind', b'note: x\nN: 3\n')
put('fuzz_check', 'unknown_kind', b'kind: teapot\n')

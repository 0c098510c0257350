#!/usr/bin/env python3
"""Writes the GGUF fuzzing seed corpus (small, deterministic files) into fuzz/corpus/gguf."""
import os, struct

def s(x: bytes) -> bytes:
    return struct.pack('<Q', len(x)) + x

def kv(key, typ, payload):
    return s(key.encode()) + struct.pack('<I', typ) + payload

def gguf(kvs, tensors, data, version=3, align=32):
    out = struct.pack('<IIQQ', 0x46554747, version, len(tensors), len(kvs)) + b''.join(kvs)
    for name, dims, typ, off in tensors:
        out += s(name.encode()) + struct.pack('<I', len(dims)) + b''.join(struct.pack('<q', d) for d in dims)
        out += struct.pack('<IQ', typ, off)
    out += b'\0' * ((-len(out)) % align)
    return out + data

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'corpus', 'gguf')
os.makedirs(here, exist_ok=True)
base_kvs = [
    kv('general.architecture', 8, s(b'llama')),
    kv('llama.block_count', 4, struct.pack('<I', 1)),
    kv('llama.embedding_length', 4, struct.pack('<I', 32)),
    kv('llama.rope.freq_base', 6, struct.pack('<f', 10000.0)),
    kv('flag', 7, b'\x01'),
    kv('i64', 11, struct.pack('<q', -5)),
    kv('f64', 12, struct.pack('<d', 0.5)),
    kv('tokenizer.ggml.tokens', 9, struct.pack('<IQ', 8, 3) + s(b'a') + s(b'bc') + s(b'')),
    kv('tokenizer.ggml.scores', 9, struct.pack('<IQ', 6, 3) + struct.pack('<3f', 0, -1, -2)),
    kv('nested', 9, struct.pack('<IQ', 9, 1) + struct.pack('<IQ', 5, 2) + struct.pack('<2i', 1, 2)),
]
f32 = struct.pack('<32f', *range(32))
q8 = struct.pack('<H', 0x3c00) + bytes(range(32))
seeds = {
    'v3_full.gguf': gguf(base_kvs, [('w', [32], 0, 0), ('q', [32, 1], 8, 128)], f32 + q8 + b'\0' * 30),
    'v2_meta_only.gguf': gguf(base_kvs[:4], [], b'', version=2),
    'aligned64.gguf': gguf(base_kvs[:1] + [kv('general.alignment', 4, struct.pack('<I', 64))],
                           [('w', [16], 0, 0)], f32[:64], align=64),
    'k_quant.gguf': gguf(base_kvs[:1], [('k', [256], 12, 0)], b'\x00\x3c\x00\x00' + bytes(140)),
}
for name, data in seeds.items():
    with open(os.path.join(here, name), 'wb') as f:
        f.write(data)

"""Golden token shards for tests/shards.rs and tests/prepare_text.rs.

Installed in the venv for it: `pip install tiktoken` (0.14.0; numpy was there). The GPT-2
ranks file is the one tiktoken-rs compiles in, as in scripts/golden_tokenizer.py.

Writes under tests/data/shards/:
  edge.bin      a shard of EDGE_TOKENS written as nanoGPT's data/fineweb.py and
                modded-nanogpt's write_datafile do (numpy int32[256] header 20240520, 1, n;
                then uint16 tokens);
  corpus/       a tiny corpus: plain text (one in a subfolder), a gzip file, and a dictd
                dictionary (dictzip: gzip with the RA extra field) with its .index;
  expected/     the shards `pisa data prepare text corpus --name tiny --val-tokens 40
                --shard-tokens 64` must write, made here independently: each document is
                <|endoftext|> then tiktoken's r50k_base ids (fineweb.py's tokenize), files
                sorted by path, a dictionary's documents its index's entries in file order.

When target/release/pisa exists it is run on the corpus and its shards are read back with
numpy as modded-nanogpt's _load_data_shard reads them, and must hold the same tokens.
Run: python scripts/golden_shards.py
"""

import gzip
import hashlib
import os
import shutil
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

import numpy as np

from golden_tokenizer import crate_assets, tiktoken_r50k

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "data" / "shards"
EOT = 50256
VAL_TOKENS = 40
SHARD_TOKENS = 64

# Also tests/shards.rs's `edge_tokens()`.
EDGE_TOKENS = [0, 1, 2, 255, 256, 50255, 50256, 65534, 65535] + [(i * 7919) % 65536 for i in range(1000)]


def write_datafile(filename, toks):
    """nanoGPT data/fineweb.py's write_datafile."""
    assert len(toks) < 2**31, "token count too large"
    header = np.zeros(256, dtype=np.int32)
    header[0] = 20240520
    header[1] = 1
    header[2] = len(toks)
    toks_np = np.array(toks, dtype=np.uint16)
    assert (np.array(toks) == toks_np).all(), "token ids must fit uint16"
    with open(filename, "wb") as f:
        f.write(header.tobytes())
        f.write(toks_np.tobytes())


def load_data_shard(file):
    """modded-nanogpt train_gpt.py's _load_data_shard, in numpy."""
    header = np.fromfile(file, dtype=np.int32, count=256)
    assert header[0] == 20240520, "magic number mismatch in the data .bin file"
    assert header[1] == 1, "unsupported version"
    num_tokens = int(header[2])
    with open(file, "rb") as f:
        f.seek(256 * 4)
        tokens = np.frombuffer(f.read(), dtype=np.uint16)
    assert len(tokens) == num_tokens, "number of tokens read does not match header"
    return tokens


B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def dictd_b64(n):
    digits = B64[n % 64]
    while n >= 64:
        n //= 64
        digits = B64[n % 64] + digits
    return digits


def dictzip(data):
    """A one-chunk dictzip file: gzip with FEXTRA holding the RA (random access) field."""
    body = zlib.compressobj(9, zlib.DEFLATED, -15)
    deflated = body.compress(data) + body.flush()
    ra = struct.pack("<HHH", 1, len(data), 1) + struct.pack("<H", len(deflated))
    extra = b"RA" + struct.pack("<H", len(ra)) + ra
    header = b"\x1f\x8b\x08\x04" + b"\x00" * 4 + b"\x02\x03" + struct.pack("<H", len(extra)) + extra
    return header + deflated + struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)


LONG_ENTRY = "Introduction\n   " + "A long first entry, so that later offsets need two base-64 digits. " * 3 + "\n"
ENTRIES = [  # (headwords, text), in the order of the .dict file
    (["00-database-info"], LONG_ENTRY),
    (["zebra"], "zebra\n   A striped animal of Africa.\n\n"),
    (["apple", "pomme"], "apple\n   A fruit; see {pomme}. It's red.\n\n"),
    (["café"], "café\n   A coffee house ☕ — small, 24/7.\n"),
]


def write_corpus(corpus):
    if corpus.exists():
        shutil.rmtree(corpus)
    (corpus / "sub").mkdir(parents=True)
    (corpus / "a.txt").write_text("Hello world.\n\nA second paragraph, naïve and 日本語.\n", encoding="utf-8")
    (corpus / "sub" / "b.rst.txt").write_text(".. note::\n\n   Don't panic; 42 is the answer.\n", encoding="utf-8")
    (corpus / "c.txt.gz").write_bytes(gzip.compress("Compressed text: the quick brown fox.\n".encode(), mtime=0))
    data, index = b"", []
    for headwords, text in ENTRIES:
        raw = text.encode("utf-8")
        index += [(h, len(data), len(raw)) for h in headwords]
        data += raw
    (corpus / "words.dict.dz").write_bytes(dictzip(data))
    index.sort()
    (corpus / "words.index").write_text("".join(f"{h}\t{dictd_b64(o)}\t{dictd_b64(n)}\n" for h, o, n in index), encoding="utf-8")


def documents(corpus):
    """The corpus's documents in the order `pisa data prepare text` reads them."""
    files = sorted((p for p in corpus.rglob("*") if p.is_file()), key=lambda p: p.relative_to(corpus).parts)
    docs = []
    for f in files:
        if f.name.endswith(".index"):
            continue
        if f.name.endswith(".dict.dz"):
            text = gzip.decompress(f.read_bytes())
            entries = set()
            for line in (f.parent / (f.name[: -len(".dict.dz")] + ".index")).read_text(encoding="utf-8").splitlines():
                _, o, n = line.split("\t")
                o = sum(B64.index(c) * 64**i for i, c in enumerate(reversed(o)))
                n = sum(B64.index(c) * 64**i for i, c in enumerate(reversed(n)))
                entries.add((o, o + n))
            docs += [text[a:b].decode("utf-8") for a, b in sorted(entries)]
        elif f.name.endswith(".gz"):
            docs.append(gzip.decompress(f.read_bytes()).decode("utf-8"))
        else:
            docs.append(f.read_text(encoding="utf-8"))
    return docs


def expected_shards(enc, docs):
    stream = []
    for doc in docs:  # fineweb.py's tokenize: [eot] + encode_ordinary(text)
        stream += [EOT] + enc.encode_ordinary(doc)
    shards = {"tiny_val_000000.bin": stream[:VAL_TOKENS]}
    for k, start in enumerate(range(VAL_TOKENS, len(stream), SHARD_TOKENS)):
        shards[f"tiny_train_{k + 1:06d}.bin"] = stream[start : start + SHARD_TOKENS]
    return shards


def main():
    enc = tiktoken_r50k(crate_assets())
    OUT.mkdir(parents=True, exist_ok=True)
    write_datafile(OUT / "edge.bin", EDGE_TOKENS)
    assert list(load_data_shard(OUT / "edge.bin")) == EDGE_TOKENS

    corpus = OUT / "corpus"
    write_corpus(corpus)
    docs = documents(corpus)
    assert len(docs) == 3 + len(ENTRIES), docs
    shards = expected_shards(enc, docs)
    expected = OUT / "expected"
    if expected.exists():
        shutil.rmtree(expected)
    expected.mkdir()
    for name, toks in shards.items():
        write_datafile(expected / name, toks)
    total = sum(len(t) for t in shards.values())
    print(f"{len(docs)} documents, {total} tokens in {len(shards)} shards under {expected}")

    pisa = ROOT / "target" / "release" / "pisa"
    if not pisa.exists():
        print(f"{pisa} not built: the Rust-written shards were not read back")
        return
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        args = [str(pisa), "data", "prepare", "text", str(corpus), "--out", str(out), "--name", "tiny"]
        args += ["--val-tokens", str(VAL_TOKENS), "--shard-tokens", str(SHARD_TOKENS)]
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
        written = sorted(p.name for p in out.glob("*.bin"))
        assert written == sorted(shards), (written, sorted(shards))
        for name, toks in shards.items():
            assert list(load_data_shard(out / name)) == toks, name
            assert hashlib.sha256((out / name).read_bytes()).digest() == hashlib.sha256((expected / name).read_bytes()).digest()
    print("pisa's shards read back with numpy: the same tokens, the same bytes")


if __name__ == "__main__":
    main()

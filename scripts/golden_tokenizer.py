"""Golden GPT-2 token ids for tests/tokenizer_golden.rs.

Installed in the venv for it: `pip install tiktoken` (0.14.0; needs no torch).

Each text is encoded two ways, which must agree:
  1. tiktoken's own `r50k_base` encoding (`tiktoken.get_encoding("r50k_base")`), its ranks
     file checked by tiktoken against the SHA-256 in `tiktoken_ext/openai_public.py`; the
     file is the one tiktoken-rs compiles in, put in tiktoken's cache (no network here);
  2. GPT-2's original `encoder.py` algorithm (openai/gpt-2 src/encoder.py: the original
     pre-tokenizer pattern, byte-to-unicode map, lowest-rank-first merges of `vocab.bpe`),
     with ids numbered as tiktoken's `data_gym_to_mergeable_bpe_ranks` numbers them (the
     256 bytes in `bytes_to_unicode` order, then the merges), checked against the
     `encoder.json` that tiktoken-rs ships.

Writes tests/data/tokenizer/gpt2.json: [{"text": ..., "ids": [...]}].
Run: python scripts/golden_tokenizer.py
"""

import glob
import hashlib
import json
import os
import random
import shutil
import tempfile

import regex

# tiktoken_ext/openai_public.py's expected hashes.
R50K_URL = "https://openaipublic.blob.core.windows.net/encodings/r50k_base.tiktoken"
VOCAB_BPE_SHA256 = "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "data", "tokenizer", "gpt2.json")


def crate_assets():
    home = os.environ.get("CARGO_HOME", os.path.expanduser("~/.cargo"))
    found = sorted(glob.glob(os.path.join(home, "registry/src/*/tiktoken-rs-0.12.*/assets")))
    if not found:
        raise SystemExit("tiktoken-rs 0.12 is not in the cargo registry: run `cargo fetch` first")
    return found[-1]


def tiktoken_r50k(assets):
    cache = tempfile.mkdtemp()
    key = hashlib.sha1(R50K_URL.encode()).hexdigest()
    shutil.copy(os.path.join(assets, "r50k_base.tiktoken"), os.path.join(cache, key))
    os.environ["TIKTOKEN_CACHE_DIR"] = cache
    import tiktoken

    return tiktoken.get_encoding("r50k_base")


def bytes_to_unicode():
    """GPT-2's reversible map of the 256 bytes to printable characters."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return bs, [chr(c) for c in cs]


class OriginalGpt2:
    """openai/gpt-2's Encoder, ids by rank."""

    def __init__(self, assets):
        with open(os.path.join(assets, "vocab.bpe"), "rb") as f:
            data = f.read()
        assert hashlib.sha256(data).hexdigest() == VOCAB_BPE_SHA256, "vocab.bpe is not GPT-2's"
        merges = [tuple(line.split()) for line in data.decode().split("\n")[1:] if line]
        bs, cs = bytes_to_unicode()
        self.byte_encoder = dict(zip(bs, cs))
        self.encoder = {c: i for i, c in enumerate(cs)}
        for k, (a, b) in enumerate(merges):
            self.encoder[a + b] = 256 + k
        self.ranks = {m: k for k, m in enumerate(merges)}
        with open(os.path.join(assets, "encoder.json")) as f:
            shipped = json.load(f)
        shipped.pop("<|endoftext|>")
        assert shipped == self.encoder, "encoder.json disagrees with vocab.bpe"
        self.pattern = regex.compile(GPT2_PATTERN)

    def bpe(self, token):
        word = list(token)
        while len(word) > 1:
            pairs = {(word[i], word[i + 1]) for i in range(len(word) - 1)}
            best = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if best not in self.ranks:
                break
            merged, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                    merged.append(word[i] + word[i + 1])
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        return word

    def encode(self, text):
        ids = []
        for piece in self.pattern.findall(text):
            mapped = "".join(self.byte_encoder[b] for b in piece.encode("utf-8"))
            ids.extend(self.encoder[t] for t in self.bpe(mapped))
        return ids


def texts():
    fixed = [
        "Hello world",
        "",
        " ",
        "  leading and trailing   ",
        "multiple\n\nnewlines\n\n\n and\ttabs\t\t\r\n  \n",
        "Numbers: 0 7 42 123 1234 12345 3.14159 -2.5e10 1,000,000 2024-05-20 0x1F ½ ٣",
        "Contractions: I'm can't won't they'll we've you're he'd it's 'S 'T O'Neil rock'n'roll '''",
        "Unicode: naïve café résumé Ωmega 日本語のテキスト 한국어 Ελληνικά русский текст",
        "Emoji 😀👍🏽 and ZWJ 👨\u200d👩\u200d👧, combining e\u0301, BOM \ufeff.",
        "<|endoftext|> written in a text is ordinary text<|endoftext|>",
        "Non-breaking\u00a0space, em\u2003space, line\u2028separator\u2029paragraph",
        "def f(x):\n    if x:\n        return x ** 2  # square\n\treturn None\n",
        "   .. function:: open(file, mode='r', buffering=-1)\n\n      Open *file* and return a\n"
        "      :term:`file object`.  See :ref:`tut-files`.\n",
        "Abacus \\Ab\"a*cus\\, n.; pl. L. {Abaci}, E. {Abacuses}. [L.\n   abacus, fr. Gr. ?.]\n"
        "   1. A table or tray strewn with sand.\n      [1913 Webster]\n\n",
        "a" * 300 + " " * 17 + "!" * 9 + "\n" * 5,
    ]
    rng = random.Random(20240520)
    alphabet = list("abcXYZ019 .,'!?-_()\n\t\r") + list("  \n") + ["é", "ß", "語", "😀", "\u00a0", "\u3000", "Ω"]
    words = ["the", " the", "The", "ing", " don't", "'ll", "42", " 1999", "\n\n", "  ", "é", "😀"]
    randoms = ["".join(rng.choice(alphabet) for _ in range(n)) for n in (50, 500, 3000)]
    randoms += ["".join(rng.choice(words) for _ in range(400))]
    return fixed + randoms


def main():
    assets = crate_assets()
    enc = tiktoken_r50k(assets)
    original = OriginalGpt2(assets)
    cases = []
    for text in texts():
        ids = enc.encode_ordinary(text)
        assert ids == original.encode(text), f"tiktoken and GPT-2's encoder.py disagree on {text!r}"
        assert enc.decode(ids) == text
        cases.append({"text": text, "ids": ids})
    assert cases[0]["ids"] == [15496, 995]
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(cases, f, ensure_ascii=True, indent=None)
        f.write("\n")
    print(f"wrote {len(cases)} cases ({sum(len(c['ids']) for c in cases)} tokens) to {OUT}")


if __name__ == "__main__":
    main()

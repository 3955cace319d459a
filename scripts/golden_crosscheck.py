#!/usr/bin/env python3
"""Cross-checks pisa against a plain PyTorch training loop (tests/crosscheck.rs).

For every spec tests/data/crosscheck/<case>.toml (an MLP on MNIST, full batch, one worker,
f64, starting from train.init) this script builds the same network in PyTorch, loads the
same initial weights, trains the spec's iterations with torch.optim (SGD or Adam, the
spec's hyperparameters) and writes what pisa's metrics.csv must show, row by row, to
tests/data/crosscheck/<case>-losses.csv: the mean cross-entropy on the training set
(train_loss, in evaluation mode) and on the test set (test_loss), at w⁰ and after each
iteration.

What it reproduces of pisa's classification task:
  - pixels scaled to [0, 1] and normalised by the mean and (unbiased) standard deviation
    of the training pixels;
  - with one worker and batch_size = 0 every iteration's batch is the whole training set,
    so the order of pisa's seeded shuffle only changes the order of sums (rounding);
  - row ℓ of metrics.csv is the loss at the point after ℓ iterations; the loss is summed
    over the samples and divided by their number.

The committed inputs are made once, when absent: the data (the first 256 + 64 digits of
the MNIST test split in ../shared/data/mnist, as IDX files in
tests/data/crosscheck/mnist/) and the initial weights (PyTorch's default nn.Linear
initialisation, seeded, in tests/data/crosscheck/init.safetensors). Delete them to
redraw them. The script needs only torch and numpy (it reads and writes the safetensors
format itself).

Usage (inside the venv of scripts/env.sh):
    python scripts/golden_crosscheck.py [--mnist DIR]

To cross-check another run the same way, write its initial weights with
`pisa init SPEC --out FILE.safetensors` (or save a PyTorch state_dict as safetensors and
set train.init = FILE) and load them here with read_safetensors.
"""
import argparse
import gzip
import json
import pathlib
import struct
import tomllib

import numpy as np
import torch
import torch.nn.functional as F

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "crosscheck"
CASES = ["sgd", "adam"]
TRAIN, TEST = 256, 64
INIT_SEED = 20260101

# safetensors: an 8-byte little-endian header length, a JSON header (name → dtype, shape,
# data_offsets), then the raw little-endian data.
DTYPES = {"F64": torch.float64, "F32": torch.float32, "I64": torch.int64}


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        blob = t.numpy().tobytes()
        dtype = next(k for k, v in DTYPES.items() if v == t.dtype)
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def read_safetensors(path):
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    header.pop("__metadata__", None)
    body = raw[8 + n :]
    out = {}
    for name, h in header.items():
        start, end = h["data_offsets"]
        dtype = DTYPES[h["dtype"]]
        values = np.frombuffer(body[start:end], dtype=torch.empty(0, dtype=dtype).numpy().dtype)
        out[name] = torch.from_numpy(values.copy()).reshape(h["shape"])
    return out


def read_idx(path):
    raw = gzip.decompress(path.read_bytes())
    ndims = raw[3]
    dims = struct.unpack(f">{ndims}I", raw[4 : 4 + 4 * ndims])
    return np.frombuffer(raw[4 + 4 * ndims :], dtype=np.uint8).reshape(dims)


def write_idx(path, array):
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    # mtime=0: the same bytes on every run
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes(), mtime=0))


FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def make_data(mnist):
    folder = DATA / "mnist"
    if all((folder / f).exists() for pair in FILES.values() for f in pair):
        return
    folder.mkdir(parents=True, exist_ok=True)
    images = read_idx(mnist / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(mnist / "t10k-labels-idx1-ubyte.gz")
    for split, rows in [("train", slice(0, TRAIN)), ("test", slice(TRAIN, TRAIN + TEST))]:
        write_idx(folder / FILES[split][0], images[rows])
        write_idx(folder / FILES[split][1], labels[rows])


def load_data():
    folder = DATA / "mnist"
    split = {}
    for name, (images, labels) in FILES.items():
        x = torch.from_numpy(read_idx(folder / images).copy())
        y = torch.from_numpy(read_idx(folder / labels).astype(np.int64))
        split[name] = (x, y)
    # As pisa: pixels / 255, then (x − mean) / std with the training pixels' mean and
    # unbiased standard deviation, computed in f64.
    unit = split["train"][0].to(torch.float64) / 255.0
    mean, std = unit.mean().item(), unit.std().item()
    normalise = lambda x: (x.to(torch.float64) / 255.0 - mean) / std
    return {name: (normalise(x), y) for name, (x, y) in split.items()}


class Mlp(torch.nn.Module):
    """pisa's `mlp`: flatten, fc1 … fc{k+1}, the activation after every hidden layer."""

    def __init__(self, widths, activation):
        super().__init__()
        self.layers = len(widths) - 1
        for i in range(self.layers):
            setattr(self, f"fc{i + 1}", torch.nn.Linear(widths[i], widths[i + 1], dtype=torch.float64))
        self.activation = {"relu": torch.relu, "tanh": torch.tanh}[activation]

    def forward(self, x):
        x = x.flatten(1)
        for i in range(self.layers):
            x = getattr(self, f"fc{i + 1}")(x)
            if i + 1 < self.layers:
                x = self.activation(x)
        return x


def optimizer(spec, params):
    o = dict(spec["optimizer"])
    name = o.pop("name")
    if name == "sgd":
        return torch.optim.SGD(params, **o)
    if name == "adam":
        betas = (o.pop("beta1", 0.9), o.pop("beta2", 0.999))
        return torch.optim.Adam(params, betas=betas, **o)
    raise SystemExit(f"golden_crosscheck.py: no torch.optim counterpart written for {name!r}")


def losses(model, data):
    """Mean cross-entropy of each split, in evaluation mode: summed, then divided."""
    model.eval()
    with torch.no_grad():
        out = [F.cross_entropy(model(x), y, reduction="sum").item() / len(y) for x, y in data.values()]
    model.train()
    return out


def golden(case, data):
    spec = tomllib.loads((DATA / f"{case}.toml").read_text())
    t, m = spec["train"], spec["model"]
    assert t["workers"] == 1 and t.get("batch_size", 0) == 0 and t["dtype"] == "f64", case
    x, y = data["train"]
    classes = 1 + max(int(y.max()), int(data["test"][1].max()))
    widths = [x[0].numel(), *m.get("hidden", []), classes]
    model = Mlp(widths, m.get("activation", "relu"))
    model.load_state_dict(read_safetensors(DATA / t["init"]), strict=True)
    opt = optimizer(spec, model.parameters())
    rows = [losses(model, data)]
    for _ in range(t["iterations"]):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        rows.append(losses(model, data))
    lines = ["iteration,train_loss,test_loss"]
    lines += [f"{i},{a!r},{b!r}" for i, (a, b) in enumerate(rows)]
    path = DATA / f"{case}-losses.csv"
    path.write_text("\n".join(lines) + "\n")
    print(f"{path.relative_to(ROOT)}: train_loss {rows[0][0]:.6f} → {rows[-1][0]:.6f}")


def make_init(data):
    path = DATA / "init.safetensors"
    if path.exists():
        return
    spec = tomllib.loads((DATA / f"{CASES[0]}.toml").read_text())
    x, y = data["train"]
    classes = 1 + max(int(y.max()), int(data["test"][1].max()))
    torch.manual_seed(INIT_SEED)
    widths = [x[0].numel(), *spec["model"].get("hidden", []), classes]
    write_safetensors(path, Mlp(widths, "relu").state_dict())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mnist", type=pathlib.Path, default=ROOT.parent / "shared" / "data" / "mnist",
                        help="folder of the MNIST test split (only to make the data subset)")
    args = parser.parse_args()
    torch.set_default_dtype(torch.float64)
    make_data(args.mnist)
    data = load_data()
    make_init(data)
    for case in CASES:
        golden(case, data)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Cross-checks pisa's federated baselines against NIID-Bench's training loops
(tests/federated_crosscheck.rs).

NIID-Bench (Li, Diao, Chen & He, ICDE 2022; github.com/Xtra-Computing/NIID-Bench @ 61b901a,
experiments.py) is what pisa's fedavg, fedprox, fednova and scaffold follow
(src/optim/federated/). This script re-implements, in plain PyTorch and in f64, its client
loops `train_net`, `train_net_fedprox`, `train_net_fednova` and `train_net_scaffold` and the
server updates of its `__main__` (the `fed_avg_freqs` average; SCAFFOLD's c update in
`local_train_net_scaffold`; FedNova's d_total_round / coeff step), statement for statement:
  - a fresh torch.optim.SGD(lr, momentum = rho, weight_decay = reg) per client and round;
  - FedProx: (mu/2)·torch.norm(param − global_param)**2 per parameter added to the loss;
  - SCAFFOLD: after every optimizer.step, param ← param − lr·(c − c_i); after the local
    steps c_i⁺ = c_i − c + (x − y)/(cnt·lr), Δc_i = c_i⁺ − c_i; the server
    c ← c + Σ_i Δc_i / n_parties and x ← Σ_i p_i y_i. c and every c_i start as one model
    of random weights (NIID-Bench builds them with init_nets; with every client taking
    part each round this is the same as starting from 0, see scaffold.rs);
  - FedNova: a_i = (τ − ρ(1 − ρ^τ)/(1 − ρ))/(1 − ρ) with τ the client's step count,
    d_i = (x − y_i)/a_i, x ← x − (Σ p_i a_i)·Σ p_i d_i, p_i = n_i/Σ n_j;
and writes what pisa's metrics.csv must show for the global model, row by row, to
tests/data/crosscheck/<case>-losses.csv (columns optimizer, iteration, train_loss,
test_loss: the mean cross-entropy on the clients' training samples and on the test set, in
evaluation mode, at x⁰ and after each round).

The cases are the specs tests/data/crosscheck/<case>.toml (CASES: an MNIST MLP, 4 clients,
f64, starting from train.init, every client each round), each run with every algorithm of
ALGORITHMS (its name and extra [optimizer] keys; the same table is ALGORITHMS in
tests/federated_crosscheck.rs). Batch order cannot matter: with batch_size = 0 each local
step's batch is the client's whole share, so NIID-Bench's loop over the DataLoader's
batches is a loop over τ_i identical full-share batches, and its step counters (cnt, tau)
count them. τ_i is pisa's count for the spec (`local_steps`, or with `local_epochs` E
round(E·|D_i|/|D_min|), federated/mod.rs), taken as given: the check is of the algorithms
for given local work, and with unequal τ_i it covers FedNova's normalisation, which equal
steps reduce to FedAvg. The clients' samples are pisa's partition (partition.json of a
one-round pisa run of the spec, kept as tests/data/crosscheck/<case>-partition.json; the
test checks that pisa still draws it), so both sides train on the same data.

Differences from NIID-Bench that change only the order of floating-point sums: clients
run and are summed in client order (NIID-Bench sums in the order of its shuffled
selection); the data and the initial weights are golden_crosscheck.py's (pixels
normalised as pisa does; NIID-Bench's ToTensor() alone is a choice of data, not of
algorithm). Not checked here: how pisa draws mini-batches and turns epochs into steps when
b < |D_i| (its convention is documented in federated/mod.rs), and partial participation
(pisa's draw of the clients is its own).

Usage (inside the venv of scripts/env.sh; the partitions, when absent, come from a pisa
binary, default target/release/pisa):
    python scripts/golden_federated.py [--pisa PATH]
"""
import argparse
import copy
import json
import pathlib
import shutil
import subprocess
import tempfile
import tomllib

import torch
import torch.nn.functional as F

from golden_crosscheck import DATA, ROOT, Mlp, load_data, losses, read_safetensors

CASES = ["federated-iid", "federated-skew"]
# optimizer name → extra [optimizer] keys (= ALGORITHMS in tests/federated_crosscheck.rs)
ALGORITHMS = {"fedavg": {}, "fedprox": {"mu": 0.1}, "fednova": {}, "scaffold": {}}
# Seeds the random weights NIID-Bench gives SCAFFOLD's c and c_i (init_nets).
CONTROL_SEED = 20260102


def criterion(out, target):
    return F.cross_entropy(out, target)  # nn.CrossEntropyLoss(): the batch mean


def sgd(net, a):
    return torch.optim.SGD(net.parameters(), lr=a["lr"], momentum=a["rho"], weight_decay=a["reg"])


def train_net(net, batches, a):
    """experiments.py train_net (FedAvg)."""
    optimizer = sgd(net, a)
    for x, target in batches:
        optimizer.zero_grad()
        loss = criterion(net(x), target)
        loss.backward()
        optimizer.step()


def train_net_fedprox(net, global_net, batches, a):
    """experiments.py train_net_fedprox."""
    optimizer = sgd(net, a)
    mu = a["mu"]
    global_weight_collector = list(global_net.parameters())
    for x, target in batches:
        optimizer.zero_grad()
        loss = criterion(net(x), target)
        fed_prox_reg = 0.0
        for param_index, param in enumerate(net.parameters()):
            fed_prox_reg += (mu / 2) * torch.norm(param - global_weight_collector[param_index]) ** 2
        loss += fed_prox_reg
        loss.backward()
        optimizer.step()


def train_net_scaffold(net, global_model, c_local, c_global, batches, a):
    """experiments.py train_net_scaffold: returns c_delta_para."""
    optimizer = sgd(net, a)
    cnt = 0
    c_global_para = c_global.state_dict()
    c_local_para = c_local.state_dict()
    for x, target in batches:
        optimizer.zero_grad()
        loss = criterion(net(x), target)
        loss.backward()
        optimizer.step()
        net_para = net.state_dict()
        for key in net_para:
            net_para[key] = net_para[key] - a["lr"] * (c_global_para[key] - c_local_para[key])
        net.load_state_dict(net_para)
        cnt += 1
    c_new_para = c_local.state_dict()
    c_delta_para = copy.deepcopy(c_local.state_dict())
    global_model_para = global_model.state_dict()
    net_para = net.state_dict()
    for key in net_para:
        c_new_para[key] = c_new_para[key] - c_global_para[key] + (global_model_para[key] - net_para[key]) / (cnt * a["lr"])
        c_delta_para[key] = c_new_para[key] - c_local_para[key]
    c_local.load_state_dict(c_new_para)
    return c_delta_para


def train_net_fednova(net, global_model, batches, a):
    """experiments.py train_net_fednova: returns a_i and norm_grad (d_i)."""
    optimizer = sgd(net, a)
    rho = a["rho"]
    tau = 0
    for x, target in batches:
        optimizer.zero_grad()
        loss = criterion(net(x), target)
        loss.backward()
        optimizer.step()
        tau = tau + 1
    a_i = (tau - rho * (1 - pow(rho, tau)) / (1 - rho)) / (1 - rho)
    global_model_para = global_model.state_dict()
    net_para = net.state_dict()
    norm_grad = copy.deepcopy(global_model.state_dict())
    for key in norm_grad:
        norm_grad[key] = torch.true_divide(global_model_para[key] - net_para[key], a_i)
    return a_i, norm_grad


def average(global_model, nets, n_list):
    """The `fed_avg_freqs` update of FedAvg, FedProx and SCAFFOLD."""
    global_para = global_model.state_dict()
    fed_avg_freqs = [n / sum(n_list) for n in n_list]
    for idx, net in enumerate(nets):
        net_para = net.state_dict()
        if idx == 0:
            for key in net_para:
                global_para[key] = net_para[key] * fed_avg_freqs[idx]
        else:
            for key in net_para:
                global_para[key] += net_para[key] * fed_avg_freqs[idx]
    global_model.load_state_dict(global_para)


def federated(alg, a, make_model, clients, rounds, evaluate):
    """NIID-Bench's `__main__` for `alg` with every client selected each round; `clients`
    holds each client's batches of a round (its whole share, τ_i times)."""
    global_model = make_model()
    nets = [make_model() for _ in clients]
    n_list = [len(batches[0][1]) for batches in clients]
    if alg == "scaffold":
        torch.manual_seed(CONTROL_SEED)
        c_global = make_model(fresh=True)
        c_nets = [make_model() for _ in clients]
        for c in c_nets:
            c.load_state_dict(c_global.state_dict())
    rows = [evaluate(global_model)]
    for _ in range(rounds):
        global_para = global_model.state_dict()
        for net in nets:
            net.load_state_dict(global_para)
        if alg == "fedavg":
            for net, batches in zip(nets, clients):
                train_net(net, batches, a)
            average(global_model, nets, n_list)
        elif alg == "fedprox":
            for net, batches in zip(nets, clients):
                train_net_fedprox(net, global_model, batches, a)
            average(global_model, nets, n_list)
        elif alg == "scaffold":
            total_delta = copy.deepcopy(global_model.state_dict())
            for key in total_delta:
                total_delta[key] = 0.0
            for net, c_local, batches in zip(nets, c_nets, clients):
                c_delta_para = train_net_scaffold(net, global_model, c_local, c_global, batches, a)
                for key in total_delta:
                    total_delta[key] += c_delta_para[key]
            for key in total_delta:
                total_delta[key] /= len(clients)  # args.n_parties
            c_global_para = c_global.state_dict()
            for key in c_global_para:
                c_global_para[key] += total_delta[key]
            c_global.load_state_dict(c_global_para)
            average(global_model, nets, n_list)
        elif alg == "fednova":
            a_list, d_list = zip(*(train_net_fednova(net, global_model, batches, a) for net, batches in zip(nets, clients)))
            total_n = sum(n_list)
            d_total_round = copy.deepcopy(global_model.state_dict())
            for key in d_total_round:
                d_total_round[key] = 0.0
            for i in range(len(clients)):
                d_para = d_list[i]
                for key in d_para:
                    d_total_round[key] += d_para[key] * n_list[i] / total_n
            coeff = 0.0
            for i in range(len(clients)):
                coeff = coeff + a_list[i] * n_list[i] / total_n
            updated_model = global_model.state_dict()
            for key in updated_model:
                updated_model[key] -= coeff * d_total_round[key]
            global_model.load_state_dict(updated_model)
        else:
            raise SystemExit(f"golden_federated.py: no NIID-Bench loop written for {alg!r}")
        rows.append(evaluate(global_model))
    return rows


def local_steps(o, sizes):
    """τ_i as pisa counts them (federated/mod.rs, `Rounds::new`) for full-batch steps, where
    the task's iterations per epoch n is 1: `local_steps`, or max(1, round(E·α_i/α_min))."""
    if "local_steps" in o:
        return [o["local_steps"]] * len(sizes)
    epochs = o.get("local_epochs", 5.0)
    return [max(1, int(epochs * s / min(sizes) + 0.5)) for s in sizes]  # Rust rounds half up


def partition(case, spec, pisa):
    """Each client's sample indices: pisa's partition.json of the spec, kept beside it."""
    kept = DATA / f"{case}-partition.json"
    if not kept.exists():
        with tempfile.TemporaryDirectory() as out:
            args = [pisa, "run", DATA / f"{case}.toml", "--data-dir", DATA, "--out", out]
            subprocess.run([*map(str, args), "--set", "train.iterations=1", "--run-id", "partition"], check=True)
            shutil.copy(pathlib.Path(out) / spec["name"] / "partition" / "partition.json", kept)
    record = json.loads(kept.read_text())
    return [torch.tensor(c["indices"], dtype=torch.int64) for c in record["clients"]]


def golden(case, data, pisa):
    spec = tomllib.loads((DATA / f"{case}.toml").read_text())
    t, m = spec["train"], spec["model"]
    assert t["batch_size"] == 0 and t["dtype"] == "f64" and spec["optimizer"]["participation"] == 1, case
    x, y = data["train"]
    classes = 1 + max(int(y.max()), int(data["test"][1].max()))
    widths = [x[0].numel(), *m["hidden"], classes]
    init = read_safetensors(DATA / t["init"])

    def make_model(fresh=False):
        model = Mlp(widths, m.get("activation", "relu"))
        if not fresh:
            model.load_state_dict(init, strict=True)
        return model

    shares = partition(case, spec, pisa)
    assert len(shares) == t["workers"], case
    held = torch.cat(shares)
    split = {"train": (x[held], y[held]), "test": data["test"]}
    evaluate = lambda model: losses(model, split)
    lines = ["optimizer,iteration,train_loss,test_loss"]
    for alg, extra in ALGORITHMS.items():
        o = {**spec["optimizer"], **extra}
        a = {"lr": o["lr"], "rho": o["momentum"], "reg": o["weight_decay"], "mu": o.get("mu")}
        steps = local_steps(o, [len(s) for s in shares])
        clients = [[(x[s], y[s])] * k for s, k in zip(shares, steps)]
        rows = federated(alg, a, make_model, clients, t["iterations"], evaluate)
        lines += [f"{alg},{i},{tr!r},{te!r}" for i, (tr, te) in enumerate(rows)]
        print(f"{case} {alg}: τ = {steps}, train_loss {rows[0][0]:.6f} → {rows[-1][0]:.6f}")
    path = DATA / f"{case}-losses.csv"
    path.write_text("\n".join(lines) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pisa", type=pathlib.Path, default=ROOT / "target" / "release" / "pisa",
                        help="the pisa binary that writes the partitions when they are absent")
    args = parser.parse_args()
    torch.set_default_dtype(torch.float64)
    data = load_data()
    for case in CASES:
        golden(case, data, args.pisa)


if __name__ == "__main__":
    main()

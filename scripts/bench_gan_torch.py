#!/usr/bin/env python3
"""Plain PyTorch running the training iteration of pisa's WGAN task (Table 4;
src/tasks/gan.rs) on the same spec, for scripts/bench-gan, which times pisa beside it.

The models: the PISA code's Generator and Discriminator (Tracy-Wang7/PISA,
WGAN/WGAN/main_SPiAM.py), imported from scripts/golden_gan.py where they are re-typed
(64×64, and the 32×32 variant with one block fewer, as src/models/dcgan.rs builds them),
at the spec's nz, ngf, ndf, image_size, initialised by the scripts' weights_init under
torch.manual_seed(seed) (not pisa's draw: the timing does not depend on the values).

The data: the training images of the spec's Fashion-MNIST IDX files, resized once to
image_size² as src/tasks/gan_from_spec.rs does (bilinear, rounded to 8 bits) and held as
uint8; a batch is mapped to [−1, 1] per iteration (x/127.5 − 1) as pisa's to_network.
Each epoch a permutation (torch's generator, not pisa's ChaCha); iteration ℓ takes the
next m·b rows, worker i the i-th b of them, and draws its noise z_i [b, nz, 1, 1].

One iteration, as pisa's train loop and Gan task run it (src/train.rs, src/tasks/gan.rs,
src/optim/team.rs):
  critic turn     every worker: fake = G(z_i) without a graph (G in training mode, its
                  batch-norm statistics move), loss −mean D(x_i) + mean D(fake) with D in
                  training mode (real, then fake: two passes), backward into the critic's
                  gradients; the critic's step; its weights clamped to ±clip_value.
  generator turn  when ℓ mod n_critic = 0 (ℓ counted within the epoch): every worker
                  loss −mean D(G(z_i)) on the same z_i, backward into the generator's
                  parameters only (backward(inputs=…), as pisa's run_backward over the
                  generator's variables); the generator's step.
  adam (m = 1)    torch.optim.Adam on one flat [P] buffer per network (the parameters are
                  views of it, as pisa's FlatParams; bench_vision_torch.flat_views).
  sisa (m ≥ 1)    bench_vision_torch.Sisa per network, the ADMM update of
                  src/optim/admm step for step (the same in-place passes over [P] and
                  [m, P] buffers): begin_iteration forms w (2.9), the critic's w is
                  clamped, then for each worker the point is copied into the network
                  (FlatParams::load), the gradient taken into the zeroed flat buffer and
                  consumed by local_update; end_iteration, the clamp again (Team::settle
                  clamps after begin and after end).
Not done here: evaluation and scoring (scripts/bench-gan times those apart), checkpoints,
data reading, model construction.

Timed: each iteration with time.perf_counter() (after torch.cuda.synchronize() on CUDA)
and time.process_time() (the process's CPU time, all threads); the JSON line gives the
totals with and without the first iteration (its warm-up). Images of an iteration: the
m·b real images of its critic turn.

    python scripts/bench_gan_torch.py --spec SPEC [--iterations N] [--threads 1]
        [--device cpu|cuda]
"""
import argparse
import json
import os
import sys
import time
import tomllib

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_vision_torch import HYPERS, Sisa, flat_views, load_split  # noqa: E402
from golden_gan import Generator32, Generator64, WganCritic, weights_init  # noqa: E402


def training_images(data_dir, size):
    """uint8 [N, 1, size, size]: the training split resized as gan_from_spec.rs's resized."""
    images, _ = load_split(data_dir, "train")
    x = images.unsqueeze(1)
    if x.shape[-1] == size:
        return x
    parts = [F.interpolate(c.float(), size=(size, size), mode="bilinear", align_corners=False)
             .round().clamp(0, 255).to(torch.uint8) for c in x.split(4096)]
    return torch.cat(parts)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--spec", required=True, help="the Table 4 spec pisa runs (kind wgan)")
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="cpu or cuda (cuda:N)")
    args = ap.parse_args()
    if args.iterations < 2:
        raise SystemExit("--iterations must be at least 2 (the first is reported apart)")

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    spec = tomllib.load(open(args.spec, "rb"))
    if spec["model"]["kind"] != "wgan":
        raise SystemExit(f"{args.spec}: model {spec['model']['kind']}; this script runs wgan")
    if spec["data"]["kind"] != "fashion_mnist":
        raise SystemExit(f"{args.spec}: data {spec['data']['kind']}; this script reads fashion_mnist")
    seed = int(spec.get("seed", 1))
    g, t = spec["gan"], spec["train"]
    nz, ngf, ndf, size = int(g["nz"]), int(g["ngf"]), int(g["ndf"]), int(g["image_size"])
    n_critic, clip = int(g["n_critic"]), float(g["clip_value"])
    m, b = int(t["workers"]), int(t["batch_size"])
    opt_name = spec["optimizer"]["name"]
    if opt_name not in ("sisa", "adam"):
        raise SystemExit(f"{args.spec}: optimizer {opt_name}; this script runs sisa and adam")
    if opt_name == "adam" and m != 1:
        raise SystemExit("adam: train.workers = 1 only")
    h = dict(HYPERS[opt_name], **{k: v for k, v in spec["optimizer"].items() if k != "name"})

    train = training_images(spec["data"]["path"], size).to(device)
    n_train = train.shape[0]
    per_epoch = -(-n_train // (m * b))

    torch.manual_seed(seed)
    generator = (Generator64 if size == 64 else Generator32)(nz, ngf, 1).to(device)
    critic = WganCritic(1, ndf, size).to(device)
    generator.apply(weights_init)
    critic.apply(weights_init)
    generator.train()
    critic.train()
    players = {}
    for name, net in (("critic", critic), ("generator", generator)):
        flat, grads = flat_views(net)
        if opt_name == "sisa":
            opt = Sisa(flat, [1.0 / m] * m, float(h["sigma0"]), float(h["rho"]),
                       float(h["gamma"]), int(h["k0"]), int(h["scheme"]), float(h["beta"]),
                       float(h["eta"]), float(h["lambda"]), float(h["mu"]))
        else:
            flat.grad = grads
            opt = torch.optim.Adam([flat], lr=h["lr"], betas=(h["beta1"], h["beta2"]),
                                   eps=h["eps"], weight_decay=h["weight_decay"],
                                   amsgrad=bool(h["amsgrad"]))
        players[name] = (flat, grads, opt, list(net.parameters()))
    counts = {k: v[0].numel() for k, v in players.items()}

    def critic_loss(real, z):
        with torch.no_grad():
            fake = generator(z)
        return -critic(real).mean() + critic(fake).mean()

    def generator_loss(z):
        return -critic(generator(z)).mean()

    def turn(name, losses, clamp):
        """One player's step over the m workers; losses[i]() is worker i's loss."""
        flat, grads, opt, params = players[name]
        if opt_name == "adam":
            grads.zero_()
            losses[0]().backward(inputs=params)
            opt.step()
        else:
            opt.begin_iteration()
            if clamp:
                opt.w.clamp_(-clip, clip)
            for i, loss in enumerate(losses):
                flat.copy_(opt.w)
                grads.zero_()
                loss().backward(inputs=params)
                opt.local_update(i, grads)
            opt.end_iteration()
            if clamp:
                opt.w.clamp_(-clip, clip)
            flat.copy_(opt.w)
        if clamp and opt_name == "adam":
            flat.clamp_(-clip, clip)

    order = None
    gen = torch.Generator().manual_seed(seed)

    def iteration(it):
        nonlocal order
        if it % per_epoch == 0:
            order = torch.randperm(n_train, generator=gen).to(device)
        rows = order[(it % per_epoch) * m * b : (it % per_epoch + 1) * m * b]
        sub = rows.numel() // m
        pieces = [rows[i * sub : (i + 1) * sub if i + 1 < m else rows.numel()] for i in range(m)]
        reals = [train.index_select(0, p).float() / 127.5 - 1.0 for p in pieces]
        noise = [torch.randn(p.numel(), nz, 1, 1, device=device) for p in pieces]
        turn("critic", [lambda i=i: critic_loss(reals[i], noise[i]) for i in range(m)], True)
        if (it % per_epoch) % n_critic == 0:
            turn("generator", [lambda i=i: generator_loss(noise[i]) for i in range(m)], False)
        return rows.numel()

    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    seconds, cpu_seconds, images = [], [], []
    for it in range(args.iterations):
        sync()
        start, cpu_start = time.perf_counter(), time.process_time()
        images.append(iteration(it))
        sync()
        seconds.append(time.perf_counter() - start)
        cpu_seconds.append(time.process_time() - cpu_start)
        if it == 0:  # backward must accumulate into the flat buffers
            for flat, grads, _, params in players.values():
                assert params[0].grad.data_ptr() == grads.data_ptr(), "gradient left the buffer"

    rest_s, rest_images = sum(seconds[1:]), sum(images[1:])
    print(json.dumps({
        "optimizer": opt_name, "workers": m, "batch_size": b, "image_size": size,
        "ngf": ngf, "ndf": ndf, "n_critic": n_critic, "device": str(device),
        "threads": torch.get_num_threads(), "parameters": counts,
        "iterations": args.iterations,
        "generator_turns": sum(1 for it in range(args.iterations) if (it % per_epoch) % n_critic == 0),
        "seconds": round(sum(seconds), 4), "cpu_seconds": round(sum(cpu_seconds), 4),
        "after_first": {
            "iterations": args.iterations - 1, "images": rest_images,
            "seconds": round(rest_s, 4), "cpu_seconds": round(sum(cpu_seconds[1:]), 4),
            "images_per_s": round(rest_images / rest_s, 1),
            "ms_per_iteration": round(1000 * rest_s / (args.iterations - 1), 1),
        },
        "iteration_seconds": [round(s, 4) for s in seconds],
    }))


if __name__ == "__main__":
    main()

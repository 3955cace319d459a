#!/usr/bin/env python3
"""Goldens for the DCGAN players and the WGAN-GP penalty (src/models/dcgan.rs,
src/tasks/gradient_penalty.rs; checked by tests/gan_golden.rs).

The reference is the PISA repository's WGAN code (Tracy-Wang7/PISA,
WGAN/WGAN/main_SPiAM.py and WGAN/WGAN_GP/main_SPiAM.py, from the AdaBelief suite's
wgan and wgan-gp): its Generator, its two Discriminators and calc_gradient_penalty are
re-typed below for 64×64 images (as the scripts write them) and, with one up-/down-
sampling block fewer, for 32×32 images (ngf*4 at 4×4 → 8 → 16 → 32; the critic's last
block works on ndf*4 channels at 4×4).

What the scripts do, read from them:
  - the WGAN critic ends in Conv2d(ndf*8, 1, 4, 1, 0, bias=False) and nn.Sigmoid; the
    WGAN-GP critic keeps the same BatchNorm'd trunk and replaces the head by
    nn.Linear(4*4*8*ndf, 1) (with a bias) on the flattened features; both return [N];
  - weights_init touches modules whose class name contains "Conv" or "BatchNorm", so the
    GP critic's Linear keeps PyTorch's default initialisation;
  - calc_gradient_penalty: alpha = torch.rand(N, 1).view(-1, 1, 1, 1),
    x̂ = alpha·real + (1 − alpha)·fake as a new leaf, autograd.grad with grad_outputs of
    ones and create_graph=True, gradients.view(N, -1).norm(2, dim=1),
    penalty = ((norm − 1)²).mean() · LAMBDA, LAMBDA = 10; the critic is in training mode
    throughout (BatchNorm with batch statistics, as in every critic call of the scripts).

Weights and inputs are closed-form, so the Rust test computes them itself: parameter j
of parameters() (in that order), flat index k, gets
    1 + 0.1·sin(0.37k + j)   for a 1-D weight (BatchNorm),
    0.1·sin(0.37k + j)       for a bias,
    0.2·sin(0.37k + j)       for a weight of two or more dimensions;
z = sin(0.7i + 0.3) over the flat index i of [N, nz, 1, 1], the real images
x = 0.9·sin(0.11i)·cos(0.0037i) over [N, nc, S, S], and EPSILON below.

Files in tests/data/gan/ (two configurations: A = nc 1, 32×32, nz 4, ngf = ndf = 4;
B = nc 3, 64×64, nz 4, ngf = ndf = 2; batch N = 3; float64):
  {A,B}.safetensors, computed in this order (the running statistics depend on it):
    g.train     G(z) in training mode (images subsampled [:, :, ::4, ::4]),
                g.sum, g.sumsq its full sum and sum of squares;
    g.running   G's running statistics after that one forward pass (state_dict order,
                running_mean then running_var per BatchNorm);
    g.eval      G(z) in evaluation mode (subsampled), g.eval_sum its full sum;
    then for each critic T in {wgan, gp} (a fresh copy each):
    T.real, T.fake          D(x), D(G(z).detach()) in training mode;
    T.loss_d, T.grad_d      −mean(D(x)) + mean(D(G(z))) and its gradient w.r.t. the
                            critic's parameters (flat, parameters() order);
    T.running               the critic's running statistics after those two passes;
    T.eval                  D(x) in evaluation mode;
    T.loss_g, T.grad_g      −mean(D(G(z))) (G and D in training mode) and its gradient
                            w.r.t. the generator's parameters;
    gp.penalty, gp.grad_penalty   calc_gradient_penalty(D, x, G(z), EPSILON) and its
                            gradient w.r.t. the critic's parameters (after T.loss_g); the
                            linear head's bias does not reach ∇D, so autograd gives it no
                            gradient (None, written as zeros).
  modules.json   per configuration and module, the names and shapes of parameters() and
                 the running-statistics buffers of state_dict(); and the parameter counts
                 of the full-size models (nz 100, ngf = ndf = 64) measured here.

Usage (inside the venv of scripts/env.sh; needs only torch and numpy):
    python scripts/golden_gan.py
"""
import json
import pathlib
import sys

import torch
import torch.nn as nn
from torch import autograd

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from golden_crosscheck import write_safetensors  # noqa: E402

DATA = ROOT / "tests" / "data" / "gan"
N = 3
EPSILON = [0.25, 0.6, 0.9]
LAMBDA = 10  # main_SPiAM.py (WGAN_GP)
CONFIGS = {
    "A": dict(nc=1, size=32, nz=4, ngf=4, ndf=4),
    "B": dict(nc=3, size=64, nz=4, ngf=2, ndf=2),
}
SUBSAMPLE = 4


# ---- The scripts' modules, re-typed ------------------------------------------------------

class Generator64(nn.Module):
    def __init__(self, nz, ngf, nc):
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False),
            nn.BatchNorm2d(ngf * 8),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 4),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 2),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),
            nn.Tanh(),
        )

    def forward(self, input):
        return self.main(input)


class Generator32(nn.Module):
    """Generator64 without its first block: ngf*4 at 4×4."""

    def __init__(self, nz, ngf, nc):
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 4, 4, 1, 0, bias=False),
            nn.BatchNorm2d(ngf * 4),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 2),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),
            nn.Tanh(),
        )

    def forward(self, input):
        return self.main(input)


def trunk64(nc, ndf):
    return [
        nn.Conv2d(nc, ndf, 4, 2, 1, bias=False),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ndf * 2),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ndf * 4),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ndf * 8),
        nn.LeakyReLU(0.2, inplace=True),
    ]


def trunk32(nc, ndf):
    """trunk64 without its last block: ndf*4 at 4×4."""
    return [
        nn.Conv2d(nc, ndf, 4, 2, 1, bias=False),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ndf * 2),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ndf * 4),
        nn.LeakyReLU(0.2, inplace=True),
    ]


class WganCritic(nn.Module):
    """WGAN/WGAN/main_SPiAM.py's Discriminator."""

    def __init__(self, nc, ndf, size):
        super().__init__()
        trunk, top = (trunk64(nc, ndf), ndf * 8) if size == 64 else (trunk32(nc, ndf), ndf * 4)
        self.main = nn.Sequential(*trunk, nn.Conv2d(top, 1, 4, 1, 0, bias=False), nn.Sigmoid())

    def forward(self, input):
        output = self.main(input)
        return output.view(-1, 1).squeeze(1)


class GpCritic(nn.Module):
    """WGAN/WGAN_GP/main_SPiAM.py's Discriminator."""

    def __init__(self, nc, ndf, size):
        super().__init__()
        trunk, top = (trunk64(nc, ndf), ndf * 8) if size == 64 else (trunk32(nc, ndf), ndf * 4)
        self.main = nn.Sequential(*trunk)
        self.linear = nn.Linear(4 * 4 * top, 1)

    def forward(self, input):
        output = self.main(input)
        output = output.view(output.size(0), -1)
        output = self.linear(output)
        return output.view(-1, 1).squeeze(1)


def weights_init(m):
    classname = m.__class__.__name__
    if classname.find("Conv") != -1:
        m.weight.data.normal_(0.0, 0.02)
    elif classname.find("BatchNorm") != -1:
        m.weight.data.normal_(1.0, 0.02)
        m.bias.data.fill_(0)


def calc_gradient_penalty(netD, real_data, fake_data, alpha):
    """The script's function, with alpha (torch.rand(N, 1) there) as an argument."""
    alpha = alpha.view(-1, 1, 1, 1)
    interpolates = alpha * real_data + ((1 - alpha) * fake_data)
    interpolates = interpolates.detach().requires_grad_(True)
    disc_interpolates = netD(interpolates)
    gradients = autograd.grad(outputs=disc_interpolates, inputs=interpolates,
                              grad_outputs=torch.ones(disc_interpolates.size(), dtype=real_data.dtype),
                              create_graph=True, retain_graph=True, only_inputs=True)[0]
    gradients = gradients.view(gradients.size(0), -1)
    return ((gradients.norm(2, dim=1) - 1) ** 2).mean() * LAMBDA


# ---- Closed-form weights and inputs --------------------------------------------------------

def set_closed_form(module):
    with torch.no_grad():
        for j, (name, p) in enumerate(module.named_parameters()):
            s = torch.sin(0.37 * torch.arange(p.numel(), dtype=torch.float64) + j).reshape(p.shape)
            if p.dim() >= 2:
                p.copy_(0.2 * s)
            elif name.endswith("weight"):
                p.copy_(1 + 0.1 * s)
            else:
                p.copy_(0.1 * s)


def wave(shape, f):
    i = torch.arange(torch.Size(shape).numel(), dtype=torch.float64)
    return f(i).reshape(shape)


def running(module):
    return torch.cat([b.reshape(-1) for n, b in module.state_dict().items()
                      if n.endswith("running_mean") or n.endswith("running_var")])


def flat(grads):
    return torch.cat([g.reshape(-1) for g in grads])


def describe(module):
    return {
        "parameters": [[n, list(p.shape)] for n, p in module.named_parameters()],
        "buffers": [[n, list(b.shape)] for n, b in module.state_dict().items()
                    if n.endswith("running_mean") or n.endswith("running_var")],
    }


def modules(c):
    gen = (Generator64 if c["size"] == 64 else Generator32)(c["nz"], c["ngf"], c["nc"])
    return gen, WganCritic(c["nc"], c["ndf"], c["size"]), GpCritic(c["nc"], c["ndf"], c["size"])


def count(module):
    return sum(p.numel() for p in module.parameters())


def golden(c):
    gen, wgan, gp = modules(c)
    for m in (gen, wgan, gp):
        m.double()
        set_closed_form(m)
    out = {}
    z = wave([N, c["nz"], 1, 1], lambda i: torch.sin(0.7 * i + 0.3))
    x = wave([N, c["nc"], c["size"], c["size"]], lambda i: 0.9 * torch.sin(0.11 * i) * torch.cos(0.0037 * i))
    eps = torch.tensor(EPSILON, dtype=torch.float64).reshape(N, 1)

    fake = gen(z)
    assert fake.shape == (N, c["nc"], c["size"], c["size"])
    out["g.train"] = fake[:, :, ::SUBSAMPLE, ::SUBSAMPLE]
    out["g.sum"] = fake.sum()
    out["g.sumsq"] = (fake ** 2).sum()
    out["g.running"] = running(gen)
    gen.eval()
    with torch.no_grad():
        evaluated = gen(z)
    gen.train()
    out["g.eval"] = evaluated[:, :, ::SUBSAMPLE, ::SUBSAMPLE]
    out["g.eval_sum"] = evaluated.sum()

    for tag, critic in (("wgan", wgan), ("gp", gp)):
        real_out, fake_out = critic(x), critic(fake.detach())
        assert real_out.shape == (N,)
        loss_d = -torch.mean(real_out) + torch.mean(fake_out)
        out[f"{tag}.real"], out[f"{tag}.fake"], out[f"{tag}.loss_d"] = real_out, fake_out, loss_d
        out[f"{tag}.grad_d"] = flat(autograd.grad(loss_d, list(critic.parameters())))
        out[f"{tag}.running"] = running(critic)
        critic.eval()
        with torch.no_grad():
            out[f"{tag}.eval"] = critic(x)
        critic.train()
        loss_g = -torch.mean(critic(gen(z)))
        out[f"{tag}.loss_g"] = loss_g
        out[f"{tag}.grad_g"] = flat(autograd.grad(loss_g, list(gen.parameters())))
        if tag == "gp":
            penalty = calc_gradient_penalty(critic, x, fake.detach(), eps)
            out["gp.penalty"] = penalty
            # The linear head's bias does not reach ∇D: no gradient (zeros here).
            params = list(critic.parameters())
            grads = autograd.grad(penalty, params, allow_unused=True)
            assert [g is None for g in grads] == [n == "linear.bias" for n, _ in critic.named_parameters()]
            out["gp.grad_penalty"] = flat([torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)])
    return out


def main():
    DATA.mkdir(parents=True, exist_ok=True)
    described = {}
    for name, c in CONFIGS.items():
        gen, wgan, gp = modules(c)
        described[name] = dict(c, generator=describe(gen), wgan=describe(wgan), gp=describe(gp))
        tensors = golden(c)
        write_safetensors(DATA / f"{name}.safetensors", {k: v.reshape(-1) if v.dim() == 0 else v
                                                         for k, v in tensors.items()})
        print(name, {k: tuple(v.shape) for k, v in tensors.items() if v.numel() > 3})

    # The full-size models of the scripts (nz 100, ngf = ndf = 64) and their 32×32 variants.
    full = []
    for nc in (1, 3):
        for size in (32, 64):
            c = dict(nc=nc, size=size, nz=100, ngf=64, ndf=64)
            gen, wgan, gp = modules(c)
            for m in (gen, wgan, gp):
                m.apply(weights_init)
            full.append(dict(c, generator=count(gen), wgan=count(wgan), gp=count(gp)))
    described["full"] = full
    print(json.dumps(full))
    (DATA / "modules.json").write_text(json.dumps(described, indent=1) + "\n")


if __name__ == "__main__":
    main()

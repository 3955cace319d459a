#!/usr/bin/env python3
"""gymnasium and plain PyTorch doing what benches/rl.rs times in pisa (Figure 7's PPO on
MuJoCo), for scripts/bench-rl, which prints the two side by side.

Per environment (gymnasium 1.4.0, mujoco 3.17.0: the physics pisa ports):
  single   gymnasium.make(id) (TimeLimit 1000, OrderEnforcing, PassiveEnvChecker), reset
           with seed 1, then stepped with float32 actions drawn uniformly in the action
           space's bounds by numpy's default_rng(0) (100 at a time, inside the timed
           loop), reset whenever a step is terminated or truncated (the resets timed
           too). --warmup steps untimed, then blocks of 100 until --budget seconds have
           passed; steps / seconds.
  sync     gymnasium.vector.SyncVectorEnv of 8 gymnasium.make(id), autoreset_mode
           SAME_STEP (an ended environment is reset inside the step that ended it, as
           pisa's collect and Tianshou reset it: every step is 8 transitions), one random
           action each ([8, act] from default_rng(0)); --warmup/8 steps untimed, then
           blocks of 10 until the budget; 8 × steps / seconds.
  async    the same with gymnasium.vector.AsyncVectorEnv: 8 worker processes (shared
           memory, pipes), whatever the thread count.
  adam     one PPO mini-batch update as Tianshou's PPOPolicy.learn does it: Tianshou's
           MuJoCo actor and critic (two tanh MLPs [64, 64]; the actor's mean a linear
           layer, its σ = exp(sigma_param) independent of the state, sigma_param = −0.5;
           orthogonal init √2, the mean layer ×0.01, as mujoco_ppo.py), 64 random rows of
           a 2048-transition collect (random observations, actions, advantages, returns;
           log π_old of the actions at the initial weights) by indexing, the policy as
           torch.distributions.Independent(Normal(μ, σ), 1) (Tianshou's dist_fn), the
           clipped surrogate (ε 0.2, no advantage normalisation), the critic's squared
           error × vf_coef 0.25, the entropy × ent_coef 0, zero_grad, backward,
           clip_grad_norm_(0.5), torch.optim.Adam(lr=3e-4) over the networks' parameters,
           the losses read with .item() (as learn logs them). f32 CPU. Median ms over the
           iterations of --budget seconds after 20 untimed.
  sisa     the same network and loss with m = 4 sub-batches of 64 through SISA
           (bench_vision_torch.Sisa, the in-place passes of src/optim/admm, with the ε of
           src/optim/admm/precondition.rs added; σ⁰ 5, ρ 19995, γ 1, scheme 3, β 0.999,
           ε 1e-8): begin_iteration, 4 × (w into the flat parameters, zeroed flat
           gradient, loss, backward, clip_grad_norm_(0.5), local_update), end_iteration.
           Median ms per iteration.

    python scripts/bench_rl_torch.py [--threads 1] [--budget 3] [--warmup 1000]
        [--envs Ant-v4,...] [--json]
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

import gymnasium
import numpy as np
import torch
import torch.nn as nn
from torch.distributions import Independent, Normal

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_vision_torch import Sisa, flat_views  # noqa: E402

ENV_IDS = ["Ant-v4", "Humanoid-v4", "HalfCheetah-v4", "InvertedDoublePendulum-v4"]
TRAIN_ENVS, COLLECT, BATCH, HIDDEN = 8, 2048, 64, (64, 64)
CLIP_NORM, LR, EPS_CLIP, VF_COEF, ENT_COEF = 0.5, 3e-4, 0.2, 0.25, 0.0
UPDATE_WARMUP = 20
SISA_HYPERS = dict(sigma0=5.0, rho=19995.0, gamma=1.0, k0=1, scheme=3, beta=0.999,
                   eta=1e8, lam=0.0, mu=0.0)
SISA_EPS = 1e-8


def random_actions(rng, space, n):
    return rng.uniform(space.low, space.high, size=(n,) + space.shape).astype(np.float32)


def single(env_id, args):
    env = gymnasium.make(env_id)
    env.reset(seed=1)
    rng = np.random.default_rng(0)

    def steps(n):
        ended = 0
        for a in random_actions(rng, env.action_space, n):
            _, _, terminated, truncated, _ = env.step(a)
            if terminated or truncated:
                ended += 1
                env.reset()
        return ended

    steps(args.warmup)
    n = ended = 0
    start = time.perf_counter()
    while time.perf_counter() - start < args.budget:
        ended += steps(100)
        n += 100
    rate = n / (time.perf_counter() - start)
    env.close()
    return rate, n, ended


def vector(env_id, args, kind):
    cls = gymnasium.vector.SyncVectorEnv if kind == "sync" else gymnasium.vector.AsyncVectorEnv
    envs = cls([lambda: gymnasium.make(env_id)] * TRAIN_ENVS,
               autoreset_mode=gymnasium.vector.AutoresetMode.SAME_STEP)
    envs.reset(seed=0)
    rng = np.random.default_rng(0)
    space = envs.single_action_space

    def steps(n):
        ended = 0
        for _ in range(n):
            _, _, terminated, truncated, _ = envs.step(random_actions(rng, space, TRAIN_ENVS))
            ended += int(np.sum(terminated | truncated))
        return ended

    steps(args.warmup // TRAIN_ENVS)
    n = ended = 0
    start = time.perf_counter()
    while time.perf_counter() - start < args.budget:
        ended += steps(10)
        n += 10
    rate = n * TRAIN_ENVS / (time.perf_counter() - start)
    envs.close()
    return rate, n * TRAIN_ENVS, ended


def mlp(inp):
    layers, width = [], inp
    for h in HIDDEN:
        layers += [nn.Linear(width, h), nn.Tanh()]
        width = h
    return nn.Sequential(*layers)


class ActorCritic(nn.Module):
    """Tianshou's ActorProb(Net, unbounded=True, conditioned_sigma=False) and Critic(Net),
    in ActorCritic(actor, critic)'s parameter order (sigma_param first)."""

    def __init__(self, obs_dim, act_dim):
        super().__init__()
        self.sigma_param = nn.Parameter(torch.full((act_dim, 1), -0.5))
        self.actor = mlp(obs_dim)
        self.mu = nn.Linear(HIDDEN[-1], act_dim)
        self.critic = mlp(obs_dim)
        self.last = nn.Linear(HIDDEN[-1], 1)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.orthogonal_(m.weight, gain=math.sqrt(2))
                nn.init.zeros_(m.bias)
        with torch.no_grad():
            self.mu.weight.mul_(0.01)

    def dist(self, obs):
        mu = self.mu(self.actor(obs))
        shape = [1] * mu.dim()
        shape[1] = -1
        sigma = (self.sigma_param.view(shape) + torch.zeros_like(mu)).exp()
        return Independent(Normal(mu, sigma), 1)

    def value(self, obs):
        return self.last(self.critic(obs)).flatten()


def ppo_loss(net, b):
    """PPOPolicy.learn's loss on mini-batch b, and its parts."""
    dist = net.dist(b["obs"])
    ratio = (dist.log_prob(b["act"]) - b["logp_old"]).exp().float()
    ratio = ratio.reshape(ratio.size(0), -1).transpose(0, 1)
    surr1 = ratio * b["adv"]
    surr2 = ratio.clamp(1.0 - EPS_CLIP, 1.0 + EPS_CLIP) * b["adv"]
    clip_loss = -torch.min(surr1, surr2).mean()
    vf_loss = (b["returns"] - net.value(b["obs"])).pow(2).mean()
    ent_loss = dist.entropy().mean()
    loss = clip_loss + VF_COEF * vf_loss - ENT_COEF * ent_loss
    return loss, (clip_loss, vf_loss, ent_loss)


class SisaEps(Sisa):
    """bench_vision_torch.Sisa with the ε of SecondMoment::with_eps: σ + ρ(√m_i + ε)."""

    def __init__(self, w0, alphas, eps, **h):
        super().__init__(w0, alphas, h["sigma0"], h["rho"], h["gamma"], h["k0"], h["scheme"],
                         h["beta"], h["eta"], h["lam"], h["mu"])
        self.eps = eps

    def local_update(self, worker, grad):
        dual, moment = self.dual[worker], self.moment[worker]
        u = grad.add_(dual)
        out = self.scratch
        self.steps[worker] += 1
        torch.mul(u, u, out=out)
        moment.lerp_(out, 1.0 - self.beta)
        bias = 1.0 - self.beta ** self.steps[worker]  # scheme III
        torch.clamp_max(moment, self.eta * self.eta * bias, out=out)
        out.sqrt_()
        c = 1.0 / math.sqrt(bias)
        out.add_(self.eps / c)
        torch.add(self.neg_one, out, alpha=-self.rho * c / self.sigma, out=out)
        dual.addcdiv_(u, out)


def update(env_id, args, optimizer):
    env = gymnasium.make(env_id)
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    env.close()
    torch.manual_seed(0)
    net = ActorCritic(obs_dim, act_dim)
    params = list(net.parameters())
    count = sum(p.numel() for p in params)
    collect = {"obs": torch.randn(COLLECT, obs_dim), "act": torch.randn(COLLECT, act_dim),
               "adv": torch.randn(COLLECT), "returns": torch.randn(COLLECT)}
    with torch.no_grad():
        collect["logp_old"] = net.dist(collect["obs"]).log_prob(collect["act"])
    gen = torch.Generator().manual_seed(2)
    sink = [0.0]

    def minibatch():
        rows = torch.randint(0, COLLECT, (BATCH,), generator=gen)
        return {k: v[rows] for k, v in collect.items()}

    def gradient_step(b):
        loss, parts = ppo_loss(net, b)
        loss.backward()
        nn.utils.clip_grad_norm_(params, max_norm=CLIP_NORM)
        sink[0] += loss.item() + sum(p.item() for p in parts)

    if optimizer == "adam":
        opt = torch.optim.Adam(params, lr=LR)

        def iteration():
            b = minibatch()
            opt.zero_grad()
            gradient_step(b)
            opt.step()
    else:
        m = 4
        flat, grads = flat_views(net)
        opt = SisaEps(flat, [1.0 / m] * m, SISA_EPS, **SISA_HYPERS)

        def iteration():
            opt.begin_iteration()
            for i in range(m):
                b = minibatch()
                flat.copy_(opt.w)
                grads.zero_()
                gradient_step(b)
                opt.local_update(i, grads)
            opt.end_iteration()

    for _ in range(UPDATE_WARMUP):
        iteration()
    times = []
    start = time.perf_counter()
    while time.perf_counter() - start < args.budget:
        t = time.perf_counter()
        iteration()
        times.append(time.perf_counter() - t)
    assert math.isfinite(sink[0]), "the losses stayed finite"
    return statistics.median(times), len(times), count


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--budget", type=float, default=3.0, help="seconds per measurement")
    ap.add_argument("--warmup", type=int, default=1000, help="untimed environment steps")
    ap.add_argument("--envs", default=",".join(ENV_IDS))
    ap.add_argument("--json", action="store_true", help="one JSON line per environment")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    envs = [e for e in args.envs.split(",") if e]
    for e in envs:
        if e not in ENV_IDS:
            sys.exit(f"unknown environment {e!r}: {', '.join(ENV_IDS)}")
    print(f"# python RL benchmark: torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"gymnasium {gymnasium.__version__}, budget {args.budget} s per measurement, "
          f"warm-up {args.warmup} steps, f32 CPU", file=sys.stderr)
    rows = []
    for env_id in envs:
        r = {"env": env_id}
        r["single_steps_per_s"], r["single_steps"], r["single_episodes"] = single(env_id, args)
        for kind in ("sync", "async"):
            rate, n, ended = vector(env_id, args, kind)
            r[f"{kind}_transitions_per_s"], r[f"{kind}_transitions"] = rate, n
            r[f"{kind}_episodes"] = ended
        s, n, count = update(env_id, args, "adam")
        r["adam_ms"], r["adam_iters"], r["params"] = 1e3 * s, n, count
        s, n, _ = update(env_id, args, "sisa")
        r["sisa_ms"], r["sisa_iters"] = 1e3 * s, n
        rows.append(r)
        if args.json:
            print(json.dumps(r), flush=True)
        else:
            print(f"# {json.dumps(r)}", file=sys.stderr, flush=True)
    if not args.json:
        print("| env | P | single steps/s | sync ×8 transitions/s | async ×8 transitions/s "
              "| ppo adam ms | ppo sisa m=4 ms |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            print(f"| {r['env']} | {r['params']} | {r['single_steps_per_s']:.0f} "
                  f"| {r['sync_transitions_per_s']:.0f} | {r['async_transitions_per_s']:.0f} "
                  f"| {r['adam_ms']:.3f} | {r['sisa_ms']:.3f} |")


if __name__ == "__main__":
    main()

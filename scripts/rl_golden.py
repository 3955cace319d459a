#!/usr/bin/env python3
"""Goldens for the PPO/A2C pieces of pisa's reinforcement learning, from Tianshou itself.

Every number comes out of Tianshou's own classes and functions (nothing is re-typed), so the
files are independent of pisa's Rust code. Versions: tianshou 1.2.0 (the newest 1.x on PyPI),
torch 2.11.0, numpy 1.26.4 (tianshou 1.2.0 pins numpy<2), gymnasium 0.28.1 and mujoco 2.3.7
(tianshou 1.2.0 pins gymnasium 0.28, whose v4 environments need mujoco<3), python 3.11.

Writes into tests/data/rl/:
  gae.json               BasePolicy.compute_episodic_return (GAE, gamma 0.99, lambda 0.95) on a
                         VectorReplayBuffer of 3 envs x 7 steps, episodes ending mid-buffer by
                         termination and by truncation, one env's last step unfinished.
  running_mean_std.json  RunningMeanStd: a vector one (4 updates of [5, 3], then norm), the
                         constants VectorEnvNormObs uses, a scalar one as PGPolicy's ret_rms.
  actor_critic.json      the network of examples/mujoco/mujoco_ppo.py (5 observations, 2 actions,
                         hidden [64, 64], tanh), initialised as there, then perturbed: its
                         parameters, forward outputs on 6 observations, and the loss and gradients
                         of one minibatch of PPOPolicy.learn and of A2CPolicy.learn.
  action_mapping.json    BasePolicy.map_action (action_scaling, "clip") for the action spaces of
                         InvertedDoublePendulum-v4 and HalfCheetah-v4, and an asymmetric Box.

Float64 throughout: torch's default dtype is float64, and Tianshou's hard-wired float32 casts
(torch.as_tensor(obs, dtype=torch.float32) in its networks, `.float()` on PPO's ratio) are
made to give the default dtype while the goldens are computed (see `tianshou_in_f64`). With
float32 models, as Tianshou runs them, those casts change nothing.
Floats are written by json (Python's repr): they round-trip exactly.

Run (a venv of its own, not pisa's):
  python3 -m venv /work/ts-venv
  /work/ts-venv/bin/pip install torch==2.11.0 tianshou==1.2.0 'mujoco<3' imageio
  nice -n 10 /work/ts-venv/bin/python scripts/rl_golden.py
"""

import contextlib
import copy
import json
import pathlib

import gymnasium as gym
import numpy as np
import tianshou
import tianshou.utils.net.common
import tianshou.utils.net.continuous
import torch
from tianshou.data import Batch, VectorReplayBuffer
from tianshou.env import DummyVectorEnv, VectorEnvNormObs
from tianshou.policy import A2CPolicy, PPOPolicy
from tianshou.policy.base import BasePolicy
from tianshou.utils.net.common import ActorCritic, Net
from tianshou.utils.net.continuous import ActorProb, Critic
from tianshou.utils.statistics import RunningMeanStd
from torch import nn
from torch.distributions import Independent, Normal

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "data" / "rl"
SEED = 0
GAMMA, GAE_LAMBDA = 0.99, 0.95
STATE_DIM, ACTION_DIM, HIDDEN, BATCH = 5, 2, [64, 64], 6
# Perturbation of every parameter after mujoco_ppo.py's initialisation; the perturbed values are
# rounded to PARAM_DECIMALS decimals so that the 9285 parameters fit the size budget.
NOISE_STD, PARAM_DECIMALS = 0.02, 6
# Gradients of tensors with more than FULL_MAX elements are written at every GRAD_STRIDE-th flat
# index (with the tensor's sum and norm), to fit the size budget; smaller ones in full.
FULL_MAX, GRAD_STRIDE = 1024, 13
MAX_GRAD_NORM = 0.5
PPO_ARGS = dict(eps_clip=0.2, vf_coef=0.25, ent_coef=0.0, dual_clip=None, value_clip=False,
                advantage_normalization=False, recompute_advantage=False)
A2C_ARGS = dict(vf_coef=0.5, ent_coef=0.01)
MAPPED_SPACES = ["InvertedDoublePendulum-v4", "HalfCheetah-v4"]


def floats(values):
    """Nested lists of Python floats (json writes their repr)."""
    return np.asarray(values, dtype=np.float64).tolist()


def write(name, record):
    path = OUT / name
    path.write_text(json.dumps(record, separators=(",", ":")) + "\n")
    print(f"{path.relative_to(OUT.parent.parent.parent)}: {path.stat().st_size} bytes")


class _DefaultDtypeTorch:
    """torch, except that torch.float32 names the default dtype."""

    def __getattr__(self, name):
        return torch.get_default_dtype() if name == "float32" else getattr(torch, name)


@contextlib.contextmanager
def tianshou_in_f64():
    """Float64 default dtype; Tianshou's float32 casts in its nets and PPO follow it."""
    modules = [tianshou.utils.net.common, tianshou.utils.net.continuous]
    tensor_float = torch.Tensor.float
    torch.set_default_dtype(torch.float64)
    for module in modules:
        module.torch = _DefaultDtypeTorch()
    torch.Tensor.float = lambda self, *args, **kwargs: self.to(torch.get_default_dtype())
    try:
        yield
    finally:
        torch.Tensor.float = tensor_float
        for module in modules:
            module.torch = torch


def gae(rng):
    """compute_episodic_return on a VectorReplayBuffer filled as a Collector fills it."""
    n_env, steps = 3, 7
    terminated = np.zeros((steps, n_env), dtype=bool)
    truncated = np.zeros((steps, n_env), dtype=bool)
    terminated[2, 0] = True  # env 0: terminated mid-buffer, last step unfinished
    truncated[3, 1] = terminated[6, 1] = True  # env 1: truncated mid-buffer, terminated last
    terminated[1, 2] = truncated[1, 2] = True  # env 2: both at once, then truncated twice
    truncated[4, 2] = truncated[6, 2] = True
    rew = rng.normal(size=(steps, n_env))
    buffer = VectorReplayBuffer(total_size=n_env * steps, buffer_num=n_env)
    for t in range(steps):
        obs = np.full((n_env, 1), float(t))
        buffer.add(
            Batch(obs=obs, act=np.zeros((n_env, 1)), rew=rew[t], terminated=terminated[t],
                  truncated=truncated[t], obs_next=obs + 1.0, info=[{}] * n_env),
            buffer_ids=np.arange(n_env),
        )
    batch, indices = buffer.sample(0)  # as OnpolicyTrainer does: all of it, in index order
    v_s = rng.normal(size=len(indices))
    v_s_ = rng.normal(size=len(indices))
    returns, advantages = BasePolicy.compute_episodic_return(
        batch, buffer, indices, v_s_=torch.tensor(v_s_), v_s=torch.tensor(v_s),
        gamma=GAMMA, gae_lambda=GAE_LAMBDA)
    write("gae.json", {
        "gamma": GAMMA,
        "gae_lambda": GAE_LAMBDA,
        "n_env": n_env,
        "steps": steps,
        "indices": indices.tolist(),
        "env": (indices // steps).tolist(),
        "step": (indices % steps).tolist(),
        "rew": floats(batch.rew),
        "terminated": batch.terminated.tolist(),
        "truncated": batch.truncated.tolist(),
        "unfinished_index": buffer.unfinished_index().tolist(),
        "v_s": floats(v_s),
        "v_s_": floats(v_s_),
        "value_mask": BasePolicy.value_mask(buffer, indices).tolist(),
        "returns": floats(returns),
        "advantages": floats(advantages),
    })


def running_mean_std(rng, ret_norm_eps):
    """A vector RunningMeanStd (observations) and a scalar one (PGPolicy's ret_rms)."""
    rms = RunningMeanStd()
    initial = {"mean": rms.mean, "var": rms.var, "count": rms.count}
    updates = []
    for k in range(4):
        batch = rng.normal(loc=[0.5, -2.0, 3.0], scale=[1.0, 0.1, 4.0], size=(5, 3)) * (1 + k)
        rms.update(batch)
        updates.append({"batch": floats(batch), "mean": floats(rms.mean), "var": floats(rms.var),
                        "count": rms.count})
    norm_input = rng.normal(loc=[0.5, -2.0, 3.0], scale=[1.0, 0.1, 4.0], size=(5, 3))
    norm_input[0] = [200.0, -200.0, 3.0]  # clipped at +-clip_max
    vector = {"eps": rms.eps, "clip_max": rms.clip_max, "initial": initial, "updates": updates,
              "norm_input": floats(norm_input), "norm_output": floats(rms.norm(norm_input))}

    venv = VectorEnvNormObs(DummyVectorEnv([lambda: gym.make(MAPPED_SPACES[0])]))
    obs_norm = {"eps": venv.obs_rms.eps, "clip_max": venv.obs_rms.clip_max,
                "update_obs_rms": venv.update_obs_rms}

    ret_rms = RunningMeanStd()
    scalar_initial = {"mean": ret_rms.mean, "var": ret_rms.var, "count": ret_rms.count}
    scalar_updates = []
    for length in [21, 8, 13]:
        returns = rng.normal(loc=5.0, scale=3.0, size=length)
        ret_rms.update(returns)
        scalar_updates.append({"returns": floats(returns), "mean": float(ret_rms.mean),
                               "var": float(ret_rms.var), "count": ret_rms.count})
    scalar = {"initial": scalar_initial, "updates": scalar_updates, "ret_norm_eps": ret_norm_eps}
    write("running_mean_std.json",
          {"vector": vector, "vector_env_norm_obs": obs_norm, "scalar_ret_rms": scalar})


def dist_fn(loc_scale):
    loc, scale = loc_scale
    return Independent(Normal(loc, scale), 1)


def make_actor_critic():
    """examples/mujoco/mujoco_ppo.py's nets and initialisation, then perturbed and rounded."""
    torch.manual_seed(SEED)
    net_a = Net(STATE_DIM, hidden_sizes=HIDDEN, activation=nn.Tanh)
    actor = ActorProb(net_a, ACTION_DIM, unbounded=True)
    net_c = Net(STATE_DIM, hidden_sizes=HIDDEN, activation=nn.Tanh)
    critic = Critic(net_c)
    actor_critic = ActorCritic(actor, critic)
    torch.nn.init.constant_(actor.sigma_param, -0.5)
    for m in actor_critic.modules():
        if isinstance(m, torch.nn.Linear):
            torch.nn.init.orthogonal_(m.weight, gain=np.sqrt(2))
            torch.nn.init.zeros_(m.bias)
    for m in actor.mu.modules():
        if isinstance(m, torch.nn.Linear):
            torch.nn.init.zeros_(m.bias)
            m.weight.data.copy_(0.01 * m.weight.data)
    with torch.no_grad():
        for p in actor_critic.parameters():
            noisy = (p + NOISE_STD * torch.randn_like(p)).flatten().tolist()
            rounded = [float(f"{v:.{PARAM_DECIMALS}f}") for v in noisy]
            p.copy_(torch.tensor(rounded).reshape(p.shape))
    return actor_critic


def make_policy(policy_cls, actor_critic, max_grad_norm, args, action_space=None):
    """The policy as mujoco_ppo.py builds it, with an SGD(lr=1) optimiser."""
    optim = torch.optim.SGD(actor_critic.parameters(), lr=1.0, momentum=0.0)
    if action_space is None:
        action_space = gym.spaces.Box(-1.0, 1.0, (ACTION_DIM,))
    return policy_cls(actor=actor_critic.actor, critic=actor_critic.critic, optim=optim,
                      dist_fn=dist_fn, action_space=action_space,
                      discount_factor=GAMMA, gae_lambda=GAE_LAMBDA,
                      max_grad_norm=max_grad_norm, action_scaling=True,
                      action_bound_method="clip", **args)


def gradient_record(name, grad):
    flat = grad.flatten()
    stride = 1 if flat.numel() <= FULL_MAX else GRAD_STRIDE
    return {"name": name, "shape": list(grad.shape), "stride": stride,
            "values": floats(flat[::stride]), "sum": flat.sum().item(),
            "norm": flat.norm().item()}


def learn_once(policy_cls, args, actor_critic, batch, max_grad_norm):
    """One minibatch of policy.learn with SGD(lr=1): the stats and each parameter's .grad."""
    actor_critic = copy.deepcopy(actor_critic)
    policy = make_policy(policy_cls, actor_critic, max_grad_norm, args)
    before = {n: p.detach().clone() for n, p in actor_critic.named_parameters()}
    stats = policy.learn(copy.deepcopy(batch), batch_size=None, repeat=1)
    grads = {n: p.grad.detach().clone() for n, p in actor_critic.named_parameters()}
    for n, p in actor_critic.named_parameters():  # the step the optimiser took is -grad
        torch.testing.assert_close(before[n] - p.detach(), grads[n], rtol=0, atol=1e-12)
    return stats, grads


def loss_record(policy_cls, args, actor_critic, batch, part_names):
    stats, raw = learn_once(policy_cls, args, actor_critic, batch, None)
    _, clipped = learn_once(policy_cls, args, actor_critic, batch, MAX_GRAD_NORM)
    total_norm = torch.nn.utils.get_total_norm(list(raw.values())).item()
    assert total_norm > MAX_GRAD_NORM, "the clipping must act"
    return {
        "args": args,
        "max_grad_norm": MAX_GRAD_NORM,
        "loss": stats.loss.mean,
        **{part: getattr(stats, part).mean for part in part_names},
        "total_norm": total_norm,
        "grad": [gradient_record(n, g) for n, g in raw.items()],
        "grad_clipped": [gradient_record(n, g) for n, g in clipped.items()],
    }


def actor_critic_golden(rng):
    actor_critic = make_actor_critic()
    obs = rng.normal(size=(BATCH, STATE_DIM))
    act = rng.normal(scale=0.7, size=(BATCH, ACTION_DIM))
    with torch.no_grad():
        (mu, sigma), _ = actor_critic.actor(obs)
        value = actor_critic.critic(obs).flatten()
        dist = dist_fn((mu, sigma))
        log_prob, entropy = dist.log_prob(torch.tensor(act)), dist.entropy()
    # logp_old near log_prob: ratios on both sides of [1 - eps_clip, 1 + eps_clip]
    logp_old = log_prob.numpy() + np.array([-0.5, -0.1, 0.05, 0.15, 0.4, -0.3])
    batch = Batch(obs=obs, act=torch.tensor(act), info=Batch(),
                  logp_old=torch.tensor(logp_old), adv=torch.tensor(rng.normal(size=BATCH)),
                  returns=torch.tensor(rng.normal(size=BATCH)),
                  v_s=torch.tensor(rng.normal(size=BATCH)))
    write("actor_critic.json", {
        "state_dim": STATE_DIM,
        "action_dim": ACTION_DIM,
        "hidden_sizes": HIDDEN,
        "parameters": [{"name": n, "shape": list(p.shape), "values": floats(p.detach().flatten())}
                       for n, p in actor_critic.named_parameters()],
        "obs": floats(obs),
        "act": floats(act),
        "mu": floats(mu),
        "sigma": floats(sigma),
        "value": floats(value),
        "log_prob": floats(log_prob),
        "entropy": floats(entropy),
        "logp_old": floats(batch.logp_old),
        "adv": floats(batch.adv),
        "returns": floats(batch.returns),
        "v_s": floats(batch.v_s),
        "ppo": loss_record(PPOPolicy, PPO_ARGS, actor_critic, batch,
                           ["clip_loss", "vf_loss", "ent_loss"]),
        "a2c": loss_record(A2CPolicy, A2C_ARGS, actor_critic, batch,
                           ["actor_loss", "vf_loss", "ent_loss"]),
    })
    return actor_critic


def action_mapping(actor_critic):
    """map_action of a PPOPolicy (action_scaling=True, "clip") for each action space."""
    spaces = {env_id: gym.make(env_id).action_space for env_id in MAPPED_SPACES}
    spaces["asymmetric"] = gym.spaces.Box(np.array([-0.4, 0.0, -3.0], dtype=np.float32),
                                          np.array([0.4, 3.0, -1.0], dtype=np.float32))
    raw_values = np.array([-2.5, -1.0, -0.999, -0.3, 0.0, 0.1, 0.7, 1.0, 1.0000001, 3.0])
    records = []
    for env_id, space in spaces.items():
        policy = make_policy(PPOPolicy, actor_critic, MAX_GRAD_NORM, PPO_ARGS, space)
        dim = space.shape[0]
        raw = np.stack([np.roll(raw_values, k)[:dim] for k in range(len(raw_values))])
        mapped = policy.map_action(raw)
        records.append({"space": env_id, "low": floats(space.low), "high": floats(space.high),
                        "space_dtype": str(space.dtype), "mapped_dtype": str(mapped.dtype),
                        "raw": floats(raw), "mapped": floats(mapped)})
    write("action_mapping.json", {"action_scaling": True, "action_bound_method": "clip",
                                  "spaces": records})


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    np.random.seed(SEED)  # Batch.split's shuffle and dist.sample inside learn
    with tianshou_in_f64():
        gae(rng)
        actor_critic = actor_critic_golden(rng)
        running_mean_std(rng, make_policy(PPOPolicy, actor_critic, None, PPO_ARGS)._eps)
        action_mapping(actor_critic)
    print("tianshou", tianshou.__version__, "torch", torch.__version__, "numpy", np.__version__,
          "gymnasium", gym.__version__)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Goldens for the MuJoCo environments (src/rl/; checked by tests/mujoco_golden.rs).

Each of gymnasium 1.4.0's Ant-v4, Humanoid-v4, HalfCheetah-v4 and InvertedDoublePendulum-v4,
built by gymnasium.make (default arguments, TimeLimit of 1000 steps) on MuJoCo 3.17.0, runs
two episodes:
  seed 0  reset(seed=0), then actions until the episode terminates (HalfCheetah, which
          never does, for STEPS actions): the termination rule is crossed.
  seed 1  reset(seed=1), then STEPS actions, stepping on after a termination as gymnasium
          allows (a fallen robot keeps its contacts with the floor under test).
The actions are action_space.sample() after action_space.seed(seed): uniform in the Box.
They are cast to float64 before env.step, as pisa's environments take f64: given the Box's
float32, numpy would compute the control costs in float32 (NEP 50).

Reset noise in pisa comes from its own RNG, so each episode records the state gymnasium's
reset produced (qpos, qvel), and the Rust test starts there with reset_to.

Writes tests/data/mujoco/<id>.json: the environment's dimensions, action bounds, time limit and
episodes [{seed, qpos, qvel, observation, steps: [{action, observation, reward,
terminated, truncated, info}]}]. Floats are Python's repr (json's), which round-trip
exactly.

Run in pisa's venv (scripts/env.sh installs mujoco and gymnasium):
  . scripts/env.sh && python scripts/mujoco_golden.py
"""

import json
import pathlib

import gymnasium as gym
import mujoco
import numpy as np

GYMNASIUM_VERSION = "1.4.0"
MUJOCO_VERSION = "3.17.0"
ENVS = ["Ant-v4", "Humanoid-v4", "HalfCheetah-v4", "InvertedDoublePendulum-v4"]
SEEDS = [0, 1]
STEPS = 80
# Humanoid's observation has 376 values: fewer steps keep its file small.
STEPS_OF = {"Humanoid-v4": 30}
OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "data" / "mujoco"


def floats(values):
    return [float(v) for v in np.asarray(values, dtype=np.float64).ravel()]


def episode(env, env_id, seed):
    observation, _ = env.reset(seed=seed)
    data = env.unwrapped.data
    record = {
        "seed": seed,
        "qpos": floats(data.qpos),
        "qvel": floats(data.qvel),
        "observation": floats(observation),
        "steps": [],
    }
    env.action_space.seed(seed)
    until_terminated = seed == SEEDS[0]
    for _ in range(STEPS_OF.get(env_id, STEPS)):
        action = env.action_space.sample().astype(np.float64)
        observation, reward, terminated, truncated, info = env.step(action)
        record["steps"].append(
            {
                "action": floats(action),
                "observation": floats(observation),
                "reward": float(reward),
                "terminated": bool(terminated),
                "truncated": bool(truncated),
                "info": {key: float(value) for key, value in info.items()},
            }
        )
        if terminated and until_terminated:
            break
    return record


def main():
    assert gym.__version__ == GYMNASIUM_VERSION, gym.__version__
    assert mujoco.__version__ == MUJOCO_VERSION, mujoco.__version__
    OUT.mkdir(parents=True, exist_ok=True)
    for env_id in ENVS:
        env = gym.make(env_id)
        space = env.action_space
        golden = {
            "id": env_id,
            "gymnasium": GYMNASIUM_VERSION,
            "mujoco": MUJOCO_VERSION,
            "observation_dim": int(env.observation_space.shape[0]),
            "action_low": floats(space.low),
            "action_high": floats(space.high),
            "max_episode_steps": env.spec.max_episode_steps,
            "episodes": [episode(env, env_id, seed) for seed in SEEDS],
        }
        env.close()
        path = OUT / f"{env_id}.json"
        path.write_text(json.dumps(golden, allow_nan=False) + "\n")
        lengths = [len(e["steps"]) for e in golden["episodes"]]
        ended = [any(s["terminated"] for s in e["steps"]) for e in golden["episodes"]]
        print(f"{path}: {path.stat().st_size} bytes, steps {lengths}, terminated {ended}")


if __name__ == "__main__":
    main()

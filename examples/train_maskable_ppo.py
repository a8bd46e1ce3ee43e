"""Train a doctor with sb3-contrib's MaskablePPO on the single-agent env (optional extra `rl`).

    pip install "clinic-env[rl]"        # sb3-contrib and torch (large)
    python examples/train_maskable_ppo.py --timesteps 20000

The env's observation is numeric (Dict of Box + MultiBinary), so ``MultiInputPolicy`` takes it
and ``action_masks()`` feeds the mask. Prints the mean episode reward of the trained policy and
of a mask-aware random policy on the same seeds.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import numpy as np

import clinic_env


def evaluate(env: clinic_env.DoctorEnv, act, episodes: int, seed: int) -> float:  # type: ignore[no-untyped-def]
    totals = []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        done, total = False, 0.0
        while not done:
            obs, reward, terminated, truncated, _ = env.step(act(obs, env.action_masks()))
            total += reward
            done = terminated or truncated
        totals.append(total)
    return float(np.mean(totals))


def main() -> None:
    from sb3_contrib import MaskablePPO

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timesteps", type=int, default=20_000)
    parser.add_argument("--cases", type=int, default=8, help="Train on the first N bundled cases.")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    cases = clinic_env.load_cases()[: args.cases]
    env = clinic_env.doctor_env(cases=cases, persona="cooperative", max_cycles=150)
    model = MaskablePPO("MultiInputPolicy", env, seed=args.seed, n_steps=512, batch_size=128, verbose=0)
    model.learn(total_timesteps=args.timesteps)
    rng = np.random.default_rng(args.seed)

    def random_act(obs, mask):  # type: ignore[no-untyped-def]
        return int(rng.choice(np.flatnonzero(mask)))

    def ppo_act(obs, mask):  # type: ignore[no-untyped-def]
        return int(model.predict(obs, action_masks=mask, deterministic=True)[0])

    print(f"random    mean reward {evaluate(env, random_act, 20, 10_000):.3f}")
    print(f"maskable  mean reward {evaluate(env, ppo_act, 20, 10_000):.3f}  ({args.timesteps} steps)")


if __name__ == "__main__":
    main()

"""A custom learner in plain PyTorch: REINFORCE with one shared per-VM network, no SB3.

    python docs/examples/custom_learner.py [--updates 50] [--steps 64] [--hosts 4]

The learner trains on two scenarios of the train split at once (4 and 6 VMs) through the
agent views of ``agents.wrappers``: ``multi_scenario_env`` puts one ``BalloonVectorEnv``
per scenario under ``PerVmObservation`` (one agent per VM, each seeing its own
features, their host mean and max, and the host's) inside a ``MultiScenarioVectorEnv``,
so one network drives hosts of any size. Each update runs one short episode on every
host and takes a policy-gradient step; then the network, as a policy (``reset``,
``act``), is compared with ESX on held-out seeds of a scenario it never saw.
A learning method of the project lives in ``agents/learners/<method>/`` (docs/training.md,
"Learners"); this script is the smallest loop that the wrappers make possible.
"""

import argparse

import numpy as np
import torch
from torch import nn

from agents import make_policy
from agents.layout import per_vm_features
from agents.wrappers import multi_scenario_env
from envs.rollout import first_episodes
from envs.vector_env import BalloonVectorEnv

torch.set_num_threads(1)  # small networks: one thread is the fastest (docs/examples/sb3_train.py)
TRAIN = ("default-v1", "boot-wave-v1")  # train split, 4 and 6 VMs
HELD_OUT = "bursty-v1"  # test split: never trained on


class Gaussian(nn.Module):
    """Per-VM features -> a Gaussian over that VM's absolute balloon action."""

    def __init__(self, n_features: int) -> None:
        super().__init__()
        self.mean = nn.Sequential(nn.Linear(n_features, 64), nn.Tanh(), nn.Linear(64, 1))
        self.log_std = nn.Parameter(torch.tensor(-0.5))

    def dist(self, x: torch.Tensor) -> torch.distributions.Normal:
        return torch.distributions.Normal(self.mean(x).squeeze(-1), self.log_std.exp())


class NetPolicy:
    """The network behind the policy interface of agents.base (deterministic: the mean)."""

    name, action_modes = "reinforce", ("absolute",)

    def __init__(self, net: Gaussian) -> None:
        self.net = net

    def reset(self, seed=None) -> None:
        pass

    def act(self, obs: np.ndarray, info) -> np.ndarray:
        with torch.no_grad():  # the same per-VM formula the wrapper trained on
            mean = self.net.mean(torch.from_numpy(per_vm_features(obs))).squeeze(-1)
        return mean.clamp(-1, 1).numpy().reshape(obs.shape[0], -1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=50, help="policy-gradient steps")
    parser.add_argument("--steps", type=int, default=64, help="ticks per episode")
    parser.add_argument("--hosts", type=int, default=4, help="hosts per scenario")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)

    env = multi_scenario_env(TRAIN, args.hosts, max_episode_steps=args.steps)
    net = Gaussian(env.single_observation_space.shape[0])
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    gamma = 0.99
    for update in range(args.updates):
        # One episode per host: the env truncates every host at the last step together.
        obs, _ = env.reset(seed=args.seed + update * env.num_hosts)  # fresh training seeds
        logps, rewards, ends = [], [], []
        for _ in range(args.steps):
            d = net.dist(torch.from_numpy(obs))
            a = d.sample()
            logps.append(d.log_prob(a))  # (agents,): one agent per VM of every host
            obs, r, term, trunc, _ = env.step(a.clamp(-1, 1).numpy()[:, None])
            rewards.append(torch.as_tensor(r, dtype=torch.float32))  # its host's reward
            ends.append(torch.as_tensor(term | trunc, dtype=torch.float32))
        # Discounted reward-to-go, cut where an episode ends (a host OOM ends one early and
        # the env restarts it on the next step), normalized over the batch as a baseline.
        ret, g = [], torch.zeros_like(rewards[0])
        for r, end in zip(reversed(rewards), reversed(ends), strict=True):
            g = r + gamma * (1 - end) * g
            ret.append(g)
        ret = torch.stack(ret[::-1])
        adv = (ret - ret.mean()) / (ret.std() + 1e-8)
        loss = -(torch.stack(logps) * adv).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if update % 10 == 0 or update == args.updates - 1:
            print(f"update {update}: mean reward {torch.stack(rewards).mean():.4f}")

    held_out = [10_000 + k for k in range(3)]  # seeds never used in training
    results = {}
    for name in ("reinforce", "esx"):
        test = BalloonVectorEnv(len(held_out), HELD_OUT, max_episode_steps=args.steps)
        policy = NetPolicy(net) if name == "reinforce" else make_policy("esx", test)
        results[name] = np.mean([e["return"] for e in first_episodes(test, policy, held_out)])
    print(
        f"REINFORCE after {args.updates} updates: {results['reinforce']:.3f}   "
        f"ESX: {results['esx']:.3f}   (mean return on {HELD_OUT}, held-out seeds)"
    )


if __name__ == "__main__":
    main()

"""The per-VM observation layout (parameter sharing), shared by training and evaluation.

A leaf module: :mod:`agents.wrappers` (the per-VM view of every learner), the SB3
learner's :mod:`agents.learners.sb3.vec_env` (which trains on it) and
:mod:`agents.learners.sb3.policy` (which evaluates on it) import it.

Observation v1 (``13·V + 4``) is the default; observation v2 (``reclaim/Balloon-v2``:
v1, then ``7·V`` more per-VM features, then 1 more host feature, see
:mod:`envs.env_batch`) is taken with ``version=2``. A VM's row always holds its own
features (v1's, then v2's), their mean and max over the host's VMs, then the host's.
"""

from __future__ import annotations

import numpy as np

from envs.env_batch import (
    HOST_FEATURES,
    HOST_FEATURES_V2,
    VM_FEATURES,
    VM_FEATURES_V2,
    check_obs_version,
)

NF = len(VM_FEATURES)
NH = len(HOST_FEATURES)
PER_VM_SIZE = 3 * NF + NH


def _sizes(version: int) -> tuple[int, int]:
    """(per-VM features, host features) of observation ``version``."""
    if check_obs_version(version) == 2:
        return NF + len(VM_FEATURES_V2), NH + len(HOST_FEATURES_V2)
    return NF, NH


def per_vm_size(version: int = 1) -> int:
    """Features of one per-VM row: 43 in v1, 65 in v2."""
    nf, nh = _sizes(version)
    return 3 * nf + nh


def num_vms_of(obs_size: int, version: int = 1) -> int:
    """V from a flat observation size (``13·V + 4`` in v1, ``20·V + 5`` in v2)."""
    nf, nh = _sizes(version)
    v, rem = divmod(obs_size - nh, nf)
    if rem or v < 1:
        raise ValueError(
            f"observation size {obs_size} is not {nf}·V + {nh} (observation v{version}) "
            "for any V >= 1"
        )
    return v


def per_vm_features(obs: np.ndarray, version: int = 1) -> np.ndarray:
    """(B, D) env observations → (B·V, 3·F + H) per-VM features (VM-major per host).

    Row ``b·V + i``: VM ``i``'s ``F`` features, their mean and max over the host's VMs,
    then the host's ``H`` features (v1: F = 13, H = 4, 43 values). Fresh float32 array.
    """
    obs = np.asarray(obs, dtype=np.float32)
    B, D = obs.shape
    V = num_vms_of(D, version)
    nf, nh = _sizes(version)
    vm = obs[:, : V * NF].reshape(B, V, NF)
    host = obs[:, V * NF : V * NF + NH]
    if nf > NF:  # v2: each VM's extra features after its v1 ones; the extra host ones last
        lo = V * NF + NH
        extra = obs[:, lo : lo + V * (nf - NF)].reshape(B, V, nf - NF)
        vm = np.concatenate([vm, extra], axis=2)
        host = np.concatenate([host, obs[:, lo + V * (nf - NF) :]], axis=1)
    size = 3 * nf + nh
    out = np.empty((B, V, size), dtype=np.float32)
    out[:, :, :nf] = vm
    out[:, :, nf : 2 * nf] = vm.mean(axis=1, keepdims=True)
    out[:, :, 2 * nf : 3 * nf] = vm.max(axis=1, keepdims=True)
    out[:, :, 3 * nf :] = host[:, None, :]
    return out.reshape(B * V, size)

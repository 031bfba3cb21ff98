"""The per-VM observation layout (parameter sharing), shared by training and evaluation.

A leaf module: :mod:`agents.sb3_env` (which trains on it) and :mod:`agents.sb3_policy`
(which evaluates on it) both import it, and neither imports the other.
"""

from __future__ import annotations

import numpy as np

from envs.env_batch import HOST_FEATURES, VM_FEATURES

NF = len(VM_FEATURES)
NH = len(HOST_FEATURES)
PER_VM_SIZE = 3 * NF + NH


def num_vms_of(obs_size: int) -> int:
    """V from a flat observation size ``13·V + 4``."""
    v, rem = divmod(obs_size - NH, NF)
    if rem or v < 1:
        raise ValueError(f"observation size {obs_size} is not 13·V + 4 for any V >= 1")
    return v


def per_vm_features(obs: np.ndarray) -> np.ndarray:
    """(B, 13·V + 4) env observations → (B·V, 43) per-VM features (VM-major per host).

    Row ``b·V + i``: VM ``i``'s 13 features, their mean and max over the host's VMs, then
    the host's 4 features. Fresh float32 array.
    """
    obs = np.asarray(obs, dtype=np.float32)
    B, D = obs.shape
    V = num_vms_of(D)
    vm = obs[:, : V * NF].reshape(B, V, NF)
    out = np.empty((B, V, PER_VM_SIZE), dtype=np.float32)
    out[:, :, :NF] = vm
    out[:, :, NF : 2 * NF] = vm.mean(axis=1, keepdims=True)
    out[:, :, 2 * NF : 3 * NF] = vm.max(axis=1, keepdims=True)
    out[:, :, 3 * NF :] = obs[:, None, V * NF :]
    return out.reshape(B * V, PER_VM_SIZE)

"""A Minari dataset id, checked without the imitation trainer (``reclaim imitate
--dataset``): imported by both the trainer's config and the dataset writer
(:mod:`agents.learners.imitation.demonstrations`), so neither imports the other's module
at check time."""

from __future__ import annotations

from typing import Any

from agents.runs import ConfigError

INSTALL_HINT = "pip install 'reclaim-gym[offline]'"


def import_minari() -> Any:
    """The minari module, or a ConfigError that says how to install it (with h5py)."""
    try:
        import h5py  # noqa: F401 - Minari's HDF5 storage needs it; say so up front
        import minari
    except ImportError as e:
        raise ConfigError(
            f"the Minari dataset needs minari and h5py ({e.name} is not installed): {INSTALL_HINT}"
        ) from None
    return minari


def check_dataset_id(dataset_id: str) -> str:
    """``dataset_id`` as Minari names datasets, ``(namespace/)name-vN`` (version
    required, e.g. ``reclaim/default-v1/esx-v0``); ConfigError otherwise."""
    import_minari()
    from minari.dataset.minari_dataset import DATASET_ID_RE

    m = DATASET_ID_RE.fullmatch(dataset_id) if isinstance(dataset_id, str) else None
    if m is None or m.group("version") is None or ".." in dataset_id.split("/"):
        raise ConfigError(
            f"dataset must be a Minari dataset id (namespace/)name-vN, e.g. "
            f"reclaim/default-v1/esx-v0, got {dataset_id!r}"
        )
    return dataset_id

"""The simulator core: numpy and the standard library only (no gymnasium, no torch)."""

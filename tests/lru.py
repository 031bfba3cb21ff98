"""A plain exact LRU, the obvious oracle for miss counts in tests."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np


def exact_lru_misses(pages: np.ndarray, cache_pages: int) -> int:
    stack: OrderedDict[int, None] = OrderedDict()
    misses = 0
    for p in pages.tolist():
        if p in stack:
            stack.move_to_end(p)
        else:
            misses += 1
            stack[p] = None
            if len(stack) > cache_pages:
                stack.popitem(last=False)
    return misses

"""Train / validation / test splits of a list of examples, by a seeded shuffle.

One helper for every source that comes without its own split (a TSV of pairs, a folder
of audio, scikit-learn's digits): the same seed gives the same split on any machine.
Sources that have a natural unit to split by (Bible books, speakers, package names) split
by that unit instead, so no unit is on both sides.
"""

from __future__ import annotations

import random

from e2e.errors import E2EError


def split_indices(n: int, val_fraction: float, test_fraction: float, seed: int,
                  what: str = "examples", where: str = "the data"
                  ) -> tuple[list[int], list[int], list[int]]:
    """(train, val, test) index lists, each sorted. A fraction of 0 gives an empty part;
    any other gives at least one example; training keeps at least one."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    n_test = max(1, round(test_fraction * n)) if test_fraction > 0 else 0
    n_val = max(1, round(val_fraction * n)) if val_fraction > 0 else 0
    if n - n_test - n_val < 1:
        raise E2EError(f"{where} has only {n} {what}: too few to split into training"
                       + (", validation" if n_val else "") + (" and test" if n_test else "")
                       + " sets")
    return (sorted(order[n_test + n_val:]), sorted(order[n_test:n_test + n_val]),
            sorted(order[:n_test]))

"""Grouped k-fold cross-validation inside the 31 bc test videos (``data.split = bc_test_cv``).

The released text CNN and visual 3D-CNN features were trained with the labels of the bc *training* videos, so
they are honest only on the 31 bc test videos (752 utterances). The legacy table evaluates every model there by
cross-fitting: the test videos are dealt into ``k`` folds of whole videos; a run trains on ``k - 1`` folds
(less ``n_valid`` of their videos, held out whole for early stopping and checkpoint selection) and predicts the
remaining fold. Pooling the ``k`` runs of one repeat gives one prediction per test utterance
(:mod:`miar.pooled`).

- The fold assignment depends on the repeat only (``numpy.random.default_rng([FOLD_SALT, repeat])`` over the
  sorted video ids): the same for every model, so pooled predictions are paired per utterance across models.
- The validation videos depend on (repeat, fold, ``valid_seed``) only, drawn from the training folds' videos:
  again the same for every model.

Pure functions of video ids; :func:`miar.data.mosi.split_videos` calls :func:`cv_parts`.
"""

from __future__ import annotations

import numpy as np

FOLD_SALT = 31_752  # seeds the fold deal (with the repeat): the 31 videos and 752 utterances of the bc test part
VALID_SALT = 31_753  # seeds the validation draw (with repeat, fold and valid_seed)


def fold_of(videos: list[str], k: int, repeat: int) -> dict[str, int]:
    """Video id -> fold 0..k-1: the sorted ids shuffled by the repeat's generator, then dealt round-robin, so the
    folds differ in size by at most one video."""
    uniq = sorted(set(videos))
    if not 2 <= k <= len(uniq):
        raise ValueError(f"cv_folds: {k} folds of {len(uniq)} videos (need 2 <= k <= {len(uniq)})")
    order = np.random.default_rng([FOLD_SALT, repeat]).permutation(len(uniq))
    return {uniq[j]: i % k for i, j in enumerate(order)}


def cv_parts(videos: list[str], k: int, fold: int, repeat: int, n_valid: int,
             valid_seed: int = 0) -> dict[str, list[str]]:
    """Sorted video ids of train/valid/test: ``test`` is fold ``fold`` of repeat ``repeat``; ``valid`` is
    ``n_valid`` whole videos of the other folds; ``train`` the rest."""
    folds = fold_of(videos, k, repeat)
    if not 0 <= fold < k:
        raise ValueError(f"cv_fold: {fold} is outside [0, {k - 1}]")
    test = sorted(v for v, f in folds.items() if f == fold)
    rest = sorted(v for v, f in folds.items() if f != fold)
    if not 1 <= n_valid < len(rest):
        raise ValueError(f"n_valid_videos: {n_valid} is outside [1, {len(rest) - 1}] "
                         f"(fold {fold} leaves {len(rest)} training videos)")
    rng = np.random.default_rng([VALID_SALT, repeat, fold, valid_seed])
    valid = set(rng.choice(rest, size=n_valid, replace=False).tolist())
    return {"train": [v for v in rest if v not in valid], "valid": sorted(valid), "test": test}


"""Grouped k-fold cross-validation of whole videos: inside the 31 bc test videos (``data.split = bc_test_cv``) or
over all 93 MOSI videos (``data.split = all_cv``).

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

``all_cv`` deals all 93 videos the same way (its own salt, :data:`ALL_SALT`), for leak-free features only (an
offline text encoder and audio: the released text and visual features saw the labels of 62 of the videos). Folds
group whole videos; they cannot group speakers: the released metadata's ``videoSpeakers`` are empty strings, and
MOSI's 93 videos come from 89 speakers, so at most a few speakers can have a video on each side of a fold.

Pure functions of video ids; :func:`miar.data.mosi.split_videos` calls :func:`cv_parts`.
"""

from __future__ import annotations

import numpy as np

FOLD_SALT = 31_752  # seeds the fold deal (with the repeat): the 31 videos and 752 utterances of the bc test part
VALID_SALT = 31_753  # seeds the validation draw (with repeat, fold and valid_seed)
ALL_SALT = 93_2199  # all_cv: the fold deal of all 93 videos and 2,199 utterances (validation: ALL_SALT + 1)


def fold_of(videos: list[str], k: int, repeat: int, salt: int = FOLD_SALT) -> dict[str, int]:
    """Video id -> fold 0..k-1: the sorted ids shuffled by the repeat's generator (``[salt, repeat]``), then dealt
    round-robin, so the folds differ in size by at most one video."""
    uniq = sorted(set(videos))
    if not 2 <= k <= len(uniq):
        raise ValueError(f"cv_folds: {k} folds of {len(uniq)} videos (need 2 <= k <= {len(uniq)})")
    order = np.random.default_rng([salt, repeat]).permutation(len(uniq))
    return {uniq[j]: i % k for i, j in enumerate(order)}


def cv_parts(videos: list[str], k: int, fold: int, repeat: int, n_valid: int,
             valid_seed: int = 0, salt: int = FOLD_SALT) -> dict[str, list[str]]:
    """Sorted video ids of train/valid/test: ``test`` is fold ``fold`` of repeat ``repeat``; ``valid`` is
    ``n_valid`` whole videos of the other folds; ``train`` the rest. ``salt`` names the design (the fold deal
    seeds with it, the validation draw with ``salt + 1``)."""
    folds = fold_of(videos, k, repeat, salt)
    if not 0 <= fold < k:
        raise ValueError(f"cv_fold: {fold} is outside [0, {k - 1}]")
    test = sorted(v for v, f in folds.items() if f == fold)
    rest = sorted(v for v, f in folds.items() if f != fold)
    if not 1 <= n_valid < len(rest):
        raise ValueError(f"n_valid_videos: {n_valid} is outside [1, {len(rest) - 1}] "
                         f"(fold {fold} leaves {len(rest)} training videos)")
    rng = np.random.default_rng([salt + 1, repeat, fold, valid_seed])
    valid = set(rng.choice(rest, size=n_valid, replace=False).tolist())
    return {"train": [v for v in rest if v not in valid], "valid": sorted(valid), "test": test}


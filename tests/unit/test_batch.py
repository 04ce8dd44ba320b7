"""The batch format: trimming to the longest real sequence, subsets, standardization statistics."""

import numpy as np
import torch

from miar.data.batch import (
    ModalDataset,
    apply_zscore,
    batch_indices,
    iterate,
    pad_sequences,
    real_lengths,
    zscore_stats,
)


def make_ds():
    x, mask = pad_sequences([np.ones((2, 3)), np.ones((4, 3)), np.ones((1, 3))], dim=3, max_len=6)
    return ModalDataset(x={"audio": x}, mask={"audio": mask}, y=torch.tensor([0.0, 1.0, -1.0]),
                        ids=["a", "b", "c"])


def test_pad_and_trim_to_longest_real_step():
    ds = make_ds()
    assert ds.x["audio"].shape == (3, 6, 3) and ds.mask["audio"].sum(1).tolist() == [2, 4, 1]
    b = ds.batch(torch.tensor([0, 2]))
    assert b.x["audio"].shape == (2, 2, 3) and b.ids == ["a", "c"]
    assert [len(b) for b in iterate(ds, 2)] == [2, 1]
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    assert [b.ids for b in iterate(ds, 2, True, g1)] == [b.ids for b in iterate(ds, 2, True, g2)]


def test_subset_keeps_rows_aligned():
    s = make_ds().subset([2, 0])
    assert s.ids == ["c", "a"] and s.y.tolist() == [-1.0, 0.0] and s.mask["audio"].sum(1).tolist() == [1, 2]


def test_zscore_leaves_dead_training_dimensions_unscaled_and_clips():
    train = np.array([[0.0, 1.0], [0.0, 3.0]])  # dimension 0 never fires in training
    mu, sd = zscore_stats(train)
    assert sd.tolist() == [1.0, 1.0] and mu.tolist() == [0.0, 2.0]
    z = apply_zscore(np.array([[5.0, 2.0], [1e6, -1e6]]), mu, sd)
    assert z.tolist() == [[5.0, 0.0], [10.0, -10.0]]


def ragged_ds(n=300, t=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, t + 1, (n,), generator=g)
    mask = torch.arange(t)[None, :] < lengths[:, None]
    x = torch.randn(n, t, 2, generator=g) * mask[..., None]
    return ModalDataset(x={"audio": x}, mask={"audio": mask}, y=torch.zeros(n), ids=[str(i) for i in range(n)])


def test_bucketing_covers_every_sample_once_and_cuts_padding():
    ds = ragged_ds()
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    plain = batch_indices(ds, 16, shuffle=True, generator=g1)
    bucketed = batch_indices(ds, 16, shuffle=True, generator=g2, bucket=True)
    assert sorted(torch.cat(bucketed).tolist()) == list(range(len(ds)))
    padded = lambda batches: sum(len(b) * int(real_lengths(ds)[b].max()) for b in batches)  # noqa: E731
    assert padded(bucketed) < 0.7 * padded(plain)  # steps computed, padding included
    g3 = torch.Generator().manual_seed(3)
    assert [b.tolist() for b in bucketed] == [b.tolist() for b in
                                              batch_indices(ds, 16, shuffle=True, generator=g3, bucket=True)]


def test_bucketing_leaves_context_windows_and_equal_lengths_alone():
    ds = make_ds()
    full = ModalDataset(x={"audio": torch.ones(9, 3, 1)}, mask={"audio": torch.ones(9, 3, dtype=torch.bool)},
                        y=torch.zeros(9), ids=[str(i) for i in range(9)])
    ctx = ModalDataset(x=ds.x, mask=ds.mask, y=ds.y, ids=ds.ids, target=ds.mask.copy()["audio"])
    for d in (full, ctx):
        g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
        assert ([b.tolist() for b in batch_indices(d, 2, True, g1, bucket=True)]
                == [b.tolist() for b in batch_indices(d, 2, True, g2)])

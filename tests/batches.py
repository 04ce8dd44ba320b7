"""A small hand-made batch shared by the model tests (imported by test_model and test_baselines)."""

import torch

from miar.data.batch import Batch

DIMS = {"text": 7, "audio": 3, "vision": 4}


def make_batch(b=5, t=(6, 9, 4), context=False):
    """Unaligned lengths with padding, or a context window of 5 utterances (target = the middle one)."""
    torch.manual_seed(0)
    if context:
        t = (5, 5, 5)
    x = {m: torch.randn(b, n, DIMS[m]) for m, n in zip(DIMS, t)}
    mask = {m: torch.ones(b, n, dtype=torch.bool) for m, n in zip(DIMS, t)}
    target = None
    if context:
        target = torch.zeros(b, 5, dtype=torch.bool)
        target[:, 2] = True
        for m in mask:
            mask[m][0, :2] = False  # start of a video: no left context
            mask[m][1, 4:] = False  # end of a video: no right context
    else:
        mask["audio"][0, 4:] = False
        mask["vision"][1, 1:] = False
        mask["text"][2, 3:] = False
    return Batch(x=x, mask=mask, y=torch.randn(b), ids=[str(i) for i in range(b)], target=target)

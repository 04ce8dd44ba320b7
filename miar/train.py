"""Training: ``fit(cfg, run_dir)`` trains, selects the best epoch on validation data only,
evaluates the test split once and writes the run record (see :mod:`miar.records`).

AdamW with optional linear warm-up and cosine decay (per step), gradient clipping, early stopping
on ``train.criterion`` (validation MAE by default). Seeded once, when the :class:`Trainer` is built (after
the data, so the model's initialisation depends on the seed alone); deterministic on CPU.

A :class:`Trainer` holds one run's model, temperature, optimizer, schedule and shuffling generator, and its
public training :meth:`~Trainer.step` (the benchmark times that same step); :class:`Progress` is what the
epoch loop tracks and checkpoints.
"""

from __future__ import annotations

import copy
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from miar import config as C
from miar.config_checks import validate
from miar.data import Batch, ModalDataset, build_splits, iterate
from miar.data.validate import validate_splits
from miar.exclusive import exclusive_run_dir
from miar.losses import Temperature, total_loss
from miar.metrics import HIGHER_IS_BETTER, bootstrap_ci, compute_all
from miar.model import ModelOutput, build_model, contrastive_pairs
from miar.model.text_backbone import backbone_groups, cache_lower
from miar.records import CHECKPOINT, check_writable, environment, write_record
from miar.run_guards import check_finite, save_state


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def pick_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise C.ConfigError("train.device=cuda but no CUDA device is available")
    device = torch.device("cuda" if name in ("auto", "cuda") and torch.cuda.is_available() else "cpu")
    if device.type == "cuda":  # TF32 for the fp32 matmuls and convolutions left outside bf16 autocast: 10-bit
        torch.backends.cuda.matmul.allow_tf32 = True  # mantissa products, fp32 accumulation (safe for training;
        torch.backends.cudnn.allow_tf32 = True  # the bf16 parts are coarser still)
    return device


def schedule(total_steps: int, warmup_steps: int, cosine: bool):
    """Learning-rate multiplier per step: linear warm-up, then cosine decay to 0 (or constant)."""
    def f(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        if not cosine:
            return 1.0
        t = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))
    return f


def _better(value: float, best: float | None, criterion: str) -> bool:
    if best is None or math.isnan(best):
        return not math.isnan(value)
    return value > best if HIGHER_IS_BETTER[criterion] else value < best


@dataclass
class Progress:
    """What the epoch loop tracks; checkpointed after every epoch."""

    history: list[dict] = field(default_factory=list)  # one row per epoch (history.csv)
    best: float | None = None  # the criterion's best validation value so far
    best_epoch: int = 0
    best_valid: dict = field(default_factory=dict)  # validation metrics of the best epoch
    best_state: dict | None = None  # the model's state dict at the best epoch
    stale: int = 0  # epochs since the last improvement

    def record(self, epoch: int, row: dict, valid: dict, criterion: str, model: torch.nn.Module) -> None:
        self.history.append(row)
        if _better(valid[criterion], self.best, criterion):
            self.best, self.best_epoch, self.best_valid, self.stale = valid[criterion], epoch, valid, 0
            self.best_state = copy.deepcopy(model.state_dict())
        else:
            self.stale += 1


CHECKPOINT_KEYS = {"config", "epoch", "model", "temp", "opt", "sched", "gen", "torch_rng", "progress"}


class Trainer:
    """One run's model, learnable temperature, AdamW, schedule and shuffling generator."""

    def __init__(self, cfg: C.Config, dims: dict[str, int], n_train: int, device: torch.device):
        seed_everything(cfg.seed)  # the run's only seeding: initialisation and dropout follow from it
        self.cfg, self.device, self.amp = cfg, device, cfg.train.amp == "bf16"
        self.model = build_model(cfg, dims).to(device)
        self.temp = Temperature(cfg.loss.temperature, cfg.loss.learnable_temperature).to(device)
        params = backbone_groups(self.model, list(self.temp.parameters()), cfg.train.lr, cfg.train.backbone_lr,
                                 cfg.train.layer_decay) or list(self.model.parameters()) + list(self.temp.parameters())
        self.opt = torch.optim.AdamW(params, lr=cfg.train.lr, weight_decay=cfg.train.weight_decay,
                                     fused=True)  # one kernel for all parameters: ~10x faster steps on CPU
        steps = math.ceil(n_train / cfg.data.batch_size)
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt, schedule(steps * cfg.train.epochs, steps * cfg.train.warmup_epochs, cfg.train.cosine))
        self.gen = torch.Generator().manual_seed(cfg.seed)  # training batch order

    def loss(self, out: ModelOutput, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The total loss and its named terms: task, contrastive, and the model's own (``out.aux``)."""
        cfg = self.cfg
        pairs = contrastive_pairs(tuple(out.embeddings), cfg.loss.pairs) if out.embeddings else []
        kind = cfg.loss.contrastive if pairs else "none"
        loss, terms = total_loss(out.pred.float(), y, {k: v.float() for k, v in out.embeddings.items()},
                                 task=cfg.loss.task, weight=cfg.loss.weight, pairs=pairs,
                                 temperature=self.temp, kind=kind)
        for name, value in out.aux.items():  # model-specific terms (e.g. MISA), already weighted
            loss = loss + value
            terms[name] = value.detach()
        return loss, terms

    def step(self, batch: Batch, update: bool = True) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One training step: forward, loss, backward and (``update``) clipping, AdamW and the schedule."""
        batch = batch.to(self.device)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            out = self.model(batch)
        loss, terms = self.loss(out, batch.y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if update:
            if self.cfg.train.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.train.grad_clip)
            self.opt.step()
            self.sched.step()
        return loss, terms

    def epoch(self, ds: ModalDataset) -> dict[str, float]:
        """One pass over ``ds`` in shuffled, length-bucketed batches; sample-weighted mean losses by name."""
        self.model.train()
        sums: dict[str, float] = {}
        n = 0
        for batch in iterate(ds, self.cfg.data.batch_size, shuffle=True, generator=self.gen,
                             bucket=self.cfg.data.bucket):
            if len(batch) < 2:  # batch norm and in-batch negatives need two samples
                continue
            loss, terms = self.step(batch)
            b = len(batch)
            n += b
            for k, v in {"loss": loss.detach(), **terms}.items():
                sums[k] = sums.get(k, 0.0) + float(v) * b
        return {f"train_{k}": v / max(n, 1) for k, v in sums.items()}

    @torch.no_grad()
    def outputs(self, ds: ModalDataset, batch_size: int = 256):
        """The model's outputs over ``ds`` in order, batch by batch (eval mode)."""
        self.model.eval()
        for batch in iterate(ds, batch_size):
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                yield self.model(batch.to(self.device))

    def predict(self, ds: ModalDataset) -> np.ndarray:
        return torch.cat([out.pred.float().cpu() for out in self.outputs(ds)]).numpy()

    def diagnostics(self, ds: ModalDataset) -> dict[str, dict[str, float]]:
        """The mean over ``ds`` of each per-token weight the model exposes (``ModelOutput.diagnostics``)."""
        sums: dict[str, list] = {}
        names: tuple[str, ...] = ()
        for out in self.outputs(ds):
            names = out.token_names
            for k, w in out.diagnostics.items():  # (B, K)
                sums.setdefault(k, []).append(w.float().cpu())
        return {k: {n: round(float(v), 6) for n, v in zip(names, torch.cat(ws).mean(0))} for k, ws in sums.items()}

    def checkpoint(self, run_dir: Path, epoch: int, progress: Progress) -> None:
        """Everything needed to continue after ``epoch`` exactly as an uninterrupted run would."""
        state = {"config": C.dump(self.cfg), "epoch": epoch, "model": self.model.state_dict(),
                 "temp": self.temp.state_dict(), "opt": self.opt.state_dict(), "sched": self.sched.state_dict(),
                 "gen": self.gen.get_state(), "torch_rng": torch.get_rng_state(), "progress": asdict(progress)}
        save_state(run_dir / CHECKPOINT, state)

    def restore(self, run_dir: Path) -> tuple[int, Progress] | None:
        """Load ``checkpoint.pt`` if it belongs to this config; return (epoch, progress)."""
        path = run_dir / CHECKPOINT
        if not path.is_file():
            return None
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # a torn or foreign file: say so rather than crash mid-run
            raise C.ConfigError(f"{path}: unreadable checkpoint ({type(e).__name__}); delete it to start over") from None
        same = isinstance(state, dict) and C.identity(str(state.get("config", ""))) == C.identity(C.dump(self.cfg))
        if isinstance(state, dict) and "config" in state and not same:
            raise C.ConfigError(f"{path}: checkpoint was written for a different config; delete it or the run dir")
        missing = sorted(CHECKPOINT_KEYS - set(state)) if isinstance(state, dict) else ["(not a dict)"]
        if missing:
            raise C.ConfigError(f"{path}: not a training checkpoint (missing {', '.join(missing)}); "
                                f"delete it to start over")
        try:
            for name in ("model", "temp", "opt", "sched"):
                getattr(self, name).load_state_dict(state[name])
            self.gen.set_state(state["gen"])
            torch.set_rng_state(state["torch_rng"])
            return int(state["epoch"]), Progress(**state["progress"])
        except (RuntimeError, KeyError, TypeError, ValueError, IndexError) as e:
            raise C.ConfigError(f"{path}: checkpoint contents do not fit this model "
                                f"({str(e).splitlines()[0][:160]}); delete it to start over") from None


def fit(cfg: C.Config, run_dir: str | Path, splits: dict[str, ModalDataset] | None = None,
        resume: bool = False, overwrite: bool = False) -> dict:
    """Train ``cfg``, write the run record into ``run_dir`` and return ``metrics.json``'s dict.

    The config and the data are checked before ``run_dir`` is created; one writer at a time holds
    ``run_dir`` and a complete record there is refused unless ``overwrite`` (:mod:`miar.exclusive`).
    Each epoch is checkpointed to ``run_dir/checkpoint.pt`` (removed once the record is complete);
    with ``resume`` a run continues from it and ends with the metrics of an uninterrupted run.
    """
    validate(cfg)  # nonsense values (epochs 0, d_model not divisible by heads, ...) before anything else
    t0, run_dir = time.time(), Path(run_dir)
    if cfg.train.threads > 0:
        torch.set_num_threads(cfg.train.threads)
    splits = splits if splits is not None else build_splits(cfg)
    validate_splits(splits, cfg.data.path or cfg.data.source)  # labels, ids and dims, as `miar data check`
    check_writable(run_dir)  # fail before training, not after; and only once the data has loaded
    with exclusive_run_dir(run_dir, overwrite=overwrite):
        trainer = Trainer(cfg, splits["train"].dims, len(splits["train"]), pick_device(cfg.train.device))
        splits = cache_lower(trainer.model, splits, trainer.device)  # top:K: frozen lower layers once per run
        progress = _epochs(trainer, run_dir, splits, resume)
        metrics = _finish(trainer, run_dir, splits, progress, t0)
        (run_dir / CHECKPOINT).unlink(missing_ok=True)
    return metrics


def _epochs(trainer: Trainer, run_dir: Path, splits: dict[str, ModalDataset], resume: bool) -> Progress:
    """The epoch loop with early stopping; the best epoch's weights loaded into the model at the end."""
    cfg, crit = trainer.cfg, trainer.cfg.train.criterion
    restored = trainer.restore(run_dir) if resume else None
    start, progress = (restored[0] + 1, restored[1]) if restored is not None else (1, Progress())
    bar = tqdm(range(start, cfg.train.epochs + 1), desc=cfg.name, disable=not cfg.train.progress,
               unit="epoch", leave=False)
    for epoch in bar:
        if progress.stale >= cfg.train.patience:
            break
        te, row = time.time(), {"epoch": epoch, "lr": trainer.opt.param_groups[0]["lr"]}
        row.update(trainer.epoch(splits["train"]))
        pred = trainer.predict(splits["valid"])
        check_finite(f"{cfg.name} seed {cfg.seed} ({run_dir})", epoch, row.get("train_loss", 0.0), pred)
        valid = compute_all(pred, splits["valid"].y.numpy())
        row.update({f"valid_{k}": v for k, v in valid.items()}, temperature=float(trainer.temp()),
                   seconds=round(time.time() - te, 3))
        progress.record(epoch, row, valid, crit, trainer.model)
        trainer.checkpoint(run_dir, epoch, progress)
        bar.set_postfix(loss=f"{row['train_loss']:.3f}", **{f"valid_{crit}": f"{valid[crit]:.3f}"})
    bar.close()
    if progress.best_state is not None:
        trainer.model.load_state_dict(progress.best_state)
    return progress


def _finish(trainer: Trainer, run_dir: Path, splits: dict[str, ModalDataset], progress: Progress, t0: float) -> dict:
    """Evaluate the selected model on the test split (once, unless ``train.evaluate_test`` is false) and write
    the run record."""
    cfg = trainer.cfg
    tested, predictions = _test(trainer, splits["test"])
    metrics = {
        "valid": progress.best_valid, "test": tested["test"], "test_ci95": tested["test_ci95"],
        "best_epoch": progress.best_epoch, "epochs_run": len(progress.history),
        "criterion": f"valid_{cfg.train.criterion}", "selection": tested["selection"],
        "n": {k: len(v) for k, v in splits.items()},
        "n_parameters": {"total": sum(p.numel() for p in trainer.model.parameters()),  # a frozen backbone counts
                         "trained": sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)},
    }
    if cfg.train.evaluate_test:
        metrics.update({f"{k}_mean_test": v for k, v in trainer.diagnostics(splits["test"]).items()})
    if cfg.train.save_model:  # before metrics.json, which marks the record complete
        save_state(run_dir / "model.pt", trainer.model.state_dict())
    env = environment(str(trainer.device), torch.get_num_threads(), time.time() - t0)
    write_record(run_dir, config_yaml=C.dump(cfg), history=progress.history, metrics=metrics, env=env,
                 predictions=predictions)
    return metrics


def _test(trainer: Trainer, test: ModalDataset) -> tuple[dict, list[dict]]:
    """The test block and predictions; none with ``train.evaluate_test=false`` (a tuning trial)."""
    if not trainer.cfg.train.evaluate_test:
        return {"test": None, "test_ci95": None, "selection": "best validation epoch; the test split is not "
                "evaluated (train.evaluate_test=false)"}, []
    pred, labels = trainer.predict(test), test.y.numpy()
    return {"test": compute_all(pred, labels),
            "test_ci95": {k: list(v) for k, v in bootstrap_ci(pred, labels, seed=trainer.cfg.seed).items()},
            "selection": "best validation epoch; the test split is evaluated once, after selection"}, \
        [{"id": i, "pred": round(float(p), 6), "label": float(y)} for i, p, y in zip(test.ids, pred, labels)]

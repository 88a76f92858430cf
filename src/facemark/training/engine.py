"""The training engine: one loop for every model family (landmark models, the face detector, MTCNN's cascade).

A family plugs in through a ``Job``: the modules its checkpoints hold, how to read its data and starting weights,
and one or more ``Stage``s run one after another (MTCNN's P-, R- and O-Net; one stage for the others). A stage
gives its model, epochs and steps per epoch, each epoch's batches (this process's share of every global batch),
the loss of a batch with its parts for the log, its validation, and the shape of its learning-rate schedule.
The engine owns the rest, whatever the family: the run folder, seeding, AdamW with warm-up + cosine learning
rate (``Schedule``), gradient clipping and a weight average (EMA) where the stage asks, the progress bar, the
JSON-lines log, ``last.pt`` after every epoch (a resumed run replays exactly what an uninterrupted one does),
``best.pt`` by the stage's validation metric, ``--max-steps`` for smoke runs, and data parallel training over
the processes torchrun starts (``facemark train --nproc N``: gloo on CPUs, NCCL on GPUs; rank 0 validates, logs
and saves; a checkpoint holds no per-process state, so a run resumes with another number of processes).
"""
from __future__ import annotations

import copy
import json
import math
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch
import torch.distributed as dist
import yaml
from tqdm import tqdm

from ..core.errors import FacemarkError


@dataclass(frozen=True)
class Schedule:
    """Learning-rate factor: a linear warm-up over ``warmup`` steps times a cosine from 1 to ``floor``, over the
    whole run or (``after_warmup``) over the steps after the warm-up."""

    warmup: int
    floor: float = 0.0
    after_warmup: bool = False

    def factor(self, step: int, total: int) -> float:
        warm = min(1.0, (step + 1) / self.warmup) if self.warmup > 0 else 1.0
        start = self.warmup if self.after_warmup else 0
        t = min(max((step - start) / max(1, total - start), 0.0), 1.0)
        return warm * (self.floor + (1.0 - self.floor) * 0.5 * (1.0 + math.cos(math.pi * t)))


@dataclass(frozen=True)
class Shard:
    """This process's place among the data-parallel processes (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def part(self, idx: np.ndarray) -> np.ndarray:
        """This process's share of a global batch's sample indices."""
        return idx if self.world == 1 else idx[self.rank::self.world]


@dataclass
class Stage:
    """One optimisation run inside a job; a family subclasses it (or fills it) with its data and loss."""

    name: str
    model: torch.nn.Module
    epochs: int
    lr: float
    weight_decay: float
    schedule: Schedule
    clip: float | None = None      # gradient-norm clipping
    ema: float = 0.0               # > 0: validate and keep the exponential moving average of the weights
    metric: str | None = None      # validation metric kept lowest in best.pt (None: no best.pt)

    def start(self) -> None:
        """Set up what the stage needs once the earlier stages are trained (MTCNN's mined windows)."""

    def steps(self) -> int:
        """Optimiser steps (global batches) per epoch."""
        raise NotImplementedError

    def before_epoch(self, epoch: int) -> None:
        """Change the training set before an epoch (STC's pseudo-label rounds)."""

    def train_mode(self) -> None:
        """Put the model in training mode for an epoch (a family may keep frozen parts in eval mode)."""
        self.model.train()

    def batches(self, epoch: int, shard: Shard) -> Iterable[Any]:
        """This process's share of each of the epoch's ``steps()`` batches, in order."""
        raise NotImplementedError

    def loss(self, model: torch.nn.Module, batch: Any, device: torch.device) -> tuple[torch.Tensor, dict[str, float]]:
        """The batch's loss (a scalar to minimise) and its parts for the log; ``model(x)`` is the model's training
        forward (``TrainingForward``, in a DDP wrapper when distributed)."""
        raise NotImplementedError

    def validate(self, model: torch.nn.Module, epoch: int) -> dict | None:
        """Validation metrics after ``epoch`` epochs (None: not this epoch); runs in the main process."""
        return None


class Job:
    """A family's run: its kind (read back by ``export``), config, modules and stages."""

    kind: str = ""

    def __init__(self, config: dict[str, Any], seed: int, threads: int) -> None:
        self.config, self.seed, self.threads = config, seed, threads

    def modules(self) -> dict[str, torch.nn.Module]:
        """Every module a checkpoint holds, by name (built after the engine seeds the RNGs)."""
        raise NotImplementedError

    def prepare(self, device: torch.device, fresh: bool) -> None:
        """Read the data and, for a ``fresh`` run (not resumed), the starting weights."""

    def stages(self) -> list[Stage]:
        raise NotImplementedError


def _inside_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def _device(name: str) -> torch.device:
    try:
        device = torch.device(name)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise FacemarkError(f"device {name!r}: training runs on 'cpu' or 'cuda[:N]'")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise FacemarkError(f"device {name!r}: this torch build sees no CUDA device")
    return device


def describe(device: torch.device) -> str:
    """The device as the log records it: 'cpu' or 'cuda:GPU NAME'."""
    return f"cuda:{torch.cuda.get_device_name(device)}" if device.type == "cuda" else "cpu"


def load_checkpoint(path: Path) -> dict:
    """A checkpoint in today's layout (``kind``, ``modules`` by name, ``epoch``), also from the three layouts of
    the loops before the engine (landmark and detector runs: ``model``; MTCNN runs: ``nets``)."""
    st = torch.load(path, map_location="cpu", weights_only=False)
    if "modules" in st:
        return st
    kind = st["config"].get("kind", "landmarks")
    modules = st["nets"] if kind == "mtcnn" else {"model": st["model"]}
    epoch = st.get("epoch", st.get("done", {}).get(st.get("stage"), 0))
    return {**st, "kind": kind, "modules": modules, "epoch": epoch,
            "done": st.get("done", {"train": epoch})}


def save(obj: dict, path: Path) -> None:
    """Write a checkpoint whole or not at all."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


class Ema:
    """An exponential moving average of a model's weights and BatchNorm statistics (as YOLO and SCRFD train):
    the decay ramps up from 0 over the first steps, so the average does not keep the initial weights."""

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.model = copy.deepcopy(model).eval()
        self.decay = decay
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))
        for avg, new in zip(self.model.state_dict().values(), model.state_dict().values()):
            if avg.is_floating_point():
                avg.mul_(d).add_(new.detach(), alpha=1 - d)
            else:
                avg.copy_(new)


class TrainingForward(torch.nn.Module):
    """A model's training forward as ``forward``: ``forward_train`` where the model has one (landmark models:
    every output a task trains), else its ``forward``; what the engine hands a stage's loss (wrapped by DDP
    when distributed, which synchronises gradients only through ``forward``)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> Any:
        return self.model.forward_train(x) if hasattr(self.model, "forward_train") else self.model(x)


@dataclass
class _State:
    done: dict[str, int] = field(default_factory=dict)   # epochs each stage has run
    best: float = float("inf")
    optimizer: tuple[str, dict] | None = None            # the stage a resumed optimiser state belongs to
    raw: dict[str, dict] | None = None                   # trained weights where the modules hold an average


class Engine:
    """Runs a ``Job`` in ``run_dir`` (see the module's docstring)."""

    def __init__(self, run_dir: Path, device: str = "cpu", max_steps: int | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.max_steps = max_steps
        self.shard = Shard()
        self.owns_group = _inside_torchrun() and not dist.is_initialized()
        if self.owns_group:
            dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
        if dist.is_initialized():
            self.shard = Shard(dist.get_rank(), dist.get_world_size())
            if device.startswith("cuda"):
                device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
        self.device = _device(device)
        self.steps_run = 0

    @property
    def last(self) -> Path:
        return self.run_dir / "last.pt"

    def run(self, job: Job, resume: bool = False) -> Path:
        """Train (or resume) ``job``; returns the run folder."""
        if resume and not self.last.is_file():
            raise FacemarkError(f"{self.last}: nothing to resume (no last.pt in the run directory)")
        if not resume and self.last.is_file():
            raise FacemarkError(f"{self.run_dir} already holds a run; pass --resume to continue it or choose "
                                "another --out")
        local = int(os.environ.get("LOCAL_WORLD_SIZE", self.shard.world))
        torch.set_num_threads(max(1, job.threads // local) if self.device.type == "cpu" else job.threads)
        random.seed(job.seed)
        np.random.seed(job.seed)
        torch.manual_seed(job.seed)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        modules = job.modules()
        for m in modules.values():
            m.to(self.device)
        state = self._resume(modules) if resume else _State()
        job.prepare(self.device, fresh=not resume)
        if self.shard.main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "config.yaml").write_text(yaml.safe_dump(job.config, sort_keys=False))
        stages = job.stages()
        for k, stage in enumerate(stages):
            later_started = any(state.done.get(s.name, 0) for s in stages[k + 1:])
            if state.done.get(stage.name, 0) >= stage.epochs or later_started:
                continue
            if not self._run_stage(job, stage, modules, state):
                break   # --max-steps reached
        if dist.is_initialized():
            dist.barrier()
            if self.owns_group:
                dist.destroy_process_group()
        return self.run_dir

    def _resume(self, modules: dict[str, torch.nn.Module]) -> _State:
        st = torch.load(self.last, map_location="cpu", weights_only=False)
        for name, m in modules.items():
            m.load_state_dict(st["modules"][name])
        torch.set_rng_state(st["rng"]["torch"])
        np.random.set_state(st["rng"]["numpy"])
        random.setstate(st["rng"]["python"])
        print(f"resumed from {self.last} at {st['stage']} epoch {st['done'][st['stage']]}", file=sys.stderr)
        return _State(dict(st["done"]), st["best"], (st["stage"], st["optimizer"]), st.get("raw"))

    def _run_stage(self, job: Job, stage: Stage, modules: dict[str, torch.nn.Module], state: _State) -> bool:
        """Train one stage to its last epoch; False where ``max_steps`` stopped it."""
        model = stage.model
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=stage.lr,
                                weight_decay=stage.weight_decay)
        if state.optimizer is not None and state.optimizer[0] == stage.name:
            opt.load_state_dict(state.optimizer[1])
        stage.start()
        name = next(k for k, m in modules.items() if m is model)
        ema = None
        if stage.ema:
            ema = Ema(model, stage.ema)
            if state.raw is not None:   # resumed: the modules hold the average, "raw" the trained weights
                ema.model.load_state_dict(model.state_dict())
                model.load_state_dict(state.raw[name])
        trained = TrainingForward(model)
        if self.shard.world > 1:
            # some outputs train only in some configs (PFLD's pose branch): their parameters may get no gradient
            trained = torch.nn.parallel.DistributedDataParallel(trained, find_unused_parameters=True)
        epoch = state.done.get(stage.name, 0)
        while epoch < stage.epochs:
            stage.before_epoch(epoch)
            run = self._epoch(stage, epoch, trained, opt, ema)
            epoch += 1
            state.done[stage.name] = epoch
            if self.shard.main:
                self._end_epoch(job, stage, modules, opt, ema, state, run)
            if dist.is_initialized():
                dist.barrier()
            if run.stopped:
                return False
        state.optimizer, state.raw = None, None
        if ema is not None:
            model.load_state_dict(ema.model.state_dict())   # later stages and the export see the average
        return True

    def _epoch(self, stage: Stage, epoch: int, trained: torch.nn.Module, opt: torch.optim.Optimizer,
               ema: Ema | None) -> _Epoch:
        """One epoch of optimiser steps on this process's shard; the mean of each loss part over every process."""
        model = stage.model
        steps = stage.steps()   # after ``before_epoch``, which may change the training set
        total = stage.epochs * steps
        t0 = time.time()
        stage.train_mode()
        sums: dict[str, float] = {"loss": 0.0}
        bar = tqdm(stage.batches(epoch, self.shard), total=steps, leave=False, file=sys.stderr,
                   desc=f"{stage.name} epoch {epoch + 1}/{stage.epochs}",
                   disable=not (self.shard.main and sys.stderr.isatty()))
        k = 0
        stopped = False
        lr = stage.lr
        for k, batch in enumerate(bar):
            step = epoch * steps + k
            lr = stage.lr * stage.schedule.factor(step, total)
            for g in opt.param_groups:
                g["lr"] = lr
            loss, parts = stage.loss(trained, batch, self.device)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if stage.clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), stage.clip)
            opt.step()
            if ema is not None:
                ema.update(model, step)
            sums["loss"] += loss.item()
            for key, v in parts.items():
                sums[key] = sums.get(key, 0.0) + v
            bar.set_postfix(loss=f"{sums['loss'] / (k + 1):.4f}", lr=f"{lr:.2e}")
            self.steps_run += 1
            if self.max_steps is not None and self.steps_run >= self.max_steps:
                stopped = True
                break
        if self.shard.world > 1:   # the log reports the mean over every process's batches
            t = torch.tensor([sums[key] for key in sorted(sums)], dtype=torch.float64)
            dist.all_reduce(t)
            sums = {key: float(v) / self.shard.world for key, v in zip(sorted(sums), t)}
        return _Epoch(epoch + 1, {key: v / max(1, k + 1) for key, v in sums.items()}, lr, stopped,
                      round(time.time() - t0, 1), ema.model if ema is not None else model)

    def _end_epoch(self, job: Job, stage: Stage, modules: dict[str, torch.nn.Module], opt: torch.optim.Optimizer,
                   ema: Ema | None, state: _State, run: _Epoch) -> None:
        """Process 0 after an epoch: validate (the average, where kept), save ``best.pt`` when the metric
        improved and ``last.pt`` always, append the log line and print it."""
        model, t1 = stage.model, time.time()
        record: dict[str, Any] = {"stage": stage.name, "epoch": run.epoch, **run.means}
        metrics = stage.validate(run.used, run.epoch)
        record.update({"val": metrics} if metrics is not None else {})
        record.update({"train_s": run.seconds, "val_s": round(time.time() - t1, 1), "lr": run.lr,
                       "device": describe(self.device), "processes": self.shard.world,
                       **({"max_steps": self.max_steps} if run.stopped else {})})
        weights = {n: (run.used if m is model else m).state_dict() for n, m in modules.items()}
        improved = bool(stage.metric and metrics and metrics[stage.metric] < state.best)
        if improved:
            state.best = metrics[stage.metric]
            save({"kind": job.kind, "modules": weights, "stage": stage.name, "epoch": run.epoch,
                  "metrics": metrics, "config": job.config}, self.run_dir / "best.pt")
        checkpoint = {
            "kind": job.kind, "stage": stage.name, "epoch": run.epoch, "done": dict(state.done), "best": state.best,
            "modules": weights, "optimizer": opt.state_dict(), "config": job.config,
            "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}}
        if ema is not None:
            checkpoint["raw"] = {next(n for n, m in modules.items() if m is model): model.state_dict()}
        save(checkpoint, self.last)
        with (self.run_dir / "log.jsonl").open("a") as fh:
            fh.write(json.dumps(record) + "\n")
        print(_line(record, stage.epochs, improved), file=sys.stderr, flush=True)


@dataclass
class _Epoch:
    """What one epoch of a stage left: its number (from 1), the mean loss parts, the last learning rate,
    whether ``max_steps`` stopped it, its seconds and the model to validate and save (the average, where kept)."""

    epoch: int
    means: dict[str, float]
    lr: float
    stopped: bool
    seconds: float
    used: torch.nn.Module


def _line(record: dict, epochs: int, improved: bool) -> str:
    """One readable log line per epoch."""
    val = record.get("val") or {}
    shown = " ".join(f"{k} {v * 100:.2f}%" if k in ("nme", "fr") else f"{k} {v:.4f}" for k, v in val.items()
                     if isinstance(v, (int, float)) and k not in ("n", "threshold"))
    parts = " ".join(f"{k} {v:.4f}" for k, v in record.items() if k not in ("stage", "epoch", "loss")
                     and k in ("cls", "box", "points", "det"))
    return (f"{record['stage']} epoch {record['epoch']}/{epochs} loss {record['loss']:.4f}"
            + (f" ({parts})" if parts else "") + (f" val {shown}" if shown else "")
            + f" ({record['train_s']:.0f}s)" + (" *" if improved else ""))

"""How many trials a worker trains as one model: the user's ``fuse``, or measured per shape (`objectives._calibrate`).

A run trains one trial at a time (Optuna's own `study.optimize`) where fusing cannot apply or does not pay;
`Fusion.why_not` says which, in one line. The default measures the space's typical shape once, when the
run starts, and each new shape a group takes again, on this worker, as busy as its machine is now.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from objectives import Objective
from objectives._calibrate import best_size
from objectives._fused_forward import fusable, probe_rows
from objectives._members import Member

MEASURED = "one trial at a time trains faster here (measured)"
ROUNDS = 2  # a group takes this many times its size in trials, then its shape gives way to a newly sampled one
MOST = 32  # members of one group at most, measured or not: beyond it the ladder has never paid on a CPU or a GPU
# Group sizes measured in this process (or handed down by its parent, `remember`), by what a step's cost depends on:
# the most a measurement could choose, and what it chose.
_MEASURED: dict[tuple, tuple[int, int]] = {}


class Fusion:
    """``fuse``: the group size the user asked for; None: measured."""

    def __init__(self, fuse: int | None, most: int = MOST, seconds: float = 0.01) -> None:
        self.fuse = fuse
        self.most = most
        self.seconds = seconds

    def why_not(self, objective: Objective, typical: Member) -> str | None:
        """Why this run trains its trials one at a time (None: it fuses). ``typical``: a trial of the space's
        typical shape, begun on nothing (its model built, never trained), to measure."""
        reason = fusable(typical.model, probe_rows(objective.splits))
        if reason is None and self.size(objective, typical) == 1:
            reason = MEASURED
        return reason

    def size(self, objective: Objective, member: Member) -> int:
        """How many trials of ``member``'s shape train as one model: the user's number, else measured once."""
        if self.fuse is not None:
            return self.fuse
        key = (_cost_key(member, objective), torch.get_num_threads())
        known = _MEASURED.get(key)
        # A size chosen from a longer ladder holds for a shorter one that reaches it (the best below its end is the
        # same), so a run's worker measures nothing its parent measured for the whole run (up to a third of it).
        if known is None or known[0] < self.most or known[1] > self.most:
            splits = objective.splits
            size = best_size(member.model, member.config, splits, most=self.most, seconds=self.seconds)
            _MEASURED[key] = (self.most, size)
        return _MEASURED[key][1]


def measured() -> dict[tuple, tuple[int, int]]:
    """The sizes this process measured: what a worker process it starts is handed (`remember`)."""
    return dict(_MEASURED)


def remember(sizes: dict[tuple, tuple[int, int]]) -> None:
    """Sizes measured by this process's parent, on this machine as busy as it is (its threads are in each key): a
    worker process need not spend half a second of its run measuring the same again."""
    for key, size in sizes.items():
        _MEASURED.setdefault(key, size)


def _cost_key(member: Member, objective: Objective) -> tuple:
    """What a step's cost depends on: the layers' sizes, dropout or not, the batch size, the rows and the device
    (not dropout's rate, which would make every trial a new shape to measure)."""
    layers = tuple(tuple(p.shape) for p in member.model.parameters())
    dropout = any(isinstance(m, nn.Dropout) and m.p > 0 for m in member.model.modules())
    rows = objective.splits.train_x
    return layers, dropout, member.config.batch_size, tuple(rows.shape), str(rows.device)


def typical_member(objective: Objective, model_defaults: dict[str, Any]) -> Member:
    """A trial of the space's typical configuration (the baseline, else each parameter's middle), begun for
    measuring only: nothing of it is stored."""
    import optuna

    from objectives._params import Fixed, middle

    space = objective.space
    values = space.baseline(model_defaults)
    if values is None:
        values = {name: middle(param) for name, param in space.params if not isinstance(param, Fixed)}
    return objective.begin(optuna.trial.FixedTrial(values), resumable=False)


def fusion_for(
    fuse: int | None,
    objective: Objective,
    model_defaults: dict[str, Any],
    on_note: Callable[[str], None] | None,
    trials: int | None = None,
) -> Fusion | None:
    """How this run groups its trials (None: one at a time, by `study.optimize`). Where the user's model rules
    fusing out, one line says so; a measurement that finds no gain says nothing.

    ``trials``: the trials each worker of the run will do, if known. A measured group takes at most a third
    of them: the sampler learns only from finished trials, and a study trained as one group would be a
    random search."""
    if fuse == 1:
        return None
    fusion = Fusion(fuse, MOST if trials is None else max(1, min(MOST, trials // 3)))
    reason = fusion.why_not(objective, typical_member(objective, model_defaults))
    if reason is None:
        return fusion
    if reason != MEASURED and on_note is not None:
        on_note(f"trials train one at a time: {reason}")
    return None


def workers_for(
    workers: int, fuse: int | None, objective: Objective, model_defaults: dict[str, Any], trials: int | None
) -> int:
    """How many of ``workers`` processes a run of ``trials`` trials starts when its trials train together: a
    process more costs seconds to start (torch's import, its own measuring) and pays only with `ROUNDS` groups'
    worth of trials for each."""
    if workers == 1 or trials is None:
        return workers
    fusion = fusion_for(fuse, objective, model_defaults, None, trials)
    if fusion is None:
        return workers
    size = fusion.size(objective, typical_member(objective, model_defaults))  # measured already, by `fusion_for`
    return max(1, min(workers, trials // (ROUNDS * size)))

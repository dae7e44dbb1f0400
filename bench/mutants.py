"""Mutation testing of the statistical and fault-handling code: do the tests notice when it breaks?

    .venv/bin/python bench/mutants.py                 # every module below; about 40 minutes on 2 cores
    .venv/bin/python bench/mutants.py --only rules    # one of them (rules, plan, splits, encoder, tables, schedule, heartbeat, buffer, pruners)
    .venv/bin/python bench/mutants.py --named         # only the mutants the issues named
    .venv/bin/python bench/mutants.py --per-module 12 # the named ones and 12 of each module's, spread over it

Each mutant changes one thing in one module (a comparison flipped, `and` for `or`, `+` for
`-`, a number moved by one, `True` for `False`, a `not` dropped; plus the named mutants: the
resample seed onto the search's split, the baseline left out, the ranking reversed, the drop
rule loosened, the encoder fitted on every row, an unseeded test split, a stale check that
ignores heartbeats). The module's own tests run against it in a copy of the project; the
mutant is killed when they fail, survives when they pass. Survivors are listed with their line.
"""

from __future__ import annotations

import argparse
import ast
import concurrent.futures
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# module -> the tests that judge it (fast ones: the quick suite's, no real outages)
TARGETS = {
    "rules": ("search/confirmation/_rules.py", ["tests/test_confirmation_rules.py"]),
    "plan": (
        "search/confirmation/_plan.py",
        [
            "tests/test_confirmation.py",
            "-m",
            "not slow",
            "-k",
            "holdout or k_fold or seeds or leaders or baseline or run_confirms or later_confirm or current_plan or adopts",
        ],
    ),
    "splits": (
        "objectives/data/_splits.py",
        [
            "tests/test_confirmation.py",
            "tests/test_data.py",
            "tests/test_table.py",
            "tests/test_tasks.py",
            "-m",
            "not slow",
            "-k",
            "holdout or k_fold or split or stratif or same_in_every or moments or standardised or tiny_splits",
        ],
    ),
    "encoder": (
        "objectives/data/_encoder.py",
        [
            "tests/test_table.py",
            "tests/test_tasks.py",
            "-k",
            "statistic or predict or text_features or parquet or standardised or encoder_standardises or one_hot_block "
            "or bins",
        ],
    ),
    "tables": (
        "objectives/data/_tables.py",
        [
            "tests/test_table.py",
            "tests/test_tasks.py",
            "-k",
            "bad or problem or semicolon or npz or too_many or continuous or text_features or constant or digits or gap_in_a_text "
            "or not_a_number_is_named",
        ],
    ),
    "heartbeat": (
        "search/storages/_heartbeat.py",
        [
            "tests/test_heartbeat.py",
            "tests/test_run.py",
            "-k",
            "(sqlite or journal or guarded or failed_beat or arguments or goes_on or beat_or_none or dies_twice) and not postgresql and not redis",
        ],
    ),
    "schedule": (
        "objectives/_train_config.py",
        ["tests/test_train.py", "tests/test_fused.py", "-k", "cosine or bad_train_config"],
    ),
    "buffer": ("search/storages/_buffer.py", ["tests/test_buffer.py"]),
    "calibrate": ("objectives/_calibrate.py", ["tests/test_calibrate.py"]),
    "fused_optim": ("objectives/_fused_optim.py", ["tests/test_fused.py"]),
    "fusion": ("search/study/_fusion.py", ["tests/test_fusion.py"]),
    "pruners": ("search/study/_pruners.py", ["tests/test_buffer.py", "-k", "snapshot"]),
}

# The mutants the issues named: (target, text to find, its replacement, what it breaks).
NAMED = [
    (
        "plan",
        'seed = int.from_bytes(digest[:4], "big") % 2**31\n    return seed + 1 if seed == study_seed else seed',
        "return study_seed",
        "the resample seed onto the search's own split",
    ),
    (
        "splits",
        '    if resample.kind == "holdout":\n        train, val = _holdout(groups, train, val, resample.seed)',
        '    if resample.kind == "holdout":\n        pass',
        "holdouts validate on the search's validation rows",
    ),
    (
        "plan",
        "    if chosen and baseline is not None and tuple(sorted(baseline.params.items())) not in seen:\n        chosen.append(baseline)",
        "    pass",
        "the baseline left out of the candidates",
    ),
    (
        "rules",
        "    return sorted(candidates, key=order)",
        "    return sorted(candidates, key=order, reverse=True)",
        "the ranking reversed",
    ),
    (
        "rules",
        "        if n >= MIN_ROUNDS and len(alive) >= 2:",
        "        if n >= 1 and len(alive) >= 2:",
        "dropping after one round",
    ),
    ("rules", "alpha / (2 * looks)", "alpha * 4", "the drop rule's level loosened"),
    (
        "rules",
        "        spread = max(statistics.stdev(diffs), resolution)",
        "        spread = statistics.stdev(diffs)",
        "no resolution floor",
    ),
    (
        "encoder",
        "        if not table.classes and table.rows:",
        "        if False:",
        "regression targets not standardised",
    ),
    (
        "tables",
        "    return Table(tuple(numeric_names), numeric, tuple(text_names), text, label_ids, classes, notes)",
        "    return Table(tuple(numeric_names), numeric, tuple(text_names), text, label_ids, classes, ())",
        "constant columns dropped silently",
    ),
    (
        "splits",
        "    rng = np.random.default_rng(seed)\n    held, kept = [], []",
        "    rng = np.random.default_rng()\n    held, kept = [], []",
        "an unseeded test split",
    ),
    (
        "heartbeat",
        "            if beat is not None and grace is not None and (now - beat).total_seconds() > grace:",
        "            if grace is not None:",
        "a stale check that ignores heartbeats (RDB)",
    ),
    (
        "heartbeat",
        "            if isinstance(beat, (int, float)) and grace is not None and now - beat > grace:",
        "            if grace is not None:",
        "a stale check that ignores heartbeats (journal)",
    ),
    (
        "heartbeat",
        "        return max(2 * float(promise), self._grace())",
        "        return self._grace()",
        "a trial judged by the checker's grace, not its own worker's",
    ),
    (
        "heartbeat",
        "        if not isinstance(promise, (int, float)) or promise <= 0:\n            return None",
        "        if not isinstance(promise, (int, float)) or promise <= 0:\n            return self._grace()",
        "a trial whose worker promised no beat judged all the same",
    ),
    (
        "buffer",
        "        if not held.reported:\n            held.reported = True\n            self.flush(tid)\n        else:\n            self._maybe_flush(tid, held)",
        "        self._maybe_flush(tid, held)",
        "a trial's first epoch held back with the rest",
    ),
    (
        "buffer",
        "            self.flush(tid)  # kept on an error: a retried tell writes them then\n            del self.pending[tid]",
        "            del self.pending[tid]",
        "what was held dropped when the trial ends",
    ),
    (
        "buffer",
        "        merged.intermediate_values = {**trial.intermediate_values, **held.intermediate}",
        "        merged.intermediate_values = trial.intermediate_values",
        "the worker's own reads miss its held reports (its pruner decides on stale epochs)",
    ),
    (
        "pruners",
        "        key = (id(study), trial.number)",
        "        key = (id(study), 0)",
        "the snapshot kept across trials",
    ),
]
# The encoder fitted on all rows lives where the encoder is called.
NAMED_ELSEWHERE = [
    (
        "objectives/data/_load.py",
        "    encoder, tensors = _encode(config.bins, pool.take(train_idx), pool.take(val_idx), test)",
        "    encoder, tensors = _encode(config.bins, pool, pool.take(val_idx), test)",
        "the encoder fitted on every row",
        ["tests/test_table.py", "-k", "statistic"],
    ),
]


@dataclass(frozen=True)
class Mutant:
    target: str
    path: str
    line: int
    description: str
    source: str  # the mutated module


class _Mutator(ast.NodeTransformer):
    """Each visit yields the module with exactly one node changed (``self.index``-th change point)."""

    SWAPS = {
        ast.Lt: ast.LtE,
        ast.LtE: ast.Lt,
        ast.Gt: ast.GtE,
        ast.GtE: ast.Gt,
        ast.Eq: ast.NotEq,
        ast.NotEq: ast.Eq,
        ast.In: ast.NotIn,
        ast.NotIn: ast.In,
        ast.Is: ast.IsNot,
        ast.IsNot: ast.Is,
    }
    BINOPS = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.FloorDiv: ast.Div}

    def __init__(self, index: int):
        self.index, self.seen, self.done = index, -1, None
        self.docstrings: set[int] = set()

    def _hit(self, node, what: str) -> bool:
        self.seen += 1
        if self.seen == self.index:
            self.done = (getattr(node, "lineno", 0), what)
            return True
        return False

    def visit_Compare(self, node):
        self.generic_visit(node)
        for i, op in enumerate(node.ops):
            if type(op) in self.SWAPS and self._hit(node, f"{type(op).__name__} -> {self.SWAPS[type(op)].__name__}"):
                node.ops[i] = self.SWAPS[type(op)]()
        return node

    def visit_BoolOp(self, node):
        self.generic_visit(node)
        if self._hit(node, "and <-> or"):
            node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        return node

    def visit_BinOp(self, node):
        self.generic_visit(node)
        if type(node.op) in self.BINOPS and self._hit(
            node, f"{type(node.op).__name__} -> {self.BINOPS[type(node.op)].__name__}"
        ):
            node.op = self.BINOPS[type(node.op)]()
        return node

    def visit_UnaryOp(self, node):
        self.generic_visit(node)
        if isinstance(node.op, ast.Not) and self._hit(node, "not dropped"):
            return node.operand
        return node

    def visit_Constant(self, node):
        if id(node) in self.docstrings:
            return node
        if isinstance(node.value, bool) and self._hit(node, f"{node.value} -> {not node.value}"):
            return ast.copy_location(ast.Constant(not node.value), node)
        if (
            isinstance(node.value, (int, float))
            and not isinstance(node.value, bool)
            and self._hit(node, f"{node.value} -> {node.value + 1}")
        ):
            return ast.copy_location(ast.Constant(node.value + 1), node)
        return node

    def visit_JoinedStr(self, node):
        return node  # messages: not logic


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def mutants(target: str) -> list[Mutant]:
    path = TARGETS[target][0]
    source = (ROOT / path).read_text()
    out, index = [], 0
    while True:
        tree = ast.parse(source)
        mutator = _Mutator(index)
        mutator.docstrings = _docstrings(tree)
        mutated = mutator.visit(tree)
        if mutator.done is None:
            return out
        line, what = mutator.done
        if not _in_annotation_or_all(source, line):
            out.append(Mutant(target, path, line, what, ast.unparse(ast.fix_missing_locations(mutated))))
        index += 1


def _in_annotation_or_all(source: str, line: int) -> bool:
    text = source.splitlines()[line - 1].strip()
    return text.startswith(("__all__", "from ", "import ")) or text.startswith("#")


def named(only: str | None) -> list[Mutant]:
    out = []
    for target, find, replace, what in NAMED:
        if only and target != only:
            continue
        path = TARGETS[target][0]
        source = (ROOT / path).read_text()
        if find not in source:
            raise SystemExit(f"named mutant '{what}': the code it changes is not in {path}")
        line = source[: source.index(find)].count("\n") + 1
        out.append(Mutant(target, path, line, f"named: {what}", source.replace(find, replace, 1)))
    return out


def run(mutant: Mutant, copy: Path, tests: list[str]) -> bool:
    """Whether the tests kill ``mutant`` (they fail on it)."""
    target = copy / mutant.path
    original = target.read_text()
    target.write_text(mutant.source)
    try:
        path = os.pathsep.join(p for p in (str(copy), os.environ.get("PYTHONPATH", "")) if p)
        env = {**os.environ, "PYTHONPATH": path, "SEARCH_JOBS": "1", "SEARCH_THREADS": "1"}
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests],
            cwd=copy,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        return result.returncode != 0
    except subprocess.TimeoutExpired:
        return True  # a mutant that hangs the tests is noticed
    finally:
        target.write_text(original)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(TARGETS))
    parser.add_argument("--named", action="store_true", help="only the named mutants")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--per-module",
        type=int,
        metavar="N",
        help="at most N generated mutants per module, evenly spread over it (the named ones always)",
    )
    args = parser.parse_args()
    plan = named(args.only)
    if not args.named:
        for target in TARGETS:
            if args.only in (None, target):
                found = mutants(target)
                if args.per_module and len(found) > args.per_module:
                    step = len(found) / args.per_module
                    found = [found[int(i * step)] for i in range(args.per_module)]
                plan += found
    copies = []
    for i in range(args.workers):
        copy = Path(tempfile.mkdtemp(prefix=f"mutants{i}-"))
        shutil.copytree(
            ROOT,
            copy,
            dirs_exist_ok=True,
            ignore=shutil.ignore_patterns(".venv", ".git", "studies", "site", ".whl", ".devdata", "__pycache__"),
        )
        copies.append(copy)
    # A mutant counts as killed when its tests fail: first make sure they pass on the code as it is.
    for target in sorted({m.target for m in plan}):
        unchanged = Mutant(target, TARGETS[target][0], 0, "none", (ROOT / TARGETS[target][0]).read_text())
        if run(unchanged, copies[0], TARGETS[target][1]):
            raise SystemExit(f"{target}'s tests fail on the unchanged code: fix them before judging mutants")
    print(f"{len(plan)} mutants", flush=True)
    results: dict[str, list[tuple[Mutant, bool]]] = {}

    def judge(item):
        number, mutant = item
        killed = run(mutant, copies[number % len(copies)], TARGETS[mutant.target][1])
        print(f"  {'killed' if killed else 'SURVIVED'}: {mutant.path}:{mutant.line}  {mutant.description}", flush=True)
        return mutant, killed

    # Each copy runs one mutant at a time: the workers take mutants in turn, one copy each.
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(copies)) as pool:
        lanes = [[(i, m) for i, m in enumerate(plan) if i % len(copies) == lane] for lane in range(len(copies))]
        for lane_results in pool.map(lambda lane: [judge(item) for item in lane], lanes):
            for mutant, killed in lane_results:
                results.setdefault(mutant.target, []).append((mutant, killed))
    for path, find, replace, what, tests in NAMED_ELSEWHERE:
        if args.only and args.only != "encoder":
            continue
        source = (ROOT / path).read_text()
        mutant = Mutant(
            "encoder",
            path,
            source[: source.index(find)].count("\n") + 1,
            f"named: {what}",
            source.replace(find, replace, 1),
        )
        results.setdefault("encoder", []).append((mutant, run(mutant, copies[0], tests)))
    total = killed = 0
    for target, rows in results.items():
        survivors = [m for m, k in rows if not k]
        total += len(rows)
        killed += len(rows) - len(survivors)
        print(
            f"\n{target} ({TARGETS[target][0]}): {len(rows)} mutants, {len(rows) - len(survivors)} killed, {len(survivors)} survived"
        )
        for m in survivors:
            print(f"  survived: {m.path}:{m.line}  {m.description}")
    print(f"\nall: {total} mutants, {killed} killed, {total - killed} survived")
    for copy in copies:
        shutil.rmtree(copy, ignore_errors=True)


if __name__ == "__main__":
    main()

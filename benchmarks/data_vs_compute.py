"""Where a tiny config's training step goes: waiting for the batch (data) against the step itself (compute),
reading one ``.mat`` per window against the packed array (``task.packed=true``).

Usage (from the repository root, in the environment with fairseq-signals)::

    nice -n 10 python benchmarks/data_vs_compute.py [--data DIR | --input ../shared/data/mitdb --records 6]
        [--configs contrastive_cnn_tiny st_mem_vit_s_tiny ...] [--steps 10] [--warmup 2] [--repeats 3]

Without ``--data`` it links ``--records`` MIT-BIH records into a temporary folder and preprocesses them with
``--packed`` (default preset, a random 66/17/17 split by patient so that every split has windows), which
writes the ``.mat`` windows and their packed copy. For every config it builds the task, model, criterion and
trainer as ``physioclr-hydra-train`` does (same configs, fairseq-signals' ``Trainer`` and epoch iterator,
``dataset.num_workers`` of the config: 0 in the tiny configs, so the main process loads the batches), once
with ``task.packed=false`` and once with ``true``, and alternates blocks of ``--steps`` updates between the
two ``--repeats`` times. It times ``next(iterator)`` (data) apart from ``trainer.train_step`` (compute:
forward, loss, backward, optimiser step, fairseq-signals' bookkeeping) and prints the median of each per
update and the data share of the update. fairseq-signals' iterator prefetches ``dataset.data_buffer_size``
(10) batches in a background thread, so ``data`` is the stall the trainer sees: near zero while the loader
keeps up, its work then competing with the step for the CPU instead (``--buffer 0`` loads each batch in
the training thread, so that ``data`` is the whole loading cost). ``loader`` is that cost measured alone:
building one batch (items and collater: read, crop, views) serially, between the blocks.

Configs whose input contract is not the default preset's (ST-MEM and ECG-JEPA: 250 Hz presets) get
``task.sample_rate=null``: the windows keep the default preset's 2,500 samples, the shape those presets
also write. PhysioCLR (task ``ecg_feature``) needs the feature files of ``--features`` preprocessing and is
left out by default.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

REPO = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO / "configs" / "pretraining"
DEFAULT_CONFIGS = (
    "contrastive_cnn_tiny",
    "contrastive_cnn_transformer_tiny",
    "clocs_cmsc_tiny",
    "ecg_mae_tiny",
    "st_mem_vit_s_tiny",
    "ecg_jepa_tiny",
    "lfbt_tiny",
)
RATE_FREE = ("st_mem_vit_s_tiny", "ecg_jepa_tiny")  # 250 Hz presets; same window shape at the default preset


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None, help="data preprocessed with --packed (skips preprocessing)")
    parser.add_argument("--input", default=str(REPO.parent / "shared" / "data" / "mitdb"))
    parser.add_argument("--records", type=int, default=6, help="records of --input to preprocess")
    parser.add_argument("--configs", nargs="+", default=list(DEFAULT_CONFIGS))
    parser.add_argument("--steps", type=int, default=10, help="timed updates per block")
    parser.add_argument("--warmup", type=int, default=2, help="untimed updates before the first block")
    parser.add_argument("--repeats", type=int, default=3, help="blocks per path, alternating .mat / packed")
    parser.add_argument(
        "--buffer",
        type=int,
        default=None,
        help="dataset.data_buffer_size (default: the config's, fairseq-signals' 10 prefetched batches; 0: load "
        "each batch in the training thread when it is needed)",
    )
    return parser.parse_args(argv)


# ------------------------------------------------------------------------------------------- data
def preprocess_subset(source: Path, records: int, tmp: Path) -> Path:
    """Link the first ``records`` records of ``source`` into ``tmp/input`` and preprocess them with
    ``--packed``; returns the output folder."""
    names = sorted(p.stem for p in source.glob("*.hea"))[:records]
    inputs, output = tmp / "input", tmp / "data"
    inputs.mkdir(parents=True)
    for name in names:
        for path in source.glob(f"{name}.*"):
            (inputs / path.name).symlink_to(path)
    command = [sys.executable, "-m", "physioclr_ext.preprocess", "--input", str(inputs), "--output", str(output)]
    command += ["--packed", "--no-progress", "--split", "random", "--split-fractions", "0.66", "0.17", "0.17"]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return output


# ------------------------------------------------------------------------------------------- trainer
def compose(config: str, overrides: List[str], fields: Dict[str, Dict[str, Any]]) -> Any:
    """The configuration ``physioclr-hydra-train --config-dir configs/pretraining --config-name config
    OVERRIDES`` composes (``fields[section]`` set in that section, as ``+section.NAME=VALUE`` would), resolved
    as fairseq-signals' ``hydra_main`` resolves it."""
    from fairseq_signals.dataclass.initialize import add_defaults, hydra_init
    from hydra.core.global_hydra import GlobalHydra
    from hydra.experimental import compose as hydra_compose
    from hydra.experimental import initialize_config_dir
    from omegaconf import OmegaConf, open_dict

    hydra_init(config)
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR)):
        cfg = hydra_compose(config_name=config, overrides=overrides)
    with open_dict(cfg):
        for section, values in fields.items():
            cfg[section].update(values)
    add_defaults(cfg)
    cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True, enum_to_str=True))
    OmegaConf.set_struct(cfg, True)
    return cfg


class Run:
    """A trainer and its endless batch stream for one config and one data path (``.mat`` or packed)."""

    def __init__(self, config: str, data: Path, packed: bool, save_dir: Path, buffer: Optional[int]) -> None:
        from fairseq_signals import tasks
        from fairseq_signals.trainer import Trainer

        overrides = [f"task.data={data}", f"checkpoint.save_dir={save_dir}"]
        overrides += ["optimization.max_update=100000", "common.log_interval=100000"]
        if config in RATE_FREE:
            overrides.append("task.sample_rate=null")
        fields: Dict[str, Dict[str, Any]] = {"task": {"packed": packed}}
        if buffer is not None:
            fields["dataset"] = {"data_buffer_size": buffer}
        self.cfg = compose(config, overrides, fields)
        self.task = task = tasks.setup_task(self.cfg.task)
        model, criterion = task.build_model(self.cfg.model), task.build_criterion(self.cfg.criterion)
        self.trainer = Trainer(self.cfg, task, model, criterion)
        self.epoch_itr = self.trainer.get_train_iterator(epoch=1, load_dataset=True)
        self.batches = self._epoch()

    def _epoch(self) -> Any:
        from fairseq_signals.data import iterators

        self.trainer.begin_epoch(self.epoch_itr.epoch)
        return iterators.GroupedIterator(self.epoch_itr.next_epoch_itr(shuffle=True), 1)

    def next_batch(self) -> Any:
        """The next update's samples, starting a new epoch when one ends (its start is data time too)."""
        try:
            return next(self.batches)
        except StopIteration:
            self.epoch_itr = self.trainer.get_train_iterator(self.epoch_itr.next_epoch_idx, load_dataset=False)
            self.batches = self._epoch()
            return next(self.batches)

    def loader_alone(self, n: int, seed: int = 0) -> List[float]:
        """Seconds to build each of ``n`` batches serially in this thread: the dataset's items and collater
        (read, crop, views), no iterator, no prefetch thread, no training step."""
        import numpy as np

        dataset = self.task.dataset(self.cfg.dataset.train_subset)
        rng = np.random.default_rng(seed)
        seconds = []
        for _ in range(n):
            indices = rng.choice(len(dataset), size=int(self.cfg.dataset.batch_size), replace=False)
            start = time.perf_counter()
            dataset.collator([dataset[int(i)] for i in indices])
            seconds.append(time.perf_counter() - start)
        return seconds

    def updates(self, n: int, data: List[float], compute: List[float]) -> None:
        """Run ``n`` updates, appending each one's data and compute seconds."""
        from fairseq_signals.logging import metrics

        for _ in range(n):
            start = time.perf_counter()
            samples = self.next_batch()
            loaded = time.perf_counter()
            with metrics.aggregate("train_inner"):
                self.trainer.train_step(samples)
            data.append(loaded - start)
            compute.append(time.perf_counter() - loaded)


def bench_config(config: str, data: Path, tmp: Path, args: argparse.Namespace) -> Dict[str, Dict[str, float]]:
    """Median data and compute milliseconds per update of ``config`` on each path."""
    runs = {name: Run(config, data, name == "packed", tmp / config / name, args.buffer) for name in ("mat", "packed")}
    times: Dict[str, Dict[str, List[float]]] = {name: {"data": [], "compute": [], "loader": []} for name in runs}
    for run in runs.values():
        run.updates(args.warmup, [], [])
    for _ in range(args.repeats):  # interleaved: a load spike on the shared machine hits both alike
        for name, run in runs.items():
            run.updates(args.steps, times[name]["data"], times[name]["compute"])
            times[name]["loader"] += run.loader_alone(args.steps)
    out = {}
    for name, t in times.items():
        out[name] = {key: 1000 * statistics.median(values) for key, values in t.items()}
        out[name]["batch"] = float(runs[name].cfg.dataset.batch_size)
    return out


# ------------------------------------------------------------------------------------------- table
def data_share(data_ms: float, compute_ms: float) -> float:
    """Percentage of the update spent waiting for the batch."""
    total = data_ms + compute_ms
    return 100 * data_ms / total if total > 0 else 0.0


def ratio(a: float, b: float) -> str:
    """``a / b`` as ``"12.3x"``, ``"-"`` when ``b`` is not positive."""
    return f"{a / b:.1f}x" if b > 0 else "-"


def format_table(results: Dict[str, Dict[str, Dict[str, float]]]) -> str:
    """Rows: config; per path the median ms per update waiting for the batch (data), in the step (compute), the
    data share of the update, and the loader alone (ms to build one batch serially); then the ``.mat`` path's
    loader time over the packed path's."""
    head = f"{'config':<33}{'batch':>6}"
    for path in ("mat", "packed"):
        head += f"{path + ' data':>12}{'compute':>9}{'data %':>7}{'loader':>8}"
    head += f"{'loader mat/packed':>19}"
    lines = [head, "-" * len(head)]
    for config, by_path in results.items():
        row = f"{config:<33}{int(by_path['mat']['batch']):>6}"
        for path in ("mat", "packed"):
            t = by_path[path]
            row += (
                f"{t['data']:>12.1f}{t['compute']:>9.1f}{data_share(t['data'], t['compute']):>6.0f}%{t['loader']:>8.1f}"
            )
        lines.append(row + f"{ratio(by_path['mat']['loader'], by_path['packed']['loader']):>19}")
    return "\n".join(lines)


def main() -> None:
    args = parse_args()
    from physioclr_ext.runners import compat, registration

    compat.check_environment()
    compat.apply_patches()
    registration.register_all()
    with tempfile.TemporaryDirectory(prefix="data_vs_compute_") as name:
        tmp = Path(name)
        data = Path(args.data) if args.data else preprocess_subset(Path(args.input), args.records, tmp)
        results = {}
        for config in args.configs:
            results[config] = bench_config(config, data.resolve(), tmp, args)
            print(f"  {config}: {results[config]}", file=sys.stderr, flush=True)
    print(
        f"ms per update, median of {args.repeats} x {args.steps} updates per path (alternating), "
        f"torch threads {os.environ.get('OMP_NUM_THREADS', 'default')}, data_buffer_size "
        f"{'config' if args.buffer is None else args.buffer}; data = waiting for next(iterator), "
        "loader = building one batch alone"
    )
    print(format_table(results), flush=True)
    # fairseq-signals' prefetch threads are still blocked on their queues: leave without joining them
    os._exit(0)


if __name__ == "__main__":
    main()

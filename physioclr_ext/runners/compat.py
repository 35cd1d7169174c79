"""Compatibility with fairseq-signals: supported versions and guarded upstream fixes.

fairseq-signals (https://github.com/Jwoo5/fairseq-signals) is not on PyPI and pins
an old Hydra stack. This module

* states the versions that work and checks them early
  (:func:`check_environment`), so a wrong setup fails with one clear message
  instead of a deep traceback, and
* works around upstream defects that stop supported use (:func:`apply_patches`).
  Every patch is guarded: it is applied only where the defect is present, it
  marks what it replaced, and applying twice is a no-op.

Nothing here imports fairseq-signals at module import time.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import sys
import types
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

SUPPORTED_PYTHON = ((3, 9), (3, 10))
"""Oldest and newest Python (major, minor) that fairseq-signals runs on."""

REQUIREMENTS: Dict[str, str] = {
    "hydra-core": "==1.0.7",
    "omegaconf": "==2.0.6",
    "numpy": "<2",
    "transformers": "<4.40 (only if installed)",
}
"""Human-readable version requirements printed by :func:`environment_report`."""

INSTALL_HINT = (
    "physioclr-ext trains through fairseq-signals, which is not on PyPI. Install it into a\n"
    "Python 3.9/3.10 environment from its repository (https://github.com/Jwoo5/fairseq-signals,\n"
    "see its README), with these versions:\n"
    "    pip install 'pip<24.1'   # newer pip rejects omegaconf 2.0.6's metadata\n"
    "    pip install 'numpy<2' 'hydra-core==1.0.7' 'omegaconf==2.0.6' 'transformers<4.40'\n"
    "    pip install -e /path/to/fairseq-signals   # builds its Cython extension\n"
    "then `pip install -e .` in this repository."
)


class UnsupportedEnvironment(RuntimeError):
    """Raised when fairseq-signals is missing or runs on unsupported versions."""


@dataclass(frozen=True)
class Problem:
    """One reason the environment cannot run fairseq-signals."""

    what: str
    found: str
    need: str

    def __str__(self) -> str:
        return f"{self.what}: found {self.found}, need {self.need}"


def _version_tuple(version: str) -> Tuple[int, ...]:
    """Leading numeric components of a version string: ``"1.0.7.post1" -> (1, 0, 7)``."""
    parts: List[int] = []
    for piece in version.split("."):
        digits = ""
        for ch in piece:
            if not ch.isdigit():
                break
            digits += ch
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def _installed_version(dist: str) -> Optional[str]:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def find_problems(
    python: Tuple[int, int] = (sys.version_info[0], sys.version_info[1]),
    versions: Optional[Dict[str, Optional[str]]] = None,
    fairseq_signals_error: Optional[str] = None,
) -> List[Problem]:
    """List what stops fairseq-signals from running here.

    Args:
        python: the interpreter's (major, minor).
        versions: installed versions by distribution name (``None`` = not installed);
            read from the environment when omitted.
        fairseq_signals_error: why ``import fairseq_signals`` failed, if it did;
            probed when omitted.

    Returns:
        An empty list when everything is supported.
    """
    if versions is None:
        versions = {d: _installed_version(d) for d in ("hydra-core", "omegaconf", "numpy", "transformers")}
    if fairseq_signals_error is None:
        fairseq_signals_error = probe_fairseq_signals()
    problems: List[Problem] = []
    low, high = SUPPORTED_PYTHON
    if not low <= python <= high:
        problems.append(Problem("Python", "{}.{}".format(*python), "3.9 or 3.10"))
    checks: Iterable[Tuple[str, Callable[[Tuple[int, ...]], bool], str, bool]] = (
        ("hydra-core", lambda v: v[:2] == (1, 0), "1.0.7", True),
        ("omegaconf", lambda v: v[:2] == (2, 0), "2.0.6", True),
        ("numpy", lambda v: v[:1] < (2,), "< 2", True),
        ("transformers", lambda v: v[:2] < (4, 40), "< 4.40", False),
    )
    for dist, ok, need, required in checks:
        found = versions.get(dist)
        if found is None:
            if required:
                problems.append(Problem(dist, "not installed", need))
        elif not ok(_version_tuple(found)):
            problems.append(Problem(dist, found, need))
    if fairseq_signals_error:
        problems.append(Problem("fairseq_signals", fairseq_signals_error, "an importable install"))
    return problems


def probe_fairseq_signals() -> str:
    """Try ``import fairseq_signals``; return ``""`` on success, else the reason."""
    try:
        importlib.import_module("fairseq_signals")
        importlib.import_module("fairseq_cli")
    except Exception as exc:  # any failure (missing, numpy ABI, ...) means unusable
        return f"{type(exc).__name__}: {exc}"
    return ""


def environment_report(problems: List[Problem]) -> str:
    """A message naming each problem and what to install."""
    lines = ["fairseq-signals cannot run in this environment:"]
    lines += [f"  - {p}" for p in problems]
    lines += ["", INSTALL_HINT]
    return "\n".join(lines)


def check_environment() -> None:
    """Raise :class:`UnsupportedEnvironment` with one clear message if unsupported."""
    problems = find_problems()
    if problems:
        raise UnsupportedEnvironment(environment_report(problems))


# ----------------------------------------------------------------------------------
# Upstream fixes. Each returns True when it changed something.
# ----------------------------------------------------------------------------------


def clip_grad_norm_(params: Any, max_norm: float, aggregate_norm_fn: Optional[Callable] = None) -> Any:
    """Clip gradients by their global L2 norm, on whatever device the gradients live.

    Same contract as ``fairseq_signals.utils.utils.clip_grad_norm_``: parameters
    marked ``expert`` are scaled but left out of the norm; returns the total norm
    before clipping.
    """
    import torch

    if isinstance(params, torch.Tensor):
        params = [params]
    with_grad = [p for p in params if p is not None and getattr(p, "grad", None) is not None]
    grads = [p.grad.detach() for p in with_grad if not hasattr(p, "expert")]
    expert_grads = [p.grad.detach() for p in with_grad if hasattr(p, "expert")]
    if not grads:
        total_norm = torch.tensor(0.0)
    elif len(grads) == 1:
        total_norm = torch.norm(grads[0], p=2, dtype=torch.float32)
    else:
        device = grads[0].device
        norms = [torch.norm(g, p=2, dtype=torch.float32).to(device) for g in grads]
        total_norm = torch.norm(torch.stack(norms))
    if aggregate_norm_fn is not None:
        total_norm = aggregate_norm_fn(total_norm)
    if max_norm > 0:
        clip_coef = (float(max_norm) / (total_norm + 1e-6)).clamp_(max=1)
        for g in grads + expert_grads:
            g.mul_(clip_coef.to(g.device))
    return total_norm


def _upstream_source(current: Any) -> Optional[str]:
    """Source of an upstream function a patch may replace, or None where there is nothing to do:
    already replaced here (``_physioclr_patched``) or its source cannot be read."""
    if getattr(current, "_physioclr_patched", False):
        return None
    try:
        return inspect.getsource(current)
    except (OSError, TypeError):
        return None


def _mark_patched(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn._physioclr_patched = True  # type: ignore[attr-defined]
    return fn


def patch_clip_grad_norm() -> bool:
    """fairseq_signals/utils/utils.py: ``clip_grad_norm_`` tests ``torch.cuda.is_available``
    (the function object, always truthy) instead of calling it, then calls
    ``torch.cuda.current_device()``, so every training step with gradient clipping
    crashes on a CPU-only machine. Replace it where the defect is present."""
    utils = importlib.import_module("fairseq_signals.utils.utils")
    source = _upstream_source(utils.clip_grad_norm_)
    if source is None or "torch.cuda.is_available:" not in source:
        return False  # patched already, or upstream fixed it
    utils.clip_grad_norm_ = _mark_patched(clip_grad_norm_)  # type: ignore[attr-defined]
    return True


class _TrustedTorchLoad(types.ModuleType):
    """Stands in for ``torch`` inside one upstream module: forwards every attribute
    to torch, but ``load`` defaults to ``weights_only=False``.

    fairseq-signals checkpoints pickle OmegaConf configs and numpy objects, which
    torch >= 2.6 refuses to unpickle by default (``weights_only=True``). Loading
    a checkpoint executes pickled code: load only checkpoints you trust, exactly
    as fairseq-signals did before torch 2.6.
    """

    def __init__(self, torch_module: types.ModuleType) -> None:
        super().__init__("torch")
        self._torch = torch_module

    def __getattr__(self, name: str) -> Any:
        return getattr(self._torch, name)

    def load(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("weights_only", False)
        return self._torch.load(*args, **kwargs)


def _torch_load_defaults_to_weights_only() -> bool:
    import torch

    return _version_tuple(torch.__version__) >= (2, 6)


def patch_checkpoint_loading(
    modules: Iterable[str] = (
        "fairseq_signals.utils.checkpoint_utils",
        "fairseq_signals.distributed.utils",
    ),
) -> bool:
    """fairseq_signals/utils/checkpoint_utils.py (``load_checkpoint_to_cpu``) and
    fairseq_signals/distributed/utils.py (``all_gather_list``/``broadcast_object``)
    call ``torch.load`` without ``weights_only``; under torch >= 2.6 resuming,
    fine-tuning from a checkpoint and inference all fail with an UnpicklingError.
    Give those modules a ``torch`` whose ``load`` keeps the pre-2.6 default."""
    if not _torch_load_defaults_to_weights_only():
        return False
    changed = False
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        current = getattr(module, "torch", None)
        if current is None or isinstance(current, _TrustedTorchLoad):
            continue
        if "weights_only" in inspect.getsource(module):
            continue  # upstream fixed it
        module.torch = _TrustedTorchLoad(current)  # type: ignore[attr-defined]
        changed = True
    return changed


def _print_exception(etype: Any = None, value: Any = None, tb: Any = None, **kwargs: Any) -> None:
    """``traceback.print_exception`` that also accepts the ``etype`` keyword of Python < 3.10."""
    import traceback

    traceback.print_exception(type(value) if value is not None else etype, value, tb, **kwargs)


def patch_hydra_error_report() -> bool:
    """hydra/_internal/utils.py (hydra-core 1.0.7, pinned by fairseq-signals) reports a
    failed run with ``print_exception(etype=None, ...)``; Python 3.10 removed that
    keyword, so every training error is hidden behind "TypeError: print_exception()
    got an unexpected keyword argument 'etype'". Give hydra a tolerant version."""
    if sys.version_info < (3, 10):
        return False
    try:
        hydra_utils = importlib.import_module("hydra._internal.utils")
    except ImportError:
        return False
    current = getattr(hydra_utils, "print_exception", None)
    if current is None or current is _print_exception:
        return False
    if "etype=" not in inspect.getsource(hydra_utils):
        return False
    hydra_utils.print_exception = _print_exception  # type: ignore[attr-defined]
    return True


def patch_inference_store() -> bool:
    """fairseq_cli/inference.py calls ``initialize_store(dtype=, save_file=, shape=,
    save_directory=)``, but fairseq_signals/utils/store.py changed it to
    ``initialize_store(save_path, dtype, shape)``, so ``fairseq-hydra-inference``
    fails with "unexpected keyword argument 'save_file'" before writing anything.
    Give the inference module an adapter that accepts both call forms."""
    try:
        inference = importlib.import_module("fairseq_cli.inference")
        store = importlib.import_module("fairseq_signals.utils.store")
    except ImportError:
        return False
    current = getattr(inference, "initialize_store", None)
    if current is None or getattr(current, "_physioclr_patched", False):
        return False
    params = inspect.signature(store.initialize_store).parameters
    if "save_file" in params or "save_file=" not in inspect.getsource(inference):
        return False
    new_initialize_store = store.initialize_store

    def initialize_store(
        *args: Any, save_file: Optional[str] = None, save_directory: Optional[str] = None, **kwargs: Any
    ) -> Any:
        if save_file is not None:
            import os

            os.makedirs(save_directory or ".", exist_ok=True)
            kwargs["save_path"] = os.path.join(save_directory or ".", save_file)
        return new_initialize_store(*args, **kwargs)

    inference.initialize_store = _mark_patched(initialize_store)  # type: ignore[attr-defined]
    return True


def _next_epoch_idx(self: Any) -> int:
    """Epoch index after ``next_epoch_itr`` is called (fairseq's original logic)."""
    if self._next_epoch_itr is not None:
        return self.epoch
    if self._cur_epoch_itr is not None and self.end_of_epoch():
        return self.epoch + 1
    return self.epoch


def patch_resume_mid_epoch() -> bool:
    """fairseq_signals/data/iterators.py: ``EpochBatchIterator.next_epoch_idx`` lacks a
    ``return`` in its first branch, so it returns None whenever a checkpoint saved in
    the middle of an epoch is restored, and resuming crashes in fairseq_cli/train.py
    with "'<=' not supported between instances of 'NoneType' and 'int'". Checked by
    behaviour: the property is replaced only if it returns None in that state."""
    iterators = importlib.import_module("fairseq_signals.data.iterators")
    cls = iterators.EpochBatchIterator
    if getattr(cls.next_epoch_idx.fget, "_physioclr_patched", False):
        return False
    probe = object.__new__(cls)
    probe.__dict__.update(epoch=3, _next_epoch_itr=object(), _cur_epoch_itr=None)
    if cls.next_epoch_idx.fget(probe) == 3:
        return False  # upstream fixed it
    cls.next_epoch_idx = property(_mark_patched(_next_epoch_idx), doc=_next_epoch_idx.__doc__)
    return True


def _cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def _free_port() -> int:
    """A TCP port on localhost that is free now (for the workers' rendezvous)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("localhost", 0))
        return int(s.getsockname()[1])


def spawned_worker(i: int, main: Callable[..., Any], cfg: Any, kwargs: Dict[str, Any]) -> None:
    """Body of every training process that :func:`call_main` spawns.

    A spawned process is a fresh interpreter: the fixes of this module and the package's
    registration made in the launcher do not reach it. Apply them, then run fairseq-signals'
    own ``distributed_main`` (process group, ``main``, final barrier).
    """
    apply_patches()
    # by name: registration imports this module, and files import one way
    importlib.import_module("physioclr_ext.runners.registration").register_all()
    distributed_utils = importlib.import_module("fairseq_signals.distributed.utils")
    distributed_utils.distributed_main(i, main, cfg, kwargs)


_TORCHRUN_ENV = ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK")


def call_main(cfg: Any, main: Callable[..., Any], **kwargs: Any) -> None:
    """``fairseq_signals.distributed.utils.call_main`` that also starts CPU workers.

    * ``distributed_world_size=N > 1`` without CUDA: N processes on this machine joined over
      ``tcp://localhost:<free port>`` (upstream asserts N <= the number of GPUs, 0 here, and
      would spawn min(0, N) processes);
    * with GPUs: one process per GPU as upstream, ``min(device_count, N)``;
    * under ``torchrun`` (``RANK``, ``WORLD_SIZE``, ... set): this process is one worker, nothing is
      spawned (upstream spawned again inside every torchrun worker);
    * every spawned process runs :func:`spawned_worker`, so the fixes and the registration hold there.
    """
    import os

    import torch

    distributed_utils = importlib.import_module("fairseq_signals.distributed.utils")
    dt = cfg.distributed_training
    torchrun = all(key in os.environ for key in _TORCHRUN_ENV)
    if dt.distributed_init_method is None:
        if not torchrun and dt.distributed_world_size > 1 and not _cuda_available():
            dt.distributed_init_method = f"tcp://localhost:{_free_port()}"
        else:
            distributed_utils.infer_init_method(dt)
    if dt.distributed_init_method is None:
        main(cfg, **kwargs)
        return
    if torchrun:
        apply_patches()
        distributed_utils.distributed_main(int(os.environ.get("LOCAL_RANK", 0)), main, cfg, kwargs)
        return
    start_rank = dt.distributed_rank
    dt.distributed_rank = None  # assigned per process: start_rank + i
    kwargs["start_rank"] = start_rank
    nprocs = (
        min(torch.cuda.device_count(), dt.distributed_world_size) if _cuda_available() else dt.distributed_world_size
    )
    torch.multiprocessing.spawn(fn=spawned_worker, args=(main, cfg, kwargs), nprocs=nprocs, join=True)


class _GlooWithoutCUDA(types.ModuleType):
    """Stands in for ``torch.distributed`` inside fairseq_signals/distributed/utils.py: forwards every
    attribute, but ``init_process_group`` falls back from NCCL (GPU only) to gloo where CUDA is absent."""

    def __init__(self, dist_module: types.ModuleType) -> None:
        super().__init__("torch.distributed")
        self._dist = dist_module

    def __getattr__(self, name: str) -> Any:
        return getattr(self._dist, name)

    def init_process_group(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("backend") == "nccl" and not _cuda_available():
            kwargs["backend"] = "gloo"
        return self._dist.init_process_group(*args, **kwargs)


def _all_gather_list_cpu(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def all_gather_list(data: Any, group: Any = None, max_size: int = 16384) -> List[Any]:
        if _cuda_available():
            return list(original(data, group=group, max_size=max_size))
        import torch.distributed as dist

        distributed_utils = importlib.import_module("fairseq_signals.distributed.utils")
        utils = importlib.import_module("fairseq_signals.utils.utils")
        group = distributed_utils.get_global_group() if group is None else group
        out: List[Any] = [None] * dist.get_world_size(group=group)
        dist.all_gather_object(out, utils.move_to_cpu(data), group=group)
        return out

    return _mark_patched(all_gather_list)


def _ddp_on_cpu(ddp_class: Any) -> Callable[..., Any]:
    def DistributedDataParallel(module: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N802 - stands for the class
        if all(p.device.type == "cpu" for p in module.parameters()):
            kwargs.pop("device_ids", None)
            kwargs.pop("output_device", None)
        return ddp_class(module, *args, **kwargs)

    return _mark_patched(DistributedDataParallel)


def patch_cpu_distributed() -> bool:
    """Data-parallel training on CPU (gloo), e.g. ``distributed_training.distributed_world_size=2``.
    fairseq-signals assumes one GPU per worker in four places:

    * fairseq_signals/distributed/utils.py ``call_main``/``_infer_single_node_init`` assert the
      world size is at most ``torch.cuda.device_count()`` and spawn that many processes:
      replaced by :func:`call_main` (CPU: N processes; spawned ones get the fixes too);
    * ``distributed_init`` hard-codes ``backend="nccl"``: gloo where CUDA is absent;
    * fairseq_signals/models/distributed_model.py passes ``device_ids=[device_id]`` to
      ``DistributedDataParallel``, which torch refuses for a CPU module: dropped for CPU modules;
    * ``all_gather_list`` (logging outputs of criterions that cannot be summed: nt_xent, clocs,
      physioclr, ...) builds its buffer with ``device="cuda"`` and pinned memory:
      ``torch.distributed.all_gather_object`` without CUDA.

    With CUDA every replaced function behaves as upstream. Applied where the defects are present."""
    distributed_utils = importlib.import_module("fairseq_signals.distributed.utils")
    distributed_model = importlib.import_module("fairseq_signals.models.distributed_model")
    changed = False
    if distributed_utils.call_main is not call_main and "device_count()" in inspect.getsource(
        distributed_utils.call_main
    ):
        distributed_utils.call_main = call_main  # type: ignore[attr-defined]
        changed = True
    current = distributed_utils.dist
    if not isinstance(current, _GlooWithoutCUDA) and '"nccl"' in inspect.getsource(distributed_utils.distributed_init):
        distributed_utils.dist = _GlooWithoutCUDA(current)  # type: ignore[attr-defined]
        changed = True
    gather = distributed_utils.all_gather_list
    if 'device="cuda"' in (_upstream_source(gather) or ""):
        distributed_utils.all_gather_list = _all_gather_list_cpu(gather)  # type: ignore[attr-defined]
        changed = True
    ddp = distributed_model.DistributedDataParallel
    if not getattr(ddp, "_physioclr_patched", False) and "device_ids" in inspect.getsource(
        distributed_model.DistributedModel
    ):
        distributed_model.DistributedDataParallel = _ddp_on_cpu(ddp)  # type: ignore[attr-defined]
        changed = True
    return changed


def _atomic_copyfile(src_path: str, dst_path: str, overwrite: bool = False) -> bool:
    """Copy to a temporary name beside ``dst_path``, then rename: ``dst_path`` is the old file or the
    whole new one, never a part (``overwrite`` is ignored, as upstream's local copy does)."""
    import os
    import shutil

    tmp = f"{dst_path}.tmp{os.getpid()}"
    try:
        shutil.copyfile(src_path, tmp)
        os.replace(tmp, dst_path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return True


def patch_atomic_checkpoint_copy() -> bool:
    """fairseq_signals/utils/checkpoint_utils.py ``save_checkpoint`` writes the first checkpoint
    atomically (``.tmp`` then rename) but makes ``checkpoint_last.pt`` (and ``checkpoint_best.pt``)
    with ``PathManager.copy`` = ``shutil.copyfile`` in place: a run killed during that copy leaves a
    truncated ``checkpoint_last.pt``, which the restarted run then fails to load. Copy to a temporary
    name and rename instead (local paths; a registered iopath handler keeps its own copy)."""
    file_io = importlib.import_module("fairseq_signals.utils.file_io")
    manager = file_io.PathManager
    current = manager.copy
    source = _upstream_source(current)
    if source is None or "shutil.copyfile(src_path, dst_path)" not in source:
        return False  # patched already, or upstream changed it

    def copy(src_path: str, dst_path: str, overwrite: bool = False) -> bool:
        if file_io.IOPathManager is not None and manager.path_requires_pathmanager(dst_path):
            return bool(current(src_path, dst_path, overwrite=overwrite))
        return _atomic_copyfile(src_path, dst_path, overwrite)

    manager.copy = staticmethod(_mark_patched(copy))
    return True


def patch_numpy_seed_per_update() -> bool:
    """fairseq_signals/trainer.py ``Trainer._set_seed`` reseeds torch's RNG with ``seed + num_updates``
    before every update "so that we get reproducible results when resuming from checkpoints", but not
    NumPy's, which fairseq_cli/train.py seeds once at start. Masks drawn with NumPy in the forward
    pass (``compute_mask_indices`` in wav2vec 2.0 and PhysioCLR's time masking) therefore
    continued the stream in an uninterrupted run and restarted it in a resumed one: the resumed run
    diverged from the first update. Seed NumPy's global RNG from the same number as torch's."""
    trainer = importlib.import_module("fairseq_signals.trainer")
    current = trainer.Trainer._set_seed
    source = _upstream_source(current)
    if source is None or "np.random" in source or "numpy" in source:
        return False  # patched already, or upstream seeds NumPy itself

    def _set_seed(self: Any) -> None:
        import numpy as np

        current(self)
        np.random.seed((self.cfg.common.seed + self.get_num_updates()) % 2**32)

    trainer.Trainer._set_seed = _mark_patched(_set_seed)
    return True


PATCHES: Dict[str, Callable[[], bool]] = {
    "resume_mid_epoch": patch_resume_mid_epoch,
    "inference_store_api": patch_inference_store,
    "clip_grad_norm_cpu": patch_clip_grad_norm,
    "checkpoint_weights_only": patch_checkpoint_loading,
    "hydra_error_report_py310": patch_hydra_error_report,
    "cpu_distributed": patch_cpu_distributed,
    "atomic_checkpoint_copy": patch_atomic_checkpoint_copy,
    "numpy_seed_per_update": patch_numpy_seed_per_update,
}


@functools.cache
def apply_patches() -> Dict[str, bool]:
    """Apply every upstream fix once; returns which ones changed something."""
    return {name: patch() for name, patch in PATCHES.items()}

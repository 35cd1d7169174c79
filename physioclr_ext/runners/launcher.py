"""Console scripts ``physioclr-hydra-train``, ``-validate`` and ``-inference``.

Drop-in replacements for fairseq-signals' ``fairseq-hydra-train``, ``fairseq-hydra-validate``
and ``fairseq-hydra-inference``: same arguments, same outputs. Before Hydra composes the
configuration they

1. check that the environment can run fairseq-signals (one clear message otherwise),
2. apply the guarded upstream fixes of :mod:`physioclr_ext.runners.compat`,
3. register this package's models, criterions, tasks and datasets, and
4. import every ``common.user_dir=PATH`` / ``+common.user_dir=PATH`` the way
   fairseq-signals' ``import_user_module`` does.

After a successful ``physioclr-hydra-train`` run, ``checkpoint.save_dir`` also holds
``loss_curve.png`` and ``loss_curve.json`` drawn from the run's progress lines, which are
recorded in ``loss_curve.log`` there (:func:`train_with_loss_curve`); a problem with them is one
warning line, never a failed run.

fairseq-signals' ``CommonConfig`` has no ``user_dir`` field, so Hydra rejects that
override ("Could not override 'common.user_dir'"); where the field is missing the
launcher removes the override after importing the directory. Where a build has the
field, the override is passed on unchanged.

Example::

    physioclr-hydra-train --config-dir configs/pretraining --config-name w2v_tiny \\
        task.data=/data/manifests common.user_dir=/path/to/physioclr_ext
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from types import ModuleType, SimpleNamespace
from typing import Any, Callable, List, Optional, Sequence, Set, Tuple, Type

USER_DIR_KEYS = ("common.user_dir=", "+common.user_dir=", "++common.user_dir=")
ENV_USER_DIRS = "PHYSIOCLR_USER_DIRS"
"""Environment variable that carries user dirs into spawned distributed workers."""

PROGRESS_LOGGER = "fairseq_signals.logging.progress_bar"
"""The logger of fairseq-signals' progress bars (renamed per line to train_inner/train/<subset>)."""
PROGRESS_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"
"""Hydra's file format, so the recorded log reads like ``hydra_train.log``."""
LOSS_CURVE_FILES = ("loss_curve.log", "loss_curve.png", "loss_curve.json")
"""Written into ``checkpoint.save_dir`` by ``physioclr-hydra-train``."""

ENTRY_POINTS = {
    "train": "fairseq_cli.hydra_train",
    "validate": "fairseq_cli.hydra_validate",
    "inference": "fairseq_cli.hydra_inference",
}


def split_user_dirs(argv: Sequence[str]) -> Tuple[List[str], List[str]]:
    """Separate ``common.user_dir`` overrides from the other arguments.

    Returns:
        ``(user_dirs, remaining_argv)``; the order of the other arguments is kept.
    """
    user_dirs: List[str] = []
    rest: List[str] = []
    for arg in argv:
        key = next((k for k in USER_DIR_KEYS if arg.startswith(k)), None)
        if key is None:
            rest.append(arg)
        else:
            user_dirs.append(arg[len(key) :].strip("'\""))
    return user_dirs, rest


def common_config_has_user_dir() -> bool:
    """Whether this fairseq-signals build's ``CommonConfig`` declares ``user_dir``."""
    from fairseq_signals.dataclass.configs import CommonConfig

    return "user_dir" in CommonConfig.__dataclass_fields__


def import_user_dir(path: str) -> str:
    """Import a plugin directory as fairseq-signals' ``import_user_module`` does.

    The directory's own package is imported, then its ``tasks/`` and ``models/``
    folders. Importing this package's own directory is a no-op (it is registered
    already). Returns the absolute module path.
    """
    from fairseq_signals.utils import utils as fs_utils

    module_path = os.path.abspath(path)
    if not os.path.isdir(module_path):
        raise FileNotFoundError(f"common.user_dir={path}: no such directory ({module_path})")
    module_name = os.path.basename(module_path.rstrip(os.sep))
    loaded = sys.modules.get(module_name)
    memo: Set[str] = getattr(fs_utils.import_user_module, "memo", set())
    fs_utils.import_user_module.memo = memo
    if loaded is not None and _same_dir(getattr(loaded, "__path__", [None])[0], module_path):
        memo.add(module_path)  # already imported (this package, or imported twice)
        return module_path
    fs_utils.import_user_module(SimpleNamespace(user_dir=module_path))
    return module_path


def _same_dir(a: object, b: str) -> bool:
    return isinstance(a, str) and os.path.realpath(a) == os.path.realpath(b)


def import_user_dirs_from_env() -> None:
    """Import the user dirs a parent launcher recorded (for spawned workers)."""
    for path in filter(None, os.environ.get(ENV_USER_DIRS, "").split(os.pathsep)):
        import_user_dir(path)


def prepare(argv: Sequence[str]) -> List[str]:
    """Check, patch, register and import user dirs; return the argv for Hydra."""
    from physioclr_ext.runners import compat, registration

    compat.check_environment()
    compat.apply_patches()
    registration.register_all()
    user_dirs, rest = split_user_dirs(argv)
    for path in user_dirs:
        import_user_dir(path)
    if user_dirs:
        os.environ[ENV_USER_DIRS] = os.pathsep.join(os.path.abspath(p) for p in user_dirs)
        if common_config_has_user_dir():
            return list(argv)
    return rest


def _option(argv: Sequence[str], names: Tuple[str, ...]) -> Optional[str]:
    """The value of Hydra's ``--config-dir X``/``--config-dir=X`` style option (last one wins)."""
    value = None
    for i, arg in enumerate(argv):
        if arg in names and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith(tuple(f"{n}=" for n in names)):
            value = arg.partition("=")[2]
    return value


def argument_problem(argv: Sequence[str]) -> Optional[str]:
    """A missing ``--config-dir``, config file or ``task.data`` directory, as one line; None when none is.

    Hydra would report the first as several lines and the others as a traceback deep in the run.
    """
    config_dir = _option(argv, ("--config-dir", "-cd"))
    if config_dir is not None and not os.path.isdir(config_dir):
        return f"--config-dir {config_dir}: no such directory"
    name = _option(argv, ("--config-name", "-cn"))
    if config_dir is not None and name is not None:
        path = os.path.join(config_dir, name if name.endswith(".yaml") else f"{name}.yaml")
        if not os.path.isfile(path):
            return f"--config-name {name}: no {path}; pick a config of {config_dir}"
    for arg in argv:
        key, sep, value = arg.partition("=")
        data = value.strip("'\"")
        if sep and key.lstrip("+") == "task.data" and data and not os.path.exists(data):
            return f"{arg}: no such directory; pass the OUTPUT folder of python -m physioclr_ext.preprocess"
    return None


USER_ERRORS: Tuple[str, ...] = ("hydra.errors.HydraException", "omegaconf.errors.OmegaConfBaseException")
"""Raised by Hydra and OmegaConf for a bad config or override (with ``OSError``: a missing or unwritable file)."""


def _user_error_types() -> Tuple[Type[BaseException], ...]:
    types: List[Type[BaseException]] = [OSError]
    for dotted in USER_ERRORS:
        module, _, name = dotted.rpartition(".")
        types.append(getattr(importlib.import_module(module), name))
    return tuple(types)


def run_reporting_user_errors(kind: str, entry: Callable[[], None]) -> None:
    """Run ``entry`` so that a bad config, override or file ends in one line and exit code 2.

    Hydra prints its own errors over several lines and the run's as a traceback; with
    ``HYDRA_FULL_ERROR=1`` it raises them instead, and this prints them as one line. A user who set
    ``HYDRA_FULL_ERROR`` gets Hydra's behaviour unchanged.
    """
    if os.environ.get("HYDRA_FULL_ERROR"):
        entry()
        return
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        entry()
    except _user_error_types() as exc:
        message = " ".join(line.strip() for line in str(exc).splitlines()[:2] if line.strip())
        cause = next((line.strip() for line in str(exc.__cause__ or "").splitlines() if line.strip()), "")
        if cause and cause not in message:  # OmegaConf's reason (e.g. "Key 'x' is not in struct")
            message += f" ({cause})"
        print(f"physioclr-hydra-{kind}: {message or type(exc).__name__}", file=sys.stderr)
        raise SystemExit(2) from None


def _run(kind: str) -> None:
    from physioclr_ext.runners.compat import UnsupportedEnvironment

    try:
        sys.argv[1:] = prepare(sys.argv[1:])
    except UnsupportedEnvironment as exc:
        print(str(exc), file=sys.stderr)
        raise SystemExit(2) from None
    except (FileNotFoundError, ImportError) as exc:
        print(f"physioclr-hydra-{kind}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    from hydra._internal.utils import get_args_parser

    # an unknown option: argparse's usage and one error line, once (fairseq-signals' cli_main parses the
    # arguments twice, swallowing the first exit, so it would print them twice)
    get_args_parser().parse_args(sys.argv[1:])
    problem = argument_problem(sys.argv[1:])
    if problem:
        print(f"physioclr-hydra-{kind}: {problem}", file=sys.stderr)
        raise SystemExit(2)
    module = importlib.import_module(ENTRY_POINTS[kind])
    if kind == "train":
        install_loss_curve_hook(module)
    run_reporting_user_errors(kind, module.cli_main)
    exit_after_success()


def install_loss_curve_hook(hydra_train: ModuleType) -> bool:
    """Make ``fairseq_cli.hydra_train`` train through :func:`train_with_loss_curve`.

    ``hydra_main`` passes its module-level ``pre_main`` (``fairseq_cli.train.main``) to
    ``call_main``, which runs it here or pickles it by name into spawned workers, so replacing
    that attribute is enough. Returns whether the hook is in place (a warning otherwise).
    """
    if not callable(getattr(hydra_train, "pre_main", None)):
        _warn_loss_curve(f"{hydra_train.__name__} has no pre_main to wrap")
        return False
    hydra_train.pre_main = train_with_loss_curve  # type: ignore[attr-defined]
    return True


def train_with_loss_curve(cfg: Any, **kwargs: Any) -> None:
    """``fairseq_cli.train.main``, then the run's loss curves next to its checkpoints.

    On the master process, every progress line fairseq-signals logs (``train_inner``, ``train``,
    the validation subsets, in the run's ``common.log_format``) is also appended to
    ``<checkpoint.save_dir>/loss_curve.log``, whatever ``common.log_file``, ``hydra.run.dir`` and
    ``common.reset_logging`` say; once training returns, that log is drawn to
    ``loss_curve.png`` with the parsed series in ``loss_curve.json``
    (:mod:`physioclr_ext.evaluation.loss_curves`). A resumed run appends to the same log, so
    its curve covers the whole training. Nothing here can fail the training: any problem is one
    warning line.
    """
    from fairseq_cli.train import main

    handler = _attach_progress_log(cfg)
    try:
        main(cfg, **kwargs)
    finally:
        if handler is not None:
            logging.getLogger(PROGRESS_LOGGER).removeHandler(handler)
            handler.close()
    if handler is not None:
        write_run_loss_curve(os.path.dirname(handler.baseFilename), _run_title(cfg))


def _attach_progress_log(cfg: Any) -> Optional[logging.FileHandler]:
    try:
        from fairseq_signals.distributed import utils as distributed_utils

        if not distributed_utils.is_master(cfg.distributed_training):
            return None
        save_dir = cfg.checkpoint.save_dir
        os.makedirs(save_dir, exist_ok=True)
        handler = logging.FileHandler(os.path.join(save_dir, LOSS_CURVE_FILES[0]), mode="a", encoding="utf-8")
        handler.setFormatter(logging.Formatter(PROGRESS_FORMAT))
        handler.setLevel(logging.INFO)
        logging.getLogger(PROGRESS_LOGGER).addHandler(handler)
        return handler
    except Exception as exc:  # the curve is optional; the training is not
        _warn_loss_curve(f"cannot record the progress log ({type(exc).__name__}: {exc})")
        return None


def _run_title(cfg: Any) -> str:
    try:
        return f"{cfg.model._name} / {cfg.criterion._name}"
    except Exception:
        return ""


def write_run_loss_curve(save_dir: str, title: str = "") -> Optional[str]:
    """Draw ``save_dir/loss_curve.log`` to ``loss_curve.png`` and ``loss_curve.json``.

    Returns the PNG path, or None after printing one warning line (never raises).
    """
    log, png, series = (os.path.join(save_dir, name) for name in LOSS_CURVE_FILES)
    try:
        from physioclr_ext.evaluation.loss_curves import write_loss_curve

        write_loss_curve(log, png, series, title=title)
    except Exception as exc:
        _warn_loss_curve(f"{type(exc).__name__}: {exc}")
        return None
    print(f"loss curve: {png}", flush=True)
    return png


def _warn_loss_curve(reason: str) -> None:
    print(f"physioclr-hydra-train: warning: no loss curve: {reason}", file=sys.stderr, flush=True)


def exit_after_success() -> None:
    """End the process once the run has finished and its outputs are written.

    fairseq-signals prefetches batches in a daemon thread (``BufferedIterator`` in
    fairseq_signals/data/iterators.py). When training stops at ``max_update`` while that
    thread is still collating a batch (augmentations run there when
    ``dataset.num_workers=0``), interpreter shutdown tears torch down under it and the
    process aborts with "terminate called without an active exception" (exit 134) after
    a successful run. Flushing the logs and leaving with ``os._exit(0)`` avoids that.
    """
    import logging

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def train_main() -> None:
    """``physioclr-hydra-train``: fairseq-hydra-train with the plugin loaded."""
    _run("train")


def validate_main() -> None:
    """``physioclr-hydra-validate``: fairseq-hydra-validate with the plugin loaded."""
    _run("validate")


def inference_main() -> None:
    """``physioclr-hydra-inference``: fairseq-hydra-inference with the plugin loaded."""
    _run("inference")


if os.environ.get(ENV_USER_DIRS) and __name__ != "__main__":
    # A distributed worker re-imports the launcher: bring its user dirs back.
    try:
        import_user_dirs_from_env()
    except ImportError:
        pass

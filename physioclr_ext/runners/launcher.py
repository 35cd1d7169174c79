"""Console scripts ``physioclr-hydra-train``, ``-validate`` and ``-inference``.

Drop-in replacements for fairseq-signals' ``fairseq-hydra-train``, ``fairseq-hydra-validate``
and ``fairseq-hydra-inference``: same arguments, same outputs. Before Hydra composes the
configuration they

1. check that the environment can run fairseq-signals (one clear message otherwise),
2. apply the guarded upstream fixes of :mod:`physioclr_ext.runners.compat`,
3. register this package's models, criterions, tasks and datasets, and
4. import every ``common.user_dir=PATH`` / ``+common.user_dir=PATH`` the way
   fairseq-signals' ``import_user_module`` does.

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
import os
import sys
from types import SimpleNamespace
from typing import Callable, List, Sequence, Tuple

USER_DIR_KEYS = ("common.user_dir=", "+common.user_dir=", "++common.user_dir=")
ENV_USER_DIRS = "PHYSIOCLR_USER_DIRS"
"""Environment variable that carries user dirs into spawned distributed workers."""

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
            user_dirs.append(arg[len(key):].strip("'\""))
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
    memo = getattr(fs_utils.import_user_module, "memo", set())
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
    entry: Callable[[], None] = importlib.import_module(ENTRY_POINTS[kind]).cli_main
    entry()
    exit_after_success()


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

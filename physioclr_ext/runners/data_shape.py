"""The data decides its own shape: Hydra overrides that fit a config to a preprocessed directory.

``python -m physioclr_ext.preprocess`` records what it wrote in ``DATA/preprocess.json``: the sampling
rate, the lead names (and the hybrid channels after them) and the window length. Each method's config
names the same things its own way (``in_channels``, ``in_d``, ``num_leads``, ``leads``, ``seq_len``,
``signal_len``, ``encoder_args.input_length``, ...) and fairseq-signals' tasks check ``sample_rate`` and
index rows with ``leads_to_load`` (``None`` reads rows 0-11). :func:`shape_overrides` reads both and
returns the overrides that make them agree, or raises :class:`DataShapeError` with one line saying what
differs and the option that fixes it, before anything trains.

* Pretraining (no checkpoint): the task gets the data's rate and rows; the model's input size follows
  the data. Size fields (``seq_len``, ``signal_len``, ...) change only where the data cannot go through
  the configured value; a model whose lead table fixes its leads (ECG-JEPA's 8 rows) takes the leads it
  has rows for, or stops.
* From a checkpoint (fine-tuning, inference, ``ecg_vqvae``'s ``model_path``): the data must carry what the
  checkpoint was trained on (rate, leads by name, a long enough window); its leads are loaded in the
  checkpoint's order.

User overrides always win: a key the user sets is never emitted (a user ``task.leads_to_load`` is still
checked against the data's rows). Data without ``preprocess.json`` gets no overrides.

Usage::

    python -m physioclr_ext.runners.data_shape overrides --config configs/pretraining/ecg_mae_tiny.yaml \\
        --data DATA [--checkpoint PT] [-- OVERRIDES...]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

CANONICAL = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
ECG_JEPA_LEADS = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")
"""The rows of ECG-JEPA's 8-row lead table (Kim, arXiv 2410.08559): the 8 independent leads."""


class DataShapeError(ValueError):
    """The data cannot go through the config or checkpoint as given (one line: what differs, the fix)."""


@dataclass(frozen=True)
class DataShape:
    """What ``preprocess.json`` says about the windows: rows are ``leads`` then ``hybrid`` channels."""

    sample_rate: int
    leads: Tuple[str, ...]
    length: int
    hybrid: Tuple[str, ...] = ()
    train_pairs: Optional[int] = None  # CMSC pairs of adjacent windows in train
    path: str = ""

    @property
    def channels(self) -> Tuple[str, ...]:
        return self.leads + self.hybrid

    def describe(self, rows: Optional[Sequence[int]] = None) -> str:
        names = self.channels if rows is None else tuple(self.channels[i] for i in rows)
        lead_word = "lead" if len(names) == 1 else "leads"
        return f"{len(names)} {lead_word} ({', '.join(names)}), {self.sample_rate} Hz, {self.length}-sample windows"


def read_data_shape(data_dir: Optional[str]) -> Optional[DataShape]:
    """The shape of a preprocessed directory, or None without ``preprocess.json``."""
    path = os.path.join(data_dir or "", "preprocess.json")
    if not data_dir or not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as fh:
        meta = json.load(fh)
    window = meta.get("window") or {}
    hybrid = meta.get("hybrid") or {}
    leads = tuple(str(lead) for lead in window.get("leads", ()))
    channels = tuple(str(c) for c in hybrid.get("channels", ()))
    pairs = ((meta.get("splits") or {}).get("train") or {}).get("cmsc_pairs")
    return DataShape(
        sample_rate=int(window["sample_rate"]),
        leads=leads,
        length=int(window["length_samples"]),
        hybrid=channels[len(leads) :] if channels[: len(leads)] == leads else channels,
        train_pairs=None if pairs is None else int(pairs),
        path=path,
    )


# ------------------------------------------------------------------ configs and overrides


def _parse_value(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def parse_overrides(overrides: Sequence[str]) -> Dict[str, Any]:
    """``key=value`` overrides as ``{key: value}`` (leading ``+``/``++`` dropped, values read as YAML)."""
    out: Dict[str, Any] = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if sep:
            out[key.lstrip("+")] = _parse_value(value)
    return out


def load_config(config: Union[str, Mapping[str, Any]]) -> Dict[str, Any]:
    """A Hydra YAML file (path) or an already loaded mapping, as a plain dict."""
    if isinstance(config, Mapping):
        return {k: dict(v) if isinstance(v, Mapping) else v for k, v in config.items()}
    import yaml

    with open(config, encoding="utf-8") as fh:
        return dict(yaml.safe_load(fh) or {})


def _get(section: Mapping[str, Any], dotted: str) -> Any:
    node: Any = section
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _has(section: Mapping[str, Any], dotted: str) -> bool:
    head, _, rest = dotted.partition(".")
    if head not in section:
        return False
    return not rest or (isinstance(section[head], Mapping) and _has(section[head], rest))


def format_value(value: Any) -> str:
    """A value as Hydra 1.0 reads it back: lists unquoted, strings quoted (brackets stay one string)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(str(v) for v in value) + "]"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "\\'") + "'"


def rows_text(rows: Sequence[int]) -> str:
    """``task.leads_to_load``'s string: ``"[0,1]"``."""
    return "[" + ",".join(str(int(r)) for r in rows) + "]"


def parse_rows(value: Any, n_rows: Optional[int] = None) -> Optional[List[int]]:
    """Rows read by ``leads_to_load`` (a string such as ``"[0,1]"`` or ``"['II']"``, or a list); names are
    the canonical 12-lead positions, as fairseq-signals reads them. None: every row (``n_rows``) or unset."""
    if value is None:
        return list(range(n_rows)) if n_rows is not None else None
    items = _parse_value(value) if isinstance(value, str) else value
    items = items if isinstance(items, (list, tuple)) else [items]
    by_lower = {name.lower(): i for i, name in enumerate(CANONICAL)}
    rows = []
    for item in items:
        if isinstance(item, int):
            rows.append(item)
        elif str(item).lower() in by_lower:
            rows.append(by_lower[str(item).lower()])
        else:
            raise DataShapeError(f"task.leads_to_load: {item!r} is neither a row index nor a lead name")
    return rows


@dataclass
class Plan:
    """The overrides being built: config sections (as written), the user's overrides and the result."""

    config: Dict[str, Any]
    user: Dict[str, Any]
    shape: DataShape
    overrides: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    def effective(self, key: str) -> Any:
        """``key`` (``task.x``, ``model.y.z``) after the user's overrides."""
        if key in self.user:
            return self.user[key]
        section, _, rest = key.partition(".")
        return _get(self.config.get(section) or {}, rest)

    def set(self, key: str, value: Any) -> None:
        """Emit ``key=value`` unless the user set ``key``; ``+`` where the YAML lacks it (Hydra 1.0 appends)."""
        if key in self.user:
            return
        section, _, rest = key.partition(".")
        plus = "" if _has(self.config.get(section) or {}, rest) else "+"
        self.overrides.append(f"{plus}{key}={format_value(value)}")

    def user_set(self, key: str) -> bool:
        return key in self.user


# ------------------------------------------------------------------ what a model needs


@dataclass(frozen=True)
class LengthNeed:
    """Window length a model takes: at least ``minimum``; longer windows are cropped to ``crop`` (if set)."""

    minimum: int = 1
    crop: Optional[int] = None
    why: str = ""


def length_need(model: Mapping[str, Any]) -> LengthNeed:
    """The window length ``model`` (a model config section) can take."""
    name = str(model.get("_name", ""))
    if name == "st_mem":
        n = int(model.get("seq_len", 2250))
        return LengthNeed(n, None, f"st_mem crops windows to model.seq_len={n}")
    if name == "ecg_jepa":
        n = int(model.get("seq_len", 2500))
        return LengthNeed(n, n, f"ecg_jepa takes windows of model.seq_len={n}")
    if name == "ecg_vqvae":
        n = int(model.get("signal_len", 2500))
        inner = model.get("pretrained_model_cfg")
        need = length_need(inner) if isinstance(inner, Mapping) else LengthNeed()
        if need.minimum > n:
            return need
        return LengthNeed(n, need.crop, f"ecg_vqvae reconstructs model.signal_len={n} samples")
    if name == "ecg_mae":
        p, most = int(model.get("patch_size", 125)), int(model.get("max_patches", 64))
        return LengthNeed(p, p * most, f"ecg_mae takes 1..{most} patches of model.patch_size={p}")
    if name == "ecg_contrastive" and model.get("encoder") == "clocs_cnn":
        n = int(_get(model, "encoder_args.input_length") or 2500)
        return LengthNeed(n, n, f"the CLOCS CNN is built for model.encoder_args.input_length={n}")
    inner = model.get("pretrained_model_cfg")
    return length_need(inner) if isinstance(inner, Mapping) else LengthNeed()


def lead_agnostic(model: Mapping[str, Any]) -> bool:
    """A single-lead encoder that takes any number of leads (embeds each, averages): CLOCS CMLC/CMSMLC."""
    inner = model.get("pretrained_model_cfg")
    if isinstance(inner, Mapping):
        return lead_agnostic(inner)
    return model.get("_name") == "ecg_contrastive" and int(model.get("in_channels", 12)) == 1


# ------------------------------------------------------------------ pretraining rules, per model


def _channels_field(plan: Plan, key: str, rows: Sequence[int]) -> None:
    plan.set(key, len(rows))


def _rule_contrastive(plan: Plan, rows: List[int]) -> List[int]:
    mode = str(plan.effective("task.mode") or "views")
    if mode in ("cmlc", "cmsmlc") and len(rows) < 2:  # one lead: no second lead to contrast with
        raise DataShapeError(
            f"clocs {mode.upper()} contrasts the leads of a window but {plan.shape.path} has "
            f"{plan.shape.describe(rows)}: preprocess with two or more --leads, or use clocs_cmsc"
        )
    if mode in ("cmsc", "cmsmlc") and plan.shape.train_pairs == 0:
        raise DataShapeError(
            f"clocs {mode.upper()} needs adjacent window pairs but {plan.shape.path} has none in train: records "
            "must hold two windows or more; lower --window-seconds"
        )
    if int(plan.effective("model.in_channels") or 12) != 1 or plan.user_set("model.in_channels"):
        _channels_field(plan, "model.in_channels", rows)
    if plan.effective("model.encoder") == "clocs_cnn":
        _fit_clocs(plan)
    return rows


def _fit_clocs(plan: Plan) -> None:
    from physioclr_ext.modules.clocs_encoder import ClocsCNNConfig, flattened_length

    args = dict(plan.effective("model.encoder_args") or {})
    args["input_length"] = plan.shape.length
    known: Dict[str, Any] = {
        k: tuple(v) if isinstance(v, list) else v for k, v in args.items() if hasattr(ClocsCNNConfig, k)
    }
    try:
        flattened_length(ClocsCNNConfig(**known))
    except ValueError:
        raise DataShapeError(
            f"{plan.shape.length}-sample windows are too short for the CLOCS CNN ({plan.shape.path}): preprocess "
            "with a longer --window-seconds"
        ) from None
    plan.set("model.encoder_args.input_length", plan.shape.length)


def _rule_mae(plan: Plan, rows: List[int]) -> List[int]:
    _channels_field(plan, "model.in_channels", rows)
    patch = int(plan.effective("model.patch_size") or 125)
    if plan.shape.length < patch:
        raise DataShapeError(
            f"{plan.shape.length}-sample windows ({plan.shape.path}) are shorter than one patch "
            f"(model.patch_size={patch}): pass a smaller model.patch_size or preprocess with a longer --window-seconds"
        )
    if plan.shape.length // patch > int(plan.effective("model.max_patches") or 64):
        plan.set("model.max_patches", plan.shape.length // patch)  # a sin-cos table: any size builds
    return rows


def _fit_seq_len(plan: Plan, default: int, default_patch: int, exact: bool) -> None:
    """``model.seq_len``: kept when the windows are long enough (and, if ``exact``, equal); else the longest
    whole number of patches the windows hold, cropped to by ``task.max_sample_size``."""
    seq_len, patch = (
        int(plan.effective("model.seq_len") or default),
        int(plan.effective("model.patch_size") or default_patch),
    )
    length = plan.shape.length
    if length == seq_len or (length > seq_len and not exact) or plan.user_set("model.seq_len"):
        return
    fitted = length // patch * patch
    if fitted == 0:
        name = plan.effective("model._name")
        raise DataShapeError(
            f"{length}-sample windows ({plan.shape.path}) are shorter than one {name} patch (model.patch_size="
            f"{patch}): pass a smaller model.patch_size or preprocess with a longer --window-seconds"
        )
    plan.set("model.seq_len", fitted)
    if exact and fitted != length:
        plan.set("task.max_sample_size", fitted)


def _rule_st_mem(plan: Plan, rows: List[int]) -> List[int]:
    _channels_field(plan, "model.num_leads", rows)
    _fit_seq_len(plan, 2250, 75, exact=False)
    return rows


def _rule_jepa(plan: Plan, rows: List[int]) -> List[int]:
    shape = plan.shape
    if (
        not plan.user_set("task.leads_to_load")
        and not shape.hybrid
        and int(plan.effective("model.num_leads") or 8) == 8
    ):
        rows = _jepa_rows(plan, rows)
    table = int(plan.effective("model.num_leads") or 8)
    if shape.hybrid or len(rows) > table:
        _channels_field(plan, "model.num_leads", rows)  # one row each (the hybrid input: 8 + 11 = 19)
        plan.set("model.leads", None)
    elif not plan.user_set("model.leads") and not plan.user_set("model.num_leads"):
        names = [shape.channels[r] for r in rows]
        table_rows = [ECG_JEPA_LEADS.index(n) for n in names] if table == 8 else list(range(len(rows)))
        plan.set("model.leads", None if table_rows == list(range(table)) else table_rows)
    _fit_seq_len(plan, 2500, 50, exact=True)
    return rows


def _jepa_rows(plan: Plan, rows: List[int]) -> List[int]:
    names = [plan.shape.channels[r] for r in rows]
    if all(n in ECG_JEPA_LEADS for n in names):
        return rows
    if all(n in names for n in ECG_JEPA_LEADS):  # III, aVR, aVL, aVF follow from I and II: not loaded
        plan.notes.append(
            f"ecg_jepa loads I, II, V1-V6; not loaded: {', '.join(n for n in names if n not in ECG_JEPA_LEADS)}"
        )
        return [rows[names.index(n)] for n in ECG_JEPA_LEADS]
    others = [n for n in names if n not in ECG_JEPA_LEADS]
    raise DataShapeError(
        f"ecg_jepa's lead table has rows for I, II, V1-V6 only and {plan.shape.path} has {', '.join(others)}: "
        f"preprocess with --leads among I II V1 V2 V3 V4 V5 V6, or give each channel its own row with "
        f"model.num_leads={len(rows)} model.leads=null"
    )


def _rule_lfbt(plan: Plan, rows: List[int]) -> List[int]:
    names = [plan.shape.channels[r] for r in rows]
    wanted = [str(n) for n in (plan.effective("model.leads") or [])]
    if plan.user_set("task.leads_to_load"):
        plan.set("model.leads", names)
        return rows
    if wanted and all(n in names for n in wanted):
        if len(wanted) < len(names):
            plan.notes.append(
                f"lfbt loads its leads {', '.join(wanted)}; not loaded: {', '.join(n for n in names if n not in wanted)}"
            )
        return [rows[names.index(n)] for n in wanted]
    plan.set("model.leads", names)  # one encoder per lead: any set of leads builds
    return rows


def _rule_vqvae(plan: Plan, rows: List[int]) -> List[int]:
    _channels_field(plan, "model.in_channels", rows)
    signal_len = int(plan.effective("model.signal_len") or 2500)
    if plan.shape.length < signal_len and not plan.user_set("model.signal_len"):
        plan.set("model.signal_len", plan.shape.length)
    return rows


def _rule_wav2vec2(plan: Plan, rows: List[int]) -> List[int]:
    _channels_field(plan, "model.in_d", rows)
    return rows


Rule = Callable[[Plan, List[int]], List[int]]
RULES: Dict[str, Rule] = {
    "ecg_contrastive": _rule_contrastive,
    "ecg_mae": _rule_mae,
    "st_mem": _rule_st_mem,
    "ecg_jepa": _rule_jepa,
    "lfbt": _rule_lfbt,
    "ecg_vqvae": _rule_vqvae,
    "wav2vec2": _rule_wav2vec2,
    "wav2vec2_physioCLR": _rule_wav2vec2,
    "ecg_transformer": _rule_wav2vec2,
}
"""How each pretraining model is given the data's rows: ``(plan, rows) -> rows to load``."""


# ------------------------------------------------------------------ checkpoints


@dataclass(frozen=True)
class CheckpointShape:
    """What a checkpoint was trained on: its task's rate and rows, named from its data's ``preprocess.json``
    when that is still there, and the model configuration that takes them."""

    path: str
    sample_rate: Optional[int]
    names: Optional[Tuple[str, ...]]  # channel names, in input order
    n_channels: Optional[int]
    length: Optional[int]
    rows: Optional[Tuple[int, ...]]  # its task.leads_to_load
    pad_leads: bool
    model: Dict[str, Any]


def _plain(node: Any) -> Any:
    try:
        from omegaconf import OmegaConf

        if OmegaConf.is_config(node):
            return OmegaConf.to_container(node, resolve=False)
    except ImportError:  # pragma: no cover - omegaconf comes with every checkpoint's producer
        pass
    return node


def model_channels(model: Mapping[str, Any]) -> Optional[int]:
    """Input channels a model config fixes (None where any number builds)."""
    name = model.get("_name")
    if name in ("ecg_ssl_classifier", "ecg_triplet") or (name == "ecg_vqvae" and model.get("form") == "head"):
        inner = model.get("pretrained_model_cfg")
        return model_channels(inner) if isinstance(inner, Mapping) else None
    if lead_agnostic(model):
        return None
    for key in ("in_channels", "in_d", "num_leads"):
        if model.get(key) is not None:
            if name == "ecg_jepa" and model.get("leads") is not None:
                return len(model["leads"])
            return int(model[key])
    if name == "lfbt" and model.get("leads"):
        return len(model["leads"])
    return None


def model_lead_names(model: Mapping[str, Any], count: Optional[int]) -> Optional[Tuple[str, ...]]:
    """Lead names a model's own config implies, for checkpoints whose data is gone (imported weights):
    LFBT's ``leads``, ECG-JEPA's 8-row table, and the 12 standard leads of a 12-channel model."""
    inner = model.get("pretrained_model_cfg")
    if isinstance(inner, Mapping):
        return model_lead_names(inner, count)
    if model.get("_name") == "lfbt" and model.get("leads"):
        return tuple(str(n) for n in model["leads"])
    if model.get("_name") == "ecg_jepa" and int(model.get("num_leads") or 8) == 8:
        return tuple(ECG_JEPA_LEADS[int(i)] for i in (model.get("leads") or range(8)))
    return CANONICAL if count == 12 else None


def checkpoint_shape(path: str) -> CheckpointShape:
    """The shape a checkpoint was trained with (see :class:`CheckpointShape`).

    Raises:
        physioclr_ext.runners.checkpoints.CheckpointError: unreadable or not a fairseq-signals checkpoint.
    """
    from physioclr_ext.runners.checkpoints import read_checkpoint

    cfg = _plain(read_checkpoint(path)["cfg"]) or {}
    task, model = dict(cfg.get("task") or {}), dict(cfg.get("model") or {})
    data = read_data_shape(task.get("data")) if isinstance(task.get("data"), str) else None
    n_data = len(data.channels) if data else None
    rows = parse_rows(task.get("leads_to_load"), n_data) if (task.get("leads_to_load") or data) else None
    names = None
    if data and rows is not None and all(r < len(data.channels) for r in rows):
        names = tuple(data.channels[r] for r in rows)
    rate = task.get("sample_rate") or (data.sample_rate if data else None)
    count = model_channels(model) or (len(rows) if rows is not None else None)
    names = names or model_lead_names(model, count)
    return CheckpointShape(
        path=path,
        sample_rate=int(rate) if rate else None,
        names=names,
        n_channels=count,
        length=data.length if data else None,
        rows=tuple(rows) if task.get("leads_to_load") and rows is not None else None,
        pad_leads=bool(task.get("enable_padding_leads")),
        model=model,
    )


def match_checkpoint(plan: Plan, ckpt: CheckpointShape) -> List[int]:
    """The data's rows that give ``ckpt`` what it was trained on, in its order; checks rate and length.

    Raises:
        DataShapeError: the data lacks one of the checkpoint's leads, has another rate, or too short windows.
    """
    shape = plan.shape
    if ckpt.sample_rate and ckpt.sample_rate != shape.sample_rate and not plan.user_set("task.sample_rate"):
        raise DataShapeError(
            f"{ckpt.path} was trained at {ckpt.sample_rate} Hz and {shape.path} is {shape.sample_rate} Hz: preprocess "
            f"the data again with --sample-rate {ckpt.sample_rate} (or pass task.sample_rate={shape.sample_rate} "
            "to use it as it is)"
        )
    _check_length(plan, ckpt)
    if plan.user_set("task.leads_to_load"):
        return _user_rows(plan) or []
    if ckpt.pad_leads and ckpt.rows is not None:  # rows double as 12-lead positions: kept as trained
        plan.set("task.enable_padding_leads", True)
        return _known_rows(plan, list(ckpt.rows))
    if lead_agnostic(ckpt.model):
        return list(range(len(shape.channels)))
    if ckpt.names:
        missing = [n for n in ckpt.names if n not in shape.channels]
        if missing:
            raise DataShapeError(
                f"{ckpt.path} was trained on leads {', '.join(ckpt.names)} and {shape.path} lacks "
                f"{', '.join(missing)}: preprocess with --leads {' '.join(ckpt.names)} (absent leads are zero-filled), "
                f"or choose {len(ckpt.names)} rows with task.leads_to_load"
            )
        return [shape.channels.index(n) for n in ckpt.names]
    if ckpt.n_channels is not None and ckpt.n_channels != len(shape.channels):
        raise DataShapeError(
            f"{ckpt.path} takes {ckpt.n_channels} channels and {shape.path} has {len(shape.channels)} "
            f"({', '.join(shape.channels)}): choose {ckpt.n_channels} rows with task.leads_to_load"
        )
    return list(range(len(shape.channels)))


def _check_length(plan: Plan, ckpt: CheckpointShape) -> None:
    need, length = length_need(ckpt.model), plan.shape.length
    if length < need.minimum:
        raise DataShapeError(
            f"{plan.shape.path} has {length}-sample windows and {ckpt.path} needs {need.minimum} or more "
            f"({need.why}): preprocess with --window-seconds {need.minimum / plan.shape.sample_rate:g} or longer"
        )
    if need.crop is not None and length > need.crop:
        plan.set("task.max_sample_size", need.crop)
        plan.notes.append(f"windows cropped to {need.crop} samples ({need.why})")
    elif ckpt.length and ckpt.length != length:
        plan.notes.append(f"{ckpt.path} was trained on {ckpt.length}-sample windows, the data has {length}")


def _known_rows(plan: Plan, rows: List[int]) -> List[int]:
    bad = [r for r in rows if not 0 <= r < len(plan.shape.channels)]
    if bad:
        raise DataShapeError(
            f"task.leads_to_load asks for row {bad[0]} but {plan.shape.path} has {plan.shape.describe()}: "
            f"choose rows 0-{len(plan.shape.channels) - 1}"
        )
    return rows


def _user_rows(plan: Plan) -> Optional[List[int]]:
    rows = parse_rows(plan.user.get("task.leads_to_load"), len(plan.shape.channels))
    return None if rows is None else _known_rows(plan, rows)


# ------------------------------------------------------------------ the overrides


@dataclass
class ShapePlan:
    """:func:`plan_shape`'s answer: the overrides to add and what a user should know (one line each)."""

    overrides: List[str]
    notes: List[str]


def plan_shape(
    config: Union[str, Mapping[str, Any]],
    data: str,
    user: Sequence[str] = (),
    checkpoint: Optional[str] = None,
) -> ShapePlan:
    """Overrides fitting ``config`` (and ``checkpoint``, or the config's ``model.model_path``) to ``data``.

    Raises:
        DataShapeError: what differs and the option that fixes it (one line).
    """
    shape = read_data_shape(data)
    if shape is None:
        note = f"{data} has no preprocess.json: its shape is not checked"
        return ShapePlan(_trained_rows(config, user, checkpoint) if checkpoint else [], [note])
    plan = Plan(load_config(config), parse_overrides(user), shape)
    model = dict(plan.config.get("model") or {})
    inner = plan.effective("model.model_path")
    source = checkpoint or (inner if isinstance(inner, str) and os.path.isfile(inner) else None)
    if source:
        ckpt = checkpoint_shape(source)
        rows = match_checkpoint(plan, ckpt)
        if checkpoint is None and str(model.get("_name")) in RULES:  # wraps a pretrained encoder (ecg_vqvae)
            rows = RULES[str(model.get("_name"))](plan, rows)
    else:
        rows = _user_rows(plan) or list(range(len(shape.channels)))
        rule = RULES.get(str(model.get("_name")))
        if rule is None:
            plan.notes.append(f"model {model.get('_name')!r}: its input size is not set from the data")
        else:
            rows = rule(plan, rows)
    _task_overrides(plan, rows)
    plan.notes.insert(
        0, f"data: {shape.describe()}; loading rows {rows} ({', '.join(shape.channels[r] for r in rows)})"
    )
    return ShapePlan(plan.overrides, plan.notes)


def _trained_rows(config: Union[str, Mapping[str, Any]], user: Sequence[str], checkpoint: str) -> List[str]:
    """Without the data's shape: the rows the checkpoint was trained with, as it was trained."""
    from physioclr_ext.runners.checkpoints import read_checkpoint

    task = dict(_plain(read_checkpoint(checkpoint)["cfg"]).get("task") or {})
    if not task.get("leads_to_load"):
        return []
    plan = Plan(load_config(config), parse_overrides(user), DataShape(0, (), 0))
    plan.set("task.leads_to_load", str(task["leads_to_load"]))
    plan.set("task.enable_padding_leads", bool(task.get("enable_padding_leads")))
    return plan.overrides


def _task_overrides(plan: Plan, rows: List[int]) -> None:
    plan.set("task.sample_rate", plan.shape.sample_rate)
    plan.set("task.leads_to_load", rows_text(rows))
    pad = plan.effective("task.enable_padding_leads")
    if pad and not any("enable_padding_leads" in o for o in plan.overrides) and rows != list(range(12)):
        plan.set("task.enable_padding_leads", False)  # padding places rows at 12-lead positions


def shape_overrides(
    config: Union[str, Mapping[str, Any]], data: str, user: Sequence[str] = (), checkpoint: Optional[str] = None
) -> List[str]:
    """The Hydra overrides of :func:`plan_shape` (raises :class:`DataShapeError`)."""
    return plan_shape(config, data, user, checkpoint).overrides


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m physioclr_ext.runners.data_shape",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    cmd = sub.add_parser("overrides", help="print the overrides that fit a config to the data, one per line")
    cmd.add_argument("--config", required=True, help="the Hydra YAML file")
    cmd.add_argument("--data", required=True, help="preprocessed directory (preprocess.json)")
    cmd.add_argument("--checkpoint", default=None, help="the checkpoint the run starts from (fine-tuning, inference)")
    cmd.add_argument("--quiet", action="store_true", help="no notes on stderr")
    cmd.add_argument("user", nargs="*", help="after --: the user's Hydra overrides (they win)")
    args = parser.parse_args(argv)
    from physioclr_ext.runners.checkpoints import CheckpointError

    if not os.path.isfile(args.config):  # read only when the data has preprocess.json: say so either way
        print(f"error: --config {args.config}: no such file; pass the Hydra YAML of the run", file=sys.stderr)
        return 2
    if not os.path.isdir(args.data):
        print(
            f"error: --data {args.data}: no such directory; pass the OUTPUT folder of "
            "python -m physioclr_ext.preprocess",
            file=sys.stderr,
        )
        return 2
    try:
        result = plan_shape(args.config, args.data, args.user, args.checkpoint)
    except (DataShapeError, CheckpointError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not args.quiet:
        for note in result.notes:
            print(f"shape: {note}", file=sys.stderr)
    for line in result.overrides:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())

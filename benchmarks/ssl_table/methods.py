"""What the SSL table runs: input contracts, data sources, pretraining methods and tasks.

Pure data, no framework import. An *input contract* is a set of preprocessing options
(leads, rate, window, normalisation) shared by every dataset a method sees, in pretraining
and in evaluation. A contract marked ``twelve_lead_only`` pretrains on the 12-lead sources
only (LUDB, PhysioNet 2021, PTB-XL, Challenge 2020); MIT-BIH is then evaluated zero-filled to
12 leads but never reaches pretraining.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Dict, List, Mapping, Optional, Sequence, Tuple


@dataclass(frozen=True)
class Contract:
    """Preprocessing options of one input contract (on top of ``preset``)."""

    name: str
    preset: str
    options: Mapping[str, object] = field(default_factory=dict)
    twelve_lead_only: bool = False
    signal_overrides: Tuple[str, ...] = ()
    describe: str = ""
    window_samples: int = 0


CONTRACTS: Dict[str, Contract] = {
    c.name: c
    for c in (
        # The mitbih_fewshot preset's signal options, applied to every source.
        Contract(
            "one_lead",
            "fairseq_signals",
            {"leads": ("II",), "sample_rate": 360, "window_seconds": 10.0},
            signal_overrides=("task.leads_to_load='[0]'", "task.sample_rate=360"),
            describe="lead II, 360 Hz, 10 s, per-lead z-score; all sources",
            window_samples=3600,
        ),
        # 12-lead windows are compressed: MIT-BIH, evaluated in them, has 10 zero-filled leads.
        Contract(
            "twelve_lead",
            "fairseq_signals",
            {"compress": True},
            twelve_lead_only=True,
            signal_overrides=("task.sample_rate=500",),
            describe="12 leads, 500 Hz, 5 s, per-lead z-score; 12-lead sources only",
            window_samples=2500,
        ),
        Contract(
            "ecg_jepa",
            "ecg_jepa",
            {"compress": True},
            twelve_lead_only=True,  # I, II, V1-V6: the one- and two-lead sources lack them
            signal_overrides=("task.sample_rate=250", "task.leads_to_load='[0,1,2,3,4,5,6,7]'"),
            describe="ECG-JEPA preset: 8 leads I, II, V1-V6, 250 Hz, 10 s, raw amplitude; 12-lead sources only",
            window_samples=2500,
        ),
        Contract(
            "ecg_jepa_hybrid",
            "ecg_jepa",
            {"compress": True, "hybrid_channels": True},
            twelve_lead_only=True,
            signal_overrides=("task.sample_rate=250", f"task.leads_to_load='[{','.join(map(str, range(19)))}]'"),
            describe="ECG-JEPA preset + 11 hybrid channels from lead II (19 channels, each z-scored on the "
            "training split); 12-lead sources only",
            window_samples=2500,
        ),
        Contract(
            "lfbt",
            "lfbt",
            {"compress": True},
            twelve_lead_only=True,  # II, III, V1-V6
            signal_overrides=("task.sample_rate=500", "task.leads_to_load='[0,1,2,3,4,5,6,7]'"),
            describe="LFBT preset: 8 leads II, III, V1-V6, 500 Hz, 10 s, z-score per ECG; 12-lead sources only",
            window_samples=5000,
        ),
        # ST-MEM and ECG-JEPA take any lead subset (lead embeddings; a positional table and CroPA mask sliced
        # to the leads present): on lead II they pretrain on every source of the pool (21,000 windows with the
        # QT Database) instead of the 436 windows of the 8- and 12-lead sources, and MIT-BIH is evaluated on
        # its real lead rather than zero-filled to 8 or 12.
        Contract(
            "st_mem_one_lead",
            "st_mem",
            {"leads": ("II",)},
            signal_overrides=("task.leads_to_load='[0]'", "task.sample_rate=250"),
            describe="ST-MEM preset on lead II: 250 Hz, 0.67-40 Hz, 10 s, per-window z-score; all sources",
            window_samples=2500,
        ),
        Contract(
            "ecg_jepa_one_lead",
            "ecg_jepa",
            {"leads": ("II",)},
            signal_overrides=("task.leads_to_load='[0]'", "task.sample_rate=250"),
            describe="ECG-JEPA preset on lead II: 250 Hz, 10 s, raw amplitude; all sources",
            window_samples=2500,
        ),
        Contract(
            "ecg_jepa_hybrid_one_lead",
            "ecg_jepa",
            {"leads": ("II",), "hybrid_channels": True},
            signal_overrides=("task.sample_rate=250", f"task.leads_to_load='[{','.join(map(str, range(12)))}]'"),
            describe="ECG-JEPA preset on lead II + its 11 hybrid channels (12 channels, each z-scored on the "
            "training split); all sources",
            window_samples=2500,
        ),
        Contract(
            "st_mem",
            "st_mem",
            {"compress": True},
            twelve_lead_only=True,
            describe="ST-MEM preset: 12 leads, 250 Hz, 0.67-40 Hz, 10 s, per-window z-score; 12-lead sources only",
            window_samples=2500,
        ),
    )
}


@dataclass(frozen=True)
class Source:
    """One preprocessed dataset: where it is under the data root and how it is labelled and split."""

    key: str
    path: str
    format: str
    split: str = "random"
    label_scheme: str = "none"
    twelve_lead: bool = False
    in_pool: bool = True
    options: Mapping[str, object] = field(default_factory=dict)  # extra preprocessing options of this source


_POOL_ONLY = {"split_fractions": (1.0, 0.0, 0.0)}
SOURCES: Dict[str, Source] = {
    s.key: s
    for s in (
        Source("mitdb_binary", "mitdb", "mitdb", "mitbih_ds1ds2", "binary"),
        Source("mitdb_aami", "mitdb", "mitdb", "mitbih_ds1ds2", "aami", in_pool=False),  # same windows as binary
        Source("ludb", "ludb", "ludb", "random", "multilabel", twelve_lead=True),
        Source("physionet2021", "physionet2021", "physionet2021", "random", "multilabel", twelve_lead=True),
        # QT Database and MIT-BIH Supraventricular headers name no standard lead ("record 30, signal 0",
        # "ECG"): each channel is its own one-lead record (one-lead contracts only)
        Source("pool_qtdb", "pool/qtdb", "wfdb", options={"channels_as_records": True}),
        Source("pool_cpsc2021", "pool/cpsc2021", "wfdb"),
        Source("pool_svdb", "pool/svdb", "wfdb", options={"channels_as_records": True}),
        Source("pool_ptbxl", "pool/ptbxl", "wfdb", twelve_lead=True),
        Source("pool_challenge2020", "pool/challenge2020", "wfdb", twelve_lead=True),
    )
}
"""The random splits use seed 0 and the preprocessing defaults (80/10/10 by patient); the
``pool_*`` folders are unlabeled and go to train whole."""


def source_options(source: Source) -> Dict[str, object]:
    """Split and label options of a source for :class:`PreprocessConfig`."""
    options: Dict[str, object] = {"format": source.format, "split": source.split, "label_scheme": source.label_scheme}
    if source.key.startswith("pool_"):
        options.update(_POOL_ONLY)
    options.update(source.options)
    return options


def pool_sources(contract: Contract, exclude: Sequence[str] = ()) -> List[str]:
    """Keys of the sources whose non-test windows make the contract's pretraining pool (less ``exclude``)."""
    return [
        s.key
        for s in SOURCES.values()
        if s.in_pool and (s.twelve_lead or not contract.twelve_lead_only) and s.key not in exclude
    ]


@dataclass(frozen=True)
class Method:
    """A pretraining method: config names (CPU and ``--gpu``), contract, extra inputs."""

    name: str
    config: str
    gpu_config: str
    contract: str
    needs: Tuple[str, ...] = ()
    length_key: Optional[str] = None  # model field fixed to the contract's window length (samples)
    overrides: Tuple[str, ...] = ()  # benchmark-only pretraining overrides (CPU configs), with the reason below
    cpu_overrides: Tuple[str, ...] = ()  # like ``overrides``, but not with ``--gpu`` (sizes of the tiny config)
    # Two-stage methods (see :data:`TWO_STAGE_BASE`): stage 2 trains this config on the frozen checkpoint of
    # ``base`` (``model.model_path``), in ``base``'s contract; ``labels`` names the task whose labelled training
    # windows it trains on (:data:`LABELLED_N` per class), where None means the unlabeled pool.
    base: Optional[str] = None
    labels: Optional[str] = None
    config_dir: str = "pretraining"  # configs/<config_dir>/<config>.yaml
    channels_key: Optional[str] = None  # model field fixed to the contract's number of channels
    checkpoint_name: str = "checkpoint_last.pt"  # the run's checkpoint evaluated (triplet: chosen by kNN on valid)


RELEASED_SOURCES = ("lfbt",)
"""Methods whose originals' released files ``--released`` converts (``runners.checkpoints import --from``); their
rows use the method's contract and paper-size config (the released model's size). LFBT's files are in its
repository; ST-MEM's and ECG-JEPA's are hosted elsewhere and 12-/8-lead, where the benchmark's rows are one-lead."""

CLOCS_LENGTH = "model.encoder_args.input_length"
BATCH_64 = ("dataset.batch_size=64",)
JEPA_VICREG = ("+criterion.variance_weight=1.0", "+criterion.covariance_weight=1.0")
JEPA_WIDTH_64 = ("model.embed_dim=64", "model.heads=4", "model.predictor_embed_dim=32", "model.predictor_heads=4")
METHODS: Dict[str, Method] = {
    m.name: m
    for m in (
        # The CNN keeps the tiny config's batch 16: with 32,000 windows seen, batch 64 (128 views, more negatives)
        # gave a worse encoder for arrhythmia (linear probe AUROC 0.647 against 0.777 at batch 16, README).
        Method("contrastive_cnn", "contrastive_cnn_tiny", "contrastive_cnn", "one_lead"),
        # The other contrastive methods: batch 64 instead of the tiny configs' 16 (with 32 views NT-Xent accuracy
        # reaches 0.96 within 1,000 updates: more negatives make the pretext task harder).
        Method(
            "contrastive_cnn_transformer",
            "contrastive_cnn_transformer_tiny",
            "contrastive_cnn_transformer",
            "one_lead",
            overrides=BATCH_64,
        ),
        Method(
            "clocs_cmsc",
            "clocs_cmsc_tiny",
            "clocs_cmsc",
            "one_lead",
            needs=("cmsc",),
            length_key=CLOCS_LENGTH,
            overrides=BATCH_64,
        ),
        Method(
            "clocs_cmlc", "clocs_cmlc_tiny", "clocs_cmlc", "twelve_lead", length_key=CLOCS_LENGTH, overrides=BATCH_64
        ),
        Method(
            "clocs_cmsmlc",
            "clocs_cmsmlc_tiny",
            "clocs_cmsmlc",
            "twelve_lead",
            needs=("cmsc",),
            length_key=CLOCS_LENGTH,
            overrides=BATCH_64,
        ),
        Method("ecg_mae", "ecg_mae_small", "ecg_mae", "one_lead"),
        # ST-MEM and ECG-JEPA on lead II (see the contracts): on the 8- and 12-lead contracts (436 windows) neither
        # beat random initialisation on MIT-BIH (README); the 12-lead contracts stay for 12-lead use.
        Method("st_mem", "st_mem_vit_s_tiny", "st_mem_vit_s", "st_mem_one_lead", overrides=("model.num_leads=1",)),
        Method("physioclr", "physioclr_tiny", "physioclr", "one_lead", needs=("features",)),
        Method("wav2vec2", "wav2vec2_tiny", "wav2vec2", "one_lead"),
        Method("lfbt", "lfbt_tiny", "lfbt", "lfbt", overrides=BATCH_64),  # Barlow Twins needs a batch (paper: 128)
        Method("ecg_jepa", "ecg_jepa_tiny", "ecg_jepa", "ecg_jepa_one_lead", overrides=("model.num_leads=1",)),
        Method(
            "ecg_jepa_hybrid",
            "ecg_jepa_tiny",
            "ecg_jepa",
            "ecg_jepa_hybrid_one_lead",
            overrides=("model.num_leads=12",),
        ),
        # Not in ECG-JEPA: its recipe collapses on this pool (effective rank 2-3 of 32, README), so these rows add
        # VICReg's variance and covariance terms on the context encoder's pooled tokens (the ``jepa`` criterion's
        # options); the hybrid row is also 64 wide on CPU (32 wide it keeps rank 7, below its random init's 9).
        Method(
            "ecg_jepa_vicreg",
            "ecg_jepa_tiny",
            "ecg_jepa",
            "ecg_jepa_one_lead",
            overrides=("model.num_leads=1",) + JEPA_VICREG,
        ),
        Method(
            "ecg_jepa_hybrid_vicreg",
            "ecg_jepa_tiny",
            "ecg_jepa",
            "ecg_jepa_hybrid_one_lead",
            overrides=("model.num_leads=12",) + JEPA_VICREG,
            cpu_overrides=JEPA_WIDTH_64,
        ),
    )
}
TWO_STAGE_BASE = "contrastive_cnn_transformer"
"""Default stage-1 method of the two-stage methods (``--two-stage-base``): the best encoder of the table."""
LABELLED_N = 100
LABELLED_SEED = 0
"""A labelled two-stage method (triplet) trains on the windows the probes draw at n = ``LABELLED_N`` per class
with probe seed ``LABELLED_SEED`` from its task's training split, and selects its checkpoint by kNN on the
task's validation split; test windows never reach it."""


def _two_stage(name: str, config: str, gpu_config: str, **kwargs: object) -> Method:
    return Method(name, config, gpu_config, METHODS[TWO_STAGE_BASE].contract, base=TWO_STAGE_BASE, **kwargs)  # type: ignore[arg-type]


METHODS.update(
    (m.name, m)
    for m in (
        # SMILES-2025 (issue 12): a VQ-VAE head on the frozen encoder, trained on the unlabeled pool; it
        # reconstructs the contract's window, so it is told the contract's channels and length.
        _two_stage(
            "ecg_vqvae", "ecg_vqvae_tiny", "ecg_vqvae", length_key="model.signal_len", channels_key="model.in_channels"
        ),
        # Triplet fine-tuning of a projection head on the frozen encoder: needs labels (task a's training windows).
        _two_stage(
            "ecg_triplet",
            "ecg_triplet_tiny",
            "ecg_triplet",
            labels="a",
            config_dir="finetuning",
            checkpoint_name="checkpoint_best.pt",
        ),
    )
)


def with_base(method: Method, base: str) -> Method:
    """A two-stage ``method`` on stage-1 method ``base``, in ``base``'s contract; the row is named
    ``<method>_on_<base>`` unless ``base`` is the declared one (work folders and rows never mix bases).

    >>> with_base(METHODS["ecg_vqvae"], "st_mem").name, with_base(METHODS["ecg_vqvae"], "st_mem").contract
    ('ecg_vqvae_on_st_mem', 'st_mem_one_lead')
    """
    if method.base is None:
        return method
    if base not in METHODS or METHODS[base].base is not None:
        raise ValueError(f"the base of a two-stage method must be a one-stage method, not {base!r}")
    name = method.name if base == method.base else f"{method.name}_on_{base}"
    return replace(method, name=name, base=base, contract=METHODS[base].contract)


def contract_channels(contract: Contract) -> int:
    """Channels a contract loads: those of ``task.leads_to_load``, else 12.

    >>> contract_channels(CONTRACTS["one_lead"]), contract_channels(CONTRACTS["ecg_jepa"])
    (1, 8)
    """
    for item in contract.signal_overrides:
        if item.startswith("task.leads_to_load="):
            return len(item.split("[", 1)[1].split("]", 1)[0].split(","))
    return 12


def two_stage_note(method: Method) -> str:
    """What a two-stage row is, for the table's notes and the report header ("" for one-stage methods)."""
    if method.base is None:
        return ""
    note = f"two-stage: {method.config} trained on the frozen {method.base} checkpoint of this run"
    if method.labels is None:
        return note + ", on the unlabeled pool"
    return (
        note + f"; USES LABELS: task {method.labels}'s training windows, {LABELLED_N} per class (the probes' draw at "
        f"seed {LABELLED_SEED}), checkpoint chosen by kNN on the task's validation split"
    )


QUICK_METHODS = ("contrastive_cnn", "ecg_mae")
UNSUPPORTED: Dict[str, str] = {}
"""Methods listed but not run, with the reason."""


@dataclass(frozen=True)
class Task:
    """A downstream task: its source, which windows it keeps and how labels are read."""

    key: str
    source: str
    describe: str
    keep_classes: Optional[Sequence[int]] = None  # class indices kept (AAMI N, S, V)
    label_column: Optional[str] = None  # multilabel column made binary (LUDB)
    finetune_config: Optional[str] = None  # instead of the checkpoint's default (tiny) config


TASKS: Dict[str, Task] = {
    t.key: t
    for t in (
        Task("a", "mitdb_binary", "MIT-BIH DS1/DS2, normal vs arrhythmia windows"),
        Task(
            "b",
            "mitdb_aami",
            "MIT-BIH DS1/DS2, AAMI N/S/V windows (F, Q dropped)",
            keep_classes=(0, 1, 2),
            finetune_config="ecg_ssl_classifier_multiclass",
        ),
        Task("c", "ludb", "LUDB, sinus rhythm vs other (patient split 80/10/10, seed 0)", label_column="Sinus rhythm"),
    )
}


def task_sources(tasks: Sequence[str]) -> List[str]:
    """Source keys the chosen tasks are evaluated on."""
    return sorted({TASKS[t].source for t in tasks})

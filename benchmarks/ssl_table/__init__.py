"""Helpers of ``benchmarks/ssl_table.py``: the method, input-contract and task tables
(:mod:`.methods`), the unlabeled pool (:mod:`.pool`), table assembly (:mod:`.table`), plots
(:mod:`.plots`) and the stages that drive fairseq-signals (:mod:`.stages`).

Every module but :mod:`.stages` works without fairseq-signals.
"""

"""miar: an open reproducibility study of MIAR (Zhu & Yu, arXiv 2601.02414) on CMU-MOSI.

Map: ``config`` (every default), ``data/`` (batch format, MOSI, pickles, synthetic), ``model/``
(MIAR and baselines), ``losses``, ``metrics``, ``train`` (``fit``), ``records`` (run records), ``cli``.
"""

__version__ = "0.1.0"

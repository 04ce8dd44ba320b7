"""The speed benchmark (``miar bench``): :mod:`~miar.bench.core` measures models and epochs,
:mod:`~miar.bench.mmsa` times MMSA's MulT beside ours, :mod:`~miar.bench.cli` drives both and writes the JSON.
"""

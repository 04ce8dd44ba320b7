"""The runner wing: how the study is executed, apart from the core (config, data, model, losses, train).

- :mod:`~miar.study.plan`: a sweep file resolved into runs, and each run's state in a results directory;
- :mod:`~miar.study.params`: the notebooks' side of the contract, the strict parameters check (all a
  notebook imports from this wing; it does not import the runner);
- :mod:`~miar.study.executor`: ``miar sweep``, the notebooks executed with papermill as Dask tasks;
- :mod:`~miar.study.engine`: the driver's Dask client (a LocalCluster or an existing scheduler), checked workers;
- :mod:`~miar.study.worker`: a worker's task (one run, staged) and its kernels; :mod:`~miar.study.staging`: the
  rename that commits a run exactly once;
- :mod:`~miar.study.papermill_engine`: the papermill engine that keeps one Jupyter kernel per worker;
- :mod:`~miar.study.tune`: ``miar tune``, the Optuna search; :mod:`~miar.study.spaces`: its search spaces;
- :mod:`~miar.study.lock`: one sweep (or alignment) at a time on a results directory;
- the sweep record (``results/sweeps/*.json``) is :mod:`miar.sweep_records`, and the cheap readers of what the
  sweeps declare are :mod:`miar.declared`: both sit below this wing, so the report reads them without it;
- :mod:`~miar.study.align`: ``miar align``; :mod:`~miar.study.collect`: ``miar collect``;
- :mod:`~miar.study.analysis`: the alignment numbers and plots the notebooks compute (modality gap,
  silhouettes, t-SNE); it lives here because only the study's notebooks use it.

The notebooks themselves ship inside the package (``miar/_notebooks``, a link to the top-level
``notebooks/``); :func:`~miar.study.plan.notebooks_dir` finds them through :mod:`importlib.resources`.
"""

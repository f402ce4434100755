"""Backtest engine: compiled strategy plans + bars + execution assumptions -> trades, equity, metrics.

Entry points (import them from their modules; this package imports nothing so its numba kernels load
only when used):

- ``pipeline``: the one path every backtest takes (jobs, the worker's warm-up, sweeps, stress tests,
  the benchmarks). ``pipeline.Backtester(document, bars, assumptions)`` compiles once;
  ``.run(parameters, first_row=a, stop_row=b)`` backtests rows ``[a, b)`` of ``bars`` with the rows
  before ``a`` as indicator warm-up -> ``BacktestRun`` (result + the range's plan and bars, for trade
  snapshots); ``.sweep(parameter_sets, first_row=a, stop_row=b)`` runs a parameter grid over the same
  range as batches of one compiled call -> ``SweepResult``. ``pipeline.pack_backtest(BacktestInputs)``
  adds what a job stores: summary, artifacts (``artifacts``, with the rows ``snapshot_context`` keeps
  for trade snapshots) and the result hash. Refused inputs raise ``pipeline.BacktestInputError``.
- ``engine.simulate(plan, bars, assumptions)`` / ``engine.run_sweep(plans, bars, assumptions)``: the
  same from already-built ``StrategyPlan`` s; ``engine.simulate_records`` is the simulation core alone.
- ``assumptions.ExecutionAssumptions``: every fill and cost rule, documented, echoed in results.
- ``result.BacktestResult``: metrics, series, order/trade records; canonical JSON and compact storage.
- ``analytics`` (views by name in ``VIEWS``) and ``snapshots.trade_snapshot``: computed on demand.

Long runs take ``progress(fraction, stage)`` and ``should_cancel()`` callables from the job layer.
"""

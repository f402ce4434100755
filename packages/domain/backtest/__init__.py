"""Backtest engine: compiled strategy plans + bars + execution assumptions -> trades, equity, metrics.

Entry points (import them from their modules; this package imports nothing so its numba kernels load
only when used):

- ``runner.run_backtest(document, bars, assumptions)``: the user's path (compile the DSL document,
  build the plan, simulate, measure) -> ``BacktestRun`` (result + plan + bars, for trade snapshots).
- ``runner.sweep_backtest(document, bars, parameter_sets, assumptions)``: a parameter grid sharing
  indicator series, run as batches of one compiled call -> ``SweepResult``.
- ``engine.simulate(plan, bars, assumptions)`` / ``engine.run_sweep(plans, bars, assumptions)``: the
  same from already-built ``StrategyPlan`` s; ``engine.simulate_records`` is the simulation core alone.
- ``assumptions.ExecutionAssumptions``: every fill and cost rule, documented, echoed in results.
- ``result.BacktestResult``: metrics, series, order/trade records; canonical JSON and compact storage.
- ``analytics`` (views by name in ``VIEWS``) and ``snapshots.trade_snapshot``: computed on demand.

Long runs take ``progress(fraction, stage)`` and ``should_cancel()`` callables from the job layer.
"""

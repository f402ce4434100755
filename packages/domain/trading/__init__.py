"""Paper trading, pure: orders, brokers, the simulated broker, the ledger, risk, the cycle, reconciliation.

A confirmed strategy revision deployed to a paper account runs one cycle per closed bar. Each module
is its own manual (import from the modules; this package imports nothing):

- ``orders``: order specs (quantity, size at fill, close position; protective legs), deterministic
  client order ids, the order state machine.
- ``broker``: the ``BrokerAdapter`` protocol and its typed results; ``PaperAccount`` and
  ``LiveAccount`` as distinct types; ``resolve_adapter``.
- ``costs``: fee, slippage and spread models per symbol or asset class (the backtest's).
- ``fill_rules``: the backtest's fill prices and sizing as plain functions, in the engine's arithmetic.
- ``simulated_broker``: ``match_bar``, the paper broker's matching of one bar (the backtest's fill
  rules step for step).
- ``paper_broker``: ``PaperBroker``, the adapter of a paper account in memory.
- ``ledger``: cash and position entries; ``replay`` rebuilds the state.
- ``round_trips``: fills read as trades; what the cycle keeps about open positions.
- ``risk``: limits, trading states, kill switches, the gate.
- ``manual``: a user's open, close, reduce, flatten and cancel as orders for the gate.
- ``window``: the strategy's plan over a bounded window, read at the closed bar.
- ``runtime``: one cycle's decisions at a closed bar.
- ``session``: a deployment run in memory, bar by bar (replays, tests, benchmarks).
- ``reconciliation``: backtest against paper, trade by trade, every difference with its cause.
- ``readiness``: what a deployment needs before it starts.
"""

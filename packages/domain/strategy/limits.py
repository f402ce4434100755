"""Resource caps on strategy documents.

They bound what one document can make the engine do (symbols to load, indicators to compute,
condition nodes to evaluate, bars to look back) and keep validation itself cheap and
crash-free on hostile input. The published schema carries the default caps.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    max_symbols: int = 100
    max_factors: int = 64
    max_exits_per_side: int = 12
    max_condition_nodes: int = 256  # over every condition tree of the document
    max_condition_depth: int = 10  # nesting of all/any/not/temporal nodes, leaves at depth 1
    max_offset_bars: int = 1_000  # how far back an operand may look
    max_temporal_window: int = 1_000  # within_bars / bars_since / sequence windows
    max_lookback_bars: int = 20_000  # total look-back of one condition tree
    max_time_exit_bars: int = 100_000
    max_order_valid_bars: int = 10_000
    max_literal_magnitude: float = 1e12  # literals, distances, cash amounts
    max_document_depth: int = 40  # JSON nesting of the whole document
    max_document_values: int = 20_000  # JSON values (objects, arrays, scalars) in the document
    max_string_length: int = 4_096


DEFAULT_LIMITS = Limits()

"""What a fill costs: the backtest's fee, slippage and spread models, per symbol or asset class.

A ``CostModel`` is read from an ``ExecutionAssumptions`` exactly as the backtest engine reads it
(``backtest.packing.pack_params``): ``fee_bps`` and ``fee_fixed`` per fill, slippage by ``slippage_bps``
or by ``volume_impact`` x the order's share of the bar's volume, half of ``spread_bps`` paid on each
side, ``limit_fill_on_touch`` and ``quantity_step``. It adds one paper-trading option the engine
lacks: ``max_volume_share``, the largest share of a bar's volume one order may take (the rest keeps
working as a partial fill); ``None`` (the default, as in backtests) fills whole orders.

A ``CostBook`` picks the model of a symbol: its own model, else its asset class's (``asset_classes``
maps symbols to classes such as ``"us_stocks"`` or ``"crypto"``), else the default. ``leverage`` is the
account's: maximum gross exposure over equity (``margin_leverage`` when ``allow_margin``, else 1).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from packages.domain.backtest.assumptions import ExecutionAssumptions


@dataclass(frozen=True)
class CostModel:
    fee_rate: float = 0.0  # fraction of notional
    fee_fixed: float = 0.0  # per fill
    slippage: float = 0.0  # fraction, for the bps model
    volume_slippage: bool = False  # slippage = volume_impact x (quantity / bar volume)
    volume_impact: float = 0.0
    half_spread: float = 0.0  # fraction of the mid price
    limit_fill_on_touch: bool = False
    quantity_step: float = 0.0  # 0: fractional quantities
    max_volume_share: float | None = None  # None: whole fills

    def __post_init__(self) -> None:
        if self.max_volume_share is not None and not 0 < self.max_volume_share <= 1:
            raise ValueError("max_volume_share is a fraction in (0, 1]")

    @classmethod
    def from_assumptions(
        cls, assumptions: ExecutionAssumptions, *, max_volume_share: float | None = None
    ) -> CostModel:
        return cls(
            fee_rate=assumptions.fee_rate(),
            fee_fixed=assumptions.fee_fixed,
            slippage=assumptions.slippage_bps * 1e-4,
            volume_slippage=assumptions.slippage_model == "volume_share",
            volume_impact=assumptions.volume_impact,
            half_spread=assumptions.half_spread(),
            limit_fill_on_touch=assumptions.limit_fill_on_touch,
            quantity_step=assumptions.quantity_step,
            max_volume_share=max_volume_share,
        )


@dataclass(frozen=True)
class CostBook:
    default: CostModel = field(default_factory=CostModel)
    by_symbol: Mapping[str, CostModel] = field(default_factory=dict)
    by_asset_class: Mapping[str, CostModel] = field(default_factory=dict)
    asset_classes: Mapping[str, str] = field(default_factory=dict)  # symbol -> asset class
    leverage: float = 1.0

    def __post_init__(self) -> None:
        if self.leverage < 1.0:
            raise ValueError("leverage is at least 1")

    def for_symbol(self, symbol: str) -> CostModel:
        model = self.by_symbol.get(symbol)
        if model is not None:
            return model
        asset_class = self.asset_classes.get(symbol)
        if asset_class is not None and asset_class in self.by_asset_class:
            return self.by_asset_class[asset_class]
        return self.default

    @classmethod
    def from_assumptions(
        cls,
        assumptions: ExecutionAssumptions,
        *,
        max_volume_share: float | None = None,
        by_asset_class: Mapping[str, ExecutionAssumptions] | None = None,
        asset_classes: Mapping[str, str] | None = None,
    ) -> CostBook:
        """The book a backtest with ``assumptions`` implies (one model for every symbol), optionally
        with per-asset-class assumptions (their fee, slippage, spread and step; leverage stays the
        account's)."""
        return cls(
            default=CostModel.from_assumptions(assumptions, max_volume_share=max_volume_share),
            by_asset_class={
                name: CostModel.from_assumptions(values, max_volume_share=max_volume_share)
                for name, values in (by_asset_class or {}).items()
            },
            asset_classes=dict(asset_classes or {}),
            leverage=assumptions.margin_leverage if assumptions.allow_margin else 1.0,
        )

"""Optimisation on the real SPX bars: the Pareto front checked by brute force over every trial, grids
counted by hand, seeded random and TPE searches reproducible and inside their bounds, constraints
applied, and each winner's patch turning the document into one with the winner's values."""

from __future__ import annotations

import itertools
from typing import Any

import jsonpatch
import pytest

from packages.domain.backtest.bars import UniverseBars
from packages.domain.backtest.pipeline import Backtester
from packages.domain.strategy.tunables import ParameterSpace
from packages.domain.strategy.validation import validate_strategy
from packages.domain.stress import methods, optimisation
from packages.domain.stress.errors import StressInputError
from packages.domain.stress.methods import StressContext
from packages.domain.stress.optimisation import Constraints, Dimension, Objective, OptimisationSpec
from tests.packages.domain.stress.stress_kit import context, document, sma_cross_document

FAST, SLOW, PERCENT = "/factors/0/params/period", "/factors/1/params/period", "/trade/long/sizing/percent"
WARM_UP_ROWS = 250


def search(ctx: StressContext, spec: OptimisationSpec, chunk_size: int = 1_000) -> dict[str, Any]:
    parts = methods.optimisation_plan(ctx, spec, chunk_size)
    return methods.optimisation_merge(
        ctx, spec, [methods.optimisation_part(ctx, spec, part) for part in parts]
    )


def sma_grid(objectives: tuple[Objective, ...], constraints: Constraints = Constraints()) -> OptimisationSpec:
    """25 SMA crossovers: fast 5..25 by 5, slow 30..110 by 20."""
    return OptimisationSpec(
        "grid",
        (Dimension(FAST, 5, 25, 5), Dimension(SLOW, 30, 110, 20)),
        objectives,
        constraints,
        budget=25,
    )


@pytest.fixture(scope="module")
def sma_context(spx: UniverseBars) -> StressContext:
    return context(sma_cross_document("SPX", 10, 30), spx, first_row=WARM_UP_ROWS)


@pytest.fixture(scope="module")
def sma_trials(sma_context: StressContext) -> list[dict[str, Any]]:
    report = search(sma_context, sma_grid((Objective("sharpe"),)))
    trials: list[dict[str, Any]] = report["items"]
    return trials


def dominates(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return all(x >= y for x, y in zip(a, b, strict=True)) and any(x > y for x, y in zip(a, b, strict=True))


OBJECTIVE_SETS = [
    (Objective("sharpe"), Objective("max_drawdown")),
    (Objective("total_return"), Objective("trades", "minimize")),
    (Objective("calmar"), Objective("win_rate"), Objective("trades", "minimize")),
    (Objective("max_drawdown", "minimize"), Objective("profit_factor")),
]


@pytest.mark.parametrize(
    "objectives", OBJECTIVE_SETS, ids=lambda o: "-".join(f"{x.metric}_{x.direction}" for x in o)
)
def test_the_pareto_front_holds_exactly_the_undominated_trials(
    objectives: tuple[Objective, ...], sma_trials: list[dict[str, Any]]
) -> None:
    def score(trial: dict[str, Any]) -> tuple[float, ...]:
        return tuple(
            trial["metrics"][o.metric] * (1 if o.direction == "maximize" else -1) for o in objectives
        )

    assert len(sma_trials) == 25 and all(t["feasible"] for t in sma_trials)
    front = set(optimisation.pareto_front(sma_trials, objectives))
    assert front
    for i, trial in enumerate(sma_trials):
        beaten = any(dominates(score(other), score(trial)) for j, other in enumerate(sma_trials) if j != i)
        assert (i in front) == (not beaten), (i, trial["values"])
    best = optimisation.best_trial(sma_trials, objectives)
    assert best is not None and best in front
    # The best is the lexicographic maximum of the (sign-turned) objectives.
    assert score(sma_trials[best]) == max(score(t) for t in sma_trials)


def test_constraints_filter_feasibility_the_front_and_the_best(sma_context: StressContext) -> None:
    constraints = Constraints(max_drawdown=-0.35, min_trades=40, min_return=0.0)
    report = search(
        sma_context, sma_grid((Objective("sharpe"), Objective("trades", "minimize")), constraints)
    )
    trials, summary = report["items"], report["summary"]
    for trial in trials:
        metrics = trial["metrics"]
        meets = (
            metrics["max_drawdown"] >= -0.35 and metrics["trades"] >= 40 and metrics["total_return"] >= 0.0
        )
        assert trial["feasible"] == meets, trial["values"]
    feasible = [i for i, t in enumerate(trials) if t["feasible"]]
    assert 0 < len(feasible) < len(trials)  # the constraints bite
    assert summary["feasible"] == len(feasible)
    assert set(summary["pareto_front"]) <= set(feasible)
    assert summary["best_trial"] == max(feasible, key=lambda i: (trials[i]["metrics"]["sharpe"], -i))
    assert summary["winners"][0]["trial"] == summary["best_trial"]
    impossible = search(sma_context, sma_grid((Objective("sharpe"),), Constraints(min_trades=10_000)))
    assert impossible["summary"]["best_trial"] is None and impossible["summary"]["winners"] == []
    assert "None of the 25 trials met the constraints" in impossible["description"]


def test_grid_values_and_sizes_by_hand() -> None:
    strategy = document(
        "SPX",
        [{"id": "bb", "indicator": "bbands", "params": {"period": 20}}],
        {"op": "lt", "left": {"field": "close"}, "right": {"factor": "bb", "output": "lower"}},
        [{"name": "t", "type": "time_exit", "bars": 5}],
    )
    space = ParameterSpace.of(strategy)
    period, dev_up = "/factors/0/params/period", "/factors/0/params/dev_up"

    def axis(dimension: Dimension, points: int = 5) -> list[float]:
        spec = OptimisationSpec(
            "grid", (dimension,), (Objective("sharpe"),), budget=10_000, grid_points=points
        )
        return [c[dimension.pointer] for c in optimisation.candidates(space, spec)]

    assert axis(Dimension(period, 5, 20, 5)) == [5, 10, 15, 20]
    assert axis(Dimension(period, 5, 21, 5)) == [5, 10, 15, 20]  # the step stops inside the range
    # 5 points from 2 to 4: 2, 2.5, 3, 3.5, 4 round (halves to even) to 2, 2, 3, 4, 4.
    assert axis(Dimension(period, 2, 4)) == [2, 3, 4]
    # A whole-number axis keeps to whole numbers inside the range: 2.4, 3.4, 4.4 -> 3, 3, 4 (not 2).
    assert axis(Dimension(period, 2.4, 4.4), points=3) == [3, 4]
    assert axis(Dimension(dev_up, 1.0, 2.0), points=3) == [1.0, 1.5, 2.0]
    assert axis(Dimension(dev_up, 0.5, 1.0, 0.1)) == [0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    spec = OptimisationSpec(
        "grid", (Dimension(period, 5, 50, 5), Dimension(dev_up, 1.0, 3.0)), (Objective("sharpe"),), budget=49
    )
    assert optimisation.grid_size(space, spec) == 10 * 5
    with pytest.raises(StressInputError) as raised:
        optimisation.candidates(space, spec)
    assert raised.value.code == "grid_too_large" and raised.value.pointer == "/budget"
    assert "50 combinations" in raised.value.message and "budget is 49" in raised.value.message
    assert (
        len(
            optimisation.candidates(
                space, OptimisationSpec(spec.method, spec.dimensions, spec.objectives, budget=50)
            )
        )
        == 50
    )


def test_requests_the_search_cannot_honour_point_at_their_field() -> None:
    space = ParameterSpace.of(sma_cross_document("SPX", 10, 30))
    sharpe = (Objective("sharpe"),)
    cases = [
        (OptimisationSpec("grid", (), sharpe), "no_dimensions", "/dimensions"),
        (
            OptimisationSpec("grid", (Dimension(FAST, 2, 5), Dimension("/x", 1, 2)), sharpe),
            "unknown_parameter",
            "/dimensions/1/pointer",
        ),
        (OptimisationSpec("grid", (Dimension(FAST, 5, 5),), sharpe), "empty_range", "/dimensions/0/high"),
        (OptimisationSpec("grid", (Dimension(FAST, 0, 5),), sharpe), "out_of_bounds", "/dimensions/0/low"),
        (OptimisationSpec("grid", (Dimension(FAST, 2.2, 2.8),), sharpe), "empty_range", "/dimensions/0/high"),
        (OptimisationSpec("grid", (Dimension(FAST, 2, 8, 0),), sharpe), "bad_step", "/dimensions/0/step"),
        (
            OptimisationSpec("grid", (Dimension(FAST, 2, 8),), (Objective("sharpe"), Objective("beta"))),
            "unknown_metric",
            "/objectives/1/metric",
        ),
    ]
    for spec, code, pointer in cases:
        with pytest.raises(StressInputError) as raised:
            optimisation.check_space(space, spec)
        assert (raised.value.code, raised.value.pointer) == (code, pointer)


def test_a_seeded_random_search_is_reproducible_and_inside_its_bounds() -> None:
    space = ParameterSpace.of(sma_cross_document("SPX", 10, 30))
    dimensions = (Dimension(FAST, 2.5, 20.5), Dimension(PERCENT, 10.0, 90.0))
    spec = OptimisationSpec("random", dimensions, (Objective("sharpe"),), budget=200, seed=42)
    drawn = optimisation.candidates(space, spec)
    assert drawn == optimisation.candidates(space, spec)
    assert drawn != optimisation.candidates(
        space, OptimisationSpec("random", dimensions, spec.objectives, budget=200, seed=43)
    )
    fast = [row[FAST] for row in drawn]
    assert all(v.is_integer() and 3 <= v <= 20 for v in fast)
    assert set(fast) == set(range(3, 21))  # 200 draws reach each of the 18 whole numbers
    assert all(10.0 <= row[PERCENT] <= 90.0 for row in drawn)
    assert len({row[PERCENT] for row in drawn}) == 200


def test_a_seeded_tpe_search_is_reproducible_and_keeps_to_its_bounds_and_types(spx: UniverseBars) -> None:
    ctx = context(
        sma_cross_document("SPX", 10, 30), spx, first_row=WARM_UP_ROWS, stop_row=WARM_UP_ROWS + 2_000
    )
    dimensions = (Dimension(FAST, 3, 15), Dimension(SLOW, 16, 80), Dimension(PERCENT, 20.0, 100.0))
    spec = OptimisationSpec("tpe", dimensions, (Objective("sharpe"),), budget=24, seed=9, batch_size=8)
    assert methods.optimisation_plan(ctx, spec, 1) == [{"tpe": True}]
    first = search(ctx, spec)
    assert search(ctx, spec) == first
    trials = first["items"]
    assert len(trials) == 24
    for trial in trials:
        values = trial["values"]
        assert values[FAST] == int(values[FAST]) and 3 <= values[FAST] <= 15
        assert values[SLOW] == int(values[SLOW]) and 16 <= values[SLOW] <= 80
        assert 20.0 <= values[PERCENT] <= 100.0
    # Every trial's metrics are those of a plain backtest of its values.
    probe = trials[-1]
    metrics = ctx.backtester.run(
        probe["values"], first_row=ctx.first_row, stop_row=ctx.stop_row
    ).result.metrics
    assert probe["metrics"]["sharpe"] == pytest.approx(metrics["sharpe"], rel=1e-12)
    other = search(
        ctx, OptimisationSpec("tpe", dimensions, spec.objectives, budget=24, seed=10, batch_size=8)
    )
    assert [t["values"] for t in other["items"]] != [t["values"] for t in trials]


def macd_bands_document() -> dict[str, Any]:
    """A MACD factor with no ``params`` object at all and a Bollinger factor that leaves its
    ``dev_up`` to the default: the three tuned values are all missing from the document."""
    return document(
        "SPX",
        [
            {"id": "macd", "indicator": "macd"},
            {"id": "bb", "indicator": "bbands", "params": {"period": 20}},
        ],
        {
            "op": "cross_above",
            "left": {"factor": "macd", "output": "macd"},
            "right": {"factor": "macd", "output": "signal"},
        },
        [
            {
                "name": "stretched",
                "type": "signal",
                "condition": {
                    "op": "gt",
                    "left": {"field": "close"},
                    "right": {"factor": "bb", "output": "upper"},
                },
            },
            {"name": "stop", "type": "stop_loss", "distance": {"unit": "percent", "value": 5}},
        ],
    )


def test_a_winners_patch_gives_a_valid_document_with_the_winners_values(spx: UniverseBars) -> None:
    strategy = macd_bands_document()
    ctx = context(strategy, spx, first_row=WARM_UP_ROWS)
    fast, slow, dev_up = (
        "/factors/0/params/fast_period",
        "/factors/0/params/slow_period",
        "/factors/1/params/dev_up",
    )
    spec = OptimisationSpec(
        "grid",
        (Dimension(fast, 8, 16, 4), Dimension(slow, 20, 30, 5), Dimension(dev_up, 1.5, 2.5)),
        (Objective("total_return"), Objective("max_drawdown")),
        budget=27,
        grid_points=3,
    )
    report = search(ctx, spec)
    winners = report["summary"]["winners"]
    assert winners and winners[0]["trial"] == report["summary"]["best_trial"]
    for winner in winners:
        patched = jsonpatch.apply_patch(strategy, winner["patch"])
        assert validate_strategy(patched) == []
        values = {p.pointer: p.value for p in ParameterSpace.of(patched).parameters.values()}
        for pointer, value in winner["values"].items():
            assert values[pointer] == value
            assert type(
                patched["factors"][int(pointer.split("/")[2])]["params"][pointer.rsplit("/", 1)[1]]
            ) is (int if pointer != dev_up else float)
        assert patched["factors"][1]["params"]["period"] == 20  # what was written stays
        # The patched document, run as it is, gives the winner's metrics.
        metrics = Backtester(patched, spx).run(first_row=WARM_UP_ROWS).result.metrics
        assert metrics["total_return"] == pytest.approx(winner["metrics"]["total_return"], rel=1e-12)
    assert strategy == macd_bands_document()  # the document itself is left alone


def test_two_values_of_a_factor_without_params_go_into_one_added_object() -> None:
    strategy = macd_bands_document()
    space = ParameterSpace.of(strategy)
    values = {
        "/factors/0/params/fast_period": 5.0,
        "/factors/0/params/slow_period": 35.0,
        "/factors/0/params/signal_period": 4.0,
    }
    patch = optimisation.parameter_patch(strategy, values, space)
    assert patch == [
        {
            "op": "add",
            "path": "/factors/0/params",
            "value": {"fast_period": 5, "slow_period": 35, "signal_period": 4},
        }
    ]
    patched = jsonpatch.apply_patch(strategy, patch)
    assert patched["factors"][0]["params"] == {"fast_period": 5, "slow_period": 35, "signal_period": 4}


def test_grid_and_random_chunking_and_part_order_do_not_change_the_report(sma_context: StressContext) -> None:
    for spec in (
        sma_grid((Objective("sharpe"), Objective("max_drawdown"))),
        OptimisationSpec(
            "random",
            (Dimension(FAST, 3, 20), Dimension(SLOW, 25, 120)),
            (Objective("calmar"),),
            budget=12,
            seed=1,
        ),
    ):
        whole = search(sma_context, spec, 1_000)
        parts = methods.optimisation_plan(sma_context, spec, 1)
        assert len(parts) == (spec.budget if spec.method == "random" else 25)
        # Parts run in any order; the job kit hands their results to the merge in plan order.
        results = {
            i: methods.optimisation_part(sma_context, spec, parts[i]) for i in reversed(range(len(parts)))
        }
        assert methods.optimisation_merge(sma_context, spec, [results[i] for i in range(len(parts))]) == whole
        assert search(sma_context, spec, 4) == whole


def test_every_grid_combination_is_a_trial_in_grid_order(sma_trials: list[dict[str, Any]]) -> None:
    expected = [
        {FAST: float(f), SLOW: float(s)} for f, s in itertools.product(range(5, 26, 5), range(30, 111, 20))
    ]
    assert [t["values"] for t in sma_trials] == expected
    assert [t["number"] for t in sma_trials] == list(range(25))


def test_combinations_the_language_refuses_are_reported_not_run(sma_context: StressContext) -> None:
    # SMA 30 crossing SMA 30 reads one series twice: never true, so refused.
    spec = OptimisationSpec(
        "grid", (Dimension(FAST, 10, 30, 10), Dimension(SLOW, 30, 50, 10)), (Objective("sharpe"),), budget=9
    )
    report = search(sma_context, spec)
    refused = [t for t in report["items"] if t["invalid"]]
    assert [t["values"] for t in refused] == [{FAST: 30.0, SLOW: 30.0}]
    assert refused[0]["metrics"] is None and not refused[0]["feasible"]
    assert "same series" in refused[0]["invalid"]
    assert report["summary"]["invalid"] == 1 and report["summary"]["feasible"] == 8
    assert report["summary"]["best_trial"] != refused[0]["number"]

"""The language README stays true: its example validates and it documents every code and example."""

from __future__ import annotations

import json
import re
from pathlib import Path

import packages.domain.strategy as strategy_package
from packages.domain.strategy.compiler import compile_strategy
from packages.domain.strategy.errors import ErrorCode
from packages.domain.strategy.examples import example_slugs
from packages.domain.strategy.indicators import list_indicators
from packages.domain.strategy.validation import validate_strategy

README = (Path(strategy_package.__file__).parent / "README.md").read_text(encoding="utf-8")
_ROOT_README = (Path(strategy_package.__file__).parents[3] / "README.md").read_text(encoding="utf-8")
TOP_LEVEL_SECTION = _ROOT_README.split("## Strategy DSL\n", 1)[1].split("\n## ", 1)[0]


def test_full_example_is_valid_and_compiles() -> None:
    (block,) = re.findall(r"```json\n(.*?)```", README, flags=re.DOTALL)
    document = json.loads(block)
    assert validate_strategy(document) == []
    compile_strategy(document)


def test_every_error_code_example_and_indicator_is_documented() -> None:
    table = {match for match in re.findall(r"^\| `([A-Z_]+)` \|", README, flags=re.MULTILINE)}
    assert table == {code.value for code in ErrorCode}
    for slug in example_slugs():
        assert slug in README
    assert f"({len(list_indicators())} entries" in README
    for entry in list_indicators():
        if entry.category != "pattern":
            assert re.search(rf"\b{entry.name}\b", README), entry.name


def test_top_level_readme_section_example_is_valid_and_lists_every_code() -> None:
    (block,) = [
        block
        for block in re.findall(r"```json\n(.*?)```", TOP_LEVEL_SECTION, flags=re.DOTALL)
        if "dsl_version" in block
    ]
    document = json.loads(block)
    assert validate_strategy(document) == []
    assert compile_strategy(document).warmup_bars == 50  # SMA(50) is defined from bar 49, the cross needs 50
    table = set(re.findall(r"^\| `([A-Z_]+)` \|", TOP_LEVEL_SECTION, flags=re.MULTILINE))
    assert table == {code.value for code in ErrorCode}
    assert "packages/domain/strategy/README.md" in TOP_LEVEL_SECTION


def test_every_parameter_rule_is_documented() -> None:
    rows = [line for line in README.splitlines() if line.startswith("| ")]
    for spec in list_indicators():
        for constraint in spec.constraints:
            assert any(
                re.search(rf"\b{spec.name}\b", row.split("|")[1]) and f"`{constraint.description}`" in row
                for row in rows
            ), (spec.name, constraint.description)

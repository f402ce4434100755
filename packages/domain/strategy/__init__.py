"""Strategy DSL: a versioned JSON language for trading strategies, its catalogue and compiler.

Entry points (import them from their modules; this package stays import-light so that engines
reading only ``plan`` do not load TA-Lib, numba or jsonschema):

- ``schema.get_strategy_schema()``: the JSON Schema 2020-12 document (``vocabulary.DSL_VERSION``);
- ``validation.validate_strategy(document, symbol_checker=..., limits=...)``: list of
  ``errors.ValidationIssue`` (code, RFC 6901 pointer, message, hint), empty when valid;
- ``compiler.compile_strategy(document)`` -> ``CompiledStrategy`` and its
  ``build_plan(bars, higher_timeframe_bars=..., resampler=..., cache=...)`` -> ``plan.StrategyPlan``;
  sweeps: ``build_plans(bars, parameter_sets)``, ``with_parameters(values)``, ``compiler.SeriesCache``;
- ``bars.BarMatrix`` (bar input), ``bars.Resampler`` / ``bars.resample_bars``;
- ``indicators.list_indicators()`` / ``get_indicator(name)`` / ``catalogue_document()``;
- ``tunables.list_tunable_parameters(document)`` / ``apply_parameters(document, values)`` /
  ``ParameterSpace`` (many value sets of one document);
- ``canonical.canonical_json`` / ``document_hash`` / ``diff_documents`` / ``apply_patch``;
  ``patch_trace.apply_traced_patch`` (which operation answers for each location of the result);
- ``examples.list_examples()`` / ``get_example(slug)``.

The language is taught in README.md next to this file.
"""

"""The error types live in paretoapp.errors, share one base, and stay importable from their old homes."""

import importlib

import pytest

import paretoapp
from paretoapp import errors

HOMES = {
    "InputError": "validation", "PromptTooLongError": "generate", "PreferenceError": "gates",
    "FamilyError": "family", "BaseModelError": "models", "UnknownMethodError": "methods",
    "RequestError": "engine", "EngineBusy": "engine", "ExportError": "export", "ScorerError": "scorers",
    "EvaluationError": "evaluate", "ConfigError": "trainers.config", "DataError": "trainers.data",
}


@pytest.mark.parametrize("name,home", sorted(HOMES.items()))
def test_each_error_is_defined_once_and_reexported_where_it_is_raised(name, home):
    cls = getattr(errors, name)
    assert getattr(importlib.import_module(f"paretoapp.{home}"), name) is cls
    # a user can fix every one of them (one line, exit code 2), except a busy engine: try again later
    assert issubclass(cls, errors.ParetoappError) == (name != "EngineBusy")


def test_the_base_is_a_value_error_and_public():
    assert issubclass(errors.ParetoappError, ValueError) and paretoapp.ParetoappError is errors.ParetoappError


def test_report_errors_prints_one_line_for_a_user_error_and_keeps_a_bug(capsys):
    def fails(exc):
        def run():
            raise exc
        return run

    assert errors.report_errors(fails(errors.FamilyError("family x is broken;\nre-save it"))) == 2
    assert capsys.readouterr().err == "error: family x is broken; re-save it\n"
    assert errors.report_errors(fails(KeyboardInterrupt())) == 130
    with pytest.raises(RuntimeError):
        errors.report_errors(fails(RuntimeError("a bug")))
    with pytest.raises(errors.FamilyError):
        errors.report_errors(fails(errors.FamilyError("shown whole")), debug=True)
    assert errors.report_errors(lambda: 0) == 0

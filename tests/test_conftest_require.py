"""A missing engine is reported as skipped on a developer's machine and fails in CI (``.ci/run``: CI=true).

``conftest.require`` is what every engine test calls (Detectron2, MMSegmentation, imgviz); the
outcome pytest reports is decided by the exception it raises: ``pytest.skip`` -> skipped,
``pytest.fail`` -> failed, never a silent pass.
"""

import pytest
from conftest import require

MISSING = "resa_bench_engine_that_is_not_installed"


def outcome_of_a_missing_engine() -> BaseException:
    """The exception ``require`` raises (caught here, so a wrong one fails this test instead of skipping it)."""
    with pytest.raises(BaseException) as caught:  # pytest's skip/fail outcomes are BaseExceptions
        require(MISSING, "make x")
    assert f"{MISSING} is not importable" in str(caught.value) and "install it with: make x" in str(caught.value)
    return caught.value


def test_a_missing_engine_is_a_skip_outside_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    assert type(outcome_of_a_missing_engine()) is pytest.skip.Exception


def test_a_missing_engine_is_a_failure_in_ci(monkeypatch):
    monkeypatch.setenv("CI", "true")
    assert type(outcome_of_a_missing_engine()) is pytest.fail.Exception


def test_an_installed_engine_is_returned(monkeypatch):
    monkeypatch.setenv("CI", "true")
    assert require("json", "nothing").dumps([1]) == "[1]"


def test_ci_run_exports_ci_true():
    from conftest import repo_path

    with open(repo_path(".ci/run")) as script:
        assert "export CI=true" in script.read().splitlines()

"""The tasks as plain functions: no broker, no worker."""

from {{ cookiecutter.project_slug }}.tasks import tsum


def test_tsum_adds_the_numbers():
    assert tsum([1, 2, 3]) == 6


def test_tsum_of_nothing_is_zero():
    assert tsum([]) == 0

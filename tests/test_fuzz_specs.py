"""A few hundred broken or hostile specs: each a located SpecError or a valid model.

The same cases by the thousand: `python reliability/fuzz_specs.py --cases 3000`.
"""

import keras
import pytest
from hypothesis import HealthCheck, given, settings

from reliability.spec_cases import (BUILT_SPECS, LOADED_ONLY_SPECS, RANDOM_YAML, copy_specs,
                                    mutated_spec, try_spec, warm_up)

FAST = settings(max_examples=100, deadline=None, database=None, derandomize=True,
                suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def specs(tmp_path_factory):
    warm_up()
    yield copy_specs(tmp_path_factory.mktemp("fuzz"))
    keras.backend.clear_session()


def check(specs, name: str, text: str, build: bool) -> None:
    path = specs / f"case_{name}.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    outcome, detail = try_spec(path, build=build)
    assert outcome in ("model", "located SpecError"), f"{outcome}:\n{text[:2000]}\n{detail}"


@FAST
@given(case=mutated_spec(BUILT_SPECS))
def test_mutated_small_specs_build_or_fail_located(specs, case):
    check(specs, *case, build=True)


@FAST
@given(case=mutated_spec(LOADED_ONLY_SPECS))
def test_mutated_big_specs_load_or_fail_located(specs, case):
    check(specs, *case, build=False)


@FAST
@given(text=RANDOM_YAML)
def test_random_yaml_builds_or_fails_located(specs, text):
    check(specs, "random", text, build=True)

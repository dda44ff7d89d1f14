"""The corpus of realistic mistakes (reliability/mistakes.py): each is one located message
and exit code 2 from `--dry-run`, and each right spec means what it says."""

import pytest

import zoo
from reliability.mistakes import MEANINGS, MISTAKES
from zoo import cli


def dry_run(write_spec, case, capsys):
    spec = write_spec(case.spec)
    arguments = ["summary", spec]
    for assignment in case.sets:
        arguments += ["--set", assignment]
    code = cli.main(arguments)
    return code, capsys.readouterr()


@pytest.mark.parametrize("case", MISTAKES, ids=[case.kind for case in MISTAKES])
def test_a_mistake_is_one_located_message_and_exit_2(write_spec, case, capsys):
    code, printed = dry_run(write_spec, case, capsys)
    assert (code, printed.err) == (2, "error: " + case.message.replace("SPEC", "spec.yaml")
                                   + "\n")


@pytest.mark.parametrize("case", MEANINGS, ids=[case.kind for case in MEANINGS])
def test_a_right_spec_means_what_it_says(write_spec, case, capsys):
    code, printed = dry_run(write_spec, case, capsys)
    assert code == 0, printed.err
    spec = zoo.load_spec("spec.yaml", case.sets)
    if case.path.startswith("layer "):
        name, attribute = case.path.split()[1].split(".")
        value = getattr(zoo.build_model(spec).get_layer(name), attribute)
    else:
        value = spec.document
        for part in case.path.split("."):
            value = value[part]
        value = zoo.source.plain(value) if hasattr(value, "items") else value
    assert value == case.value

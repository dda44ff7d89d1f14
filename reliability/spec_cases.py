"""Hostile and broken specs, generated with hypothesis, and the promise each must keep.

The promise (DESIGN.md): loading and building a spec ends in a `zoo.SpecError`
whose message starts with `file:line:col: `, or in a valid model. Any other
exception, a missing location, or a case that runs past its time limit breaks it.

Cases come from the real specs in specs/ (keys deleted, duplicated or misspelled,
values of the wrong type or out of range, wrong references, deep nesting,
unicode, very long strings, text-level edits that break the YAML) and from
random YAML documents. `tests/test_fuzz_specs.py` runs a few hundred of them;
`reliability/fuzz_specs.py` runs thousands and counts the outcomes.
"""

from __future__ import annotations

import re
import shutil
import signal
import traceback
from contextlib import contextmanager
from pathlib import Path

import yaml
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
# Built per case: small enough that a build takes a fraction of a second.
BUILT_SPECS = ("mlp", "lenet", "autoencoder", "resnet20", "stacked_autoencoder", "unet")
# Loaded and checked per case, built only when a mutation makes the model smaller.
LOADED_ONLY_SPECS = ("alexnet", "resnet50", "resnet152", "stacked_denoising_autoencoder")
LOCATED = re.compile(r"^\S.*?:\d+:\d+: ")
CASE_SECONDS = 20  # a build of the biggest small spec takes about 1 s on a loaded CPU

OUTCOMES = ("model", "located SpecError", "unlocated SpecError", "other exception", "timeout")


def copy_specs(directory: Path) -> Path:
    """A private copy of specs/ (templates included) where mutated cases are written."""
    target = directory / "specs"
    shutil.copytree(ROOT / "specs", target, dirs_exist_ok=True)
    return target


# --- the oracle ------------------------------------------------------------------------------


class CaseTimeout(Exception):
    pass


@contextmanager
def time_limit(seconds: int):
    """Interrupt a case that runs too long (SIGALRM: main thread, Unix)."""
    def expire(*_):
        signal.alarm(1)  # again, should this exception land where it is swallowed (gc hooks)
        raise CaseTimeout(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def warm_up() -> None:
    """Import TensorFlow and build one model before any case is timed: on a busy machine the
    first import alone can take longer than a case may."""
    outcome, detail = try_spec(ROOT / "specs" / "lenet.yaml", seconds=600)
    assert outcome == "model", detail


def try_spec(path: Path, build: bool = True, seconds: int = CASE_SECONDS) -> tuple[str, str]:
    """(outcome, detail) of loading (and building and checking, as --dry-run does) one spec
    file; outcome is in OUTCOMES."""
    import zoo

    try:
        with time_limit(seconds):
            spec = zoo.load_spec(str(path))
            if build:  # and every check --dry-run makes against the built model
                from zoo.preflight import check_before_training

                check_before_training(spec, zoo.build_model(spec))
    except CaseTimeout as exc:
        return "timeout", str(exc)
    except zoo.SpecError as exc:
        message = str(exc)
        if LOCATED.match(message):
            return "located SpecError", message
        return "unlocated SpecError", message
    except Exception:  # the promise is broken: keep the traceback for the report
        return "other exception", traceback.format_exc()
    return "model", ""


# --- values that break things ----------------------------------------------------------------

NASTY_SCALARS = st.one_of(
    st.sampled_from([None, True, False, 0, -1, -3, 1.5, -0.0, float("nan"), float("inf"),
                     10**12, 2**63, 10**400, 1e308, "", " ", "0", "none", "${classes}",
                     "${missing}", "${", "${1/0}", "${classes * 10**100}", "${'a' * 9**9}",
                     "__import__('os').system('true')", "lambda x: x", "!!python/name:os.system",
                     "dense", "Lambda", "lambda", "flatten", "image", "predictions",
                     "\u202eevil", "日本語", "😀" * 10, "a\x00b"]),
    st.integers(min_value=-(10**6), max_value=10**13),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.text(min_size=1, max_size=20).map(lambda s: (s * 20_000)[:20_000]),  # very long
)

YAML_VALUES = st.recursive(
    NASTY_SCALARS,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.text(max_size=12), children, max_size=4)),
    max_leaves=25)


def _paths(value, prefix=()):
    """Every (path, value) inside a plain YAML value; a path is a tuple of keys/indices."""
    yield prefix, value
    items = value.items() if isinstance(value, dict) else (
        enumerate(value) if isinstance(value, list) else ())
    for key, item in items:
        yield from _paths(item, (*prefix, key))


def _replace(document, path, make):
    """`document` with the value at `path` replaced by make(old value); None in make deletes."""
    if not path:
        return make(document)
    *parent_path, last = path
    parent = document
    for key in parent_path:
        parent = parent[key]
    new = make(parent[last])
    if new is _DELETE:
        del parent[last]
    else:
        parent[last] = new
    return document


_DELETE = object()


def _misspell(draw, key: str) -> str:
    if not key:
        return "x"
    index = draw(st.integers(0, len(key) - 1))
    edit = draw(st.sampled_from(["drop", "double", "swap", "case", "unicode"]))
    if edit == "drop":
        return key[:index] + key[index + 1:] or "x"
    if edit == "double":
        return key[:index] + key[index] * 2 + key[index + 1:]
    if edit == "swap" and index + 1 < len(key):
        return key[:index] + key[index + 1] + key[index] + key[index + 2:]
    if edit == "case":
        return key.swapcase()
    return key[:index] + "\u0435" + key[index + 1:]  # a Cyrillic 'e' that looks Latin


@st.composite
def tree_mutation(draw, document):
    """One structural change to a parsed spec."""
    path, value = draw(st.sampled_from(list(_paths(document))))
    kind = draw(st.sampled_from(["delete", "misspell key", "wrong value", "nest deeply",
                                 "reference", "number out of range", "add key"]))
    if kind == "delete" and path:
        return _replace(document, path, lambda _: _DELETE)
    if kind == "misspell key" and path and isinstance(path[-1], str):
        *parent_path, key = path
        parent = document
        for step in parent_path:
            parent = parent[step]
        parent[_misspell(draw, key)] = parent.pop(key)
        return document
    if kind == "nest deeply":
        depth = draw(st.integers(1, 100))
        wrap = draw(st.sampled_from([lambda v: [v], lambda v: {"a": v}]))

        def nest(old):
            for _ in range(depth):
                old = wrap(old)
            return old
        return _replace(document, path, nest)
    if kind == "reference":
        names = [v for _, v in _paths(document) if isinstance(v, str) and len(v) < 40]
        choice = draw(st.sampled_from(names or ["x"]))
        return _replace(document, path, lambda _: choice)
    if kind == "number out of range" and isinstance(value, (int, float)):
        number = draw(st.sampled_from([0, -1, -value, value * 1000, 10**9, 0.5, 1e-30]))
        return _replace(document, path, lambda _: number)
    if kind == "add key" and isinstance(value, dict):
        value[draw(st.text(max_size=12))] = draw(YAML_VALUES)
        return document
    replacement = draw(YAML_VALUES)
    return _replace(document, path, lambda _: replacement)


@st.composite
def text_mutation(draw, text: str):
    """One edit of the YAML text itself: duplicate, delete or cut lines, insert characters."""
    lines = text.splitlines(keepends=True)
    index = draw(st.integers(0, max(len(lines) - 1, 0)))
    kind = draw(st.sampled_from(["duplicate line", "delete line", "truncate", "insert",
                                 "indent", "alias bomb"]))
    if kind == "duplicate line" and lines:
        lines.insert(index, lines[index])
    elif kind == "delete line" and lines:
        del lines[index]
    elif kind == "truncate":
        return text[:draw(st.integers(0, len(text)))]
    elif kind == "indent" and lines:
        lines[index] = " " * draw(st.integers(1, 5)) + lines[index]
    elif kind == "alias bomb":
        width = draw(st.integers(2, 12))
        bomb = "".join(f"b{i}: &b{i} [{', '.join([f'*b{i - 1}'] * width)}]\n"
                       for i in range(1, 10))
        return "b0: &b0 [x]\n" + bomb + text
    else:
        position = draw(st.integers(0, len(text)))
        noise = draw(st.text(alphabet=st.sampled_from(list(":-[]{}&*!|>'\"#%@`\t\n ,?") +
                                                      ["\u00e9", "\ufeff", "\x85"]),
                             min_size=1, max_size=4))
        return text[:position] + noise + text[position:]
    return "".join(lines)


def spec_text(name: str) -> str:
    return (ROOT / "specs" / f"{name}.yaml").read_text(encoding="utf-8")


@st.composite
def mutated_spec(draw, names=BUILT_SPECS):
    """(spec name, YAML text) of a real spec after one to three mutations."""
    name = draw(st.sampled_from(names))
    text = spec_text(name)
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.booleans()):
            text = draw(text_mutation(text))
            continue
        if "&b0" in text:
            continue  # an alias bomb goes off in safe_load too: it is only ever a last step
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError:
            continue  # an earlier text edit broke the YAML; keep the text as it is
        text = yaml.safe_dump(draw(tree_mutation(document)), allow_unicode=True,
                              sort_keys=False)
    return name, text


RANDOM_YAML = st.one_of(
    YAML_VALUES.map(lambda value: yaml.safe_dump(value, allow_unicode=True)),
    st.dictionaries(st.sampled_from(["extends", "model", "data", "train", "export", "expect",
                                     "pretrain", "description"]), YAML_VALUES, max_size=6)
    .map(lambda value: yaml.safe_dump(value, allow_unicode=True)),
    st.text(max_size=300),
)

"""The kinds of value a spec's keys take: each checks a value (a located error if it is wrong),
says in words what it takes, gives its JSON Schema, and has a good and a wrong example.

The section tables (`zoo.sections`) are made of these, so the loader, `zoo schema`, the
reference's tables and the generated tests all read one definition. Messages follow one form:
`expected <what it takes>, received <what was there>`.
"""

from __future__ import annotations

import math

from zoo.source import Mapping, Sequence, SpecError, describe, plain, suggest


class Type:
    """A kind of value. Subclasses set `words` and implement `accepts` (or `check`)."""

    words = "a value"
    example: object = None  # a good value, for the reference and the generated tests
    wrong: object = None  # a value of a wrong type, for the generated tests

    def check(self, value, container, key):
        """The value, or a located SpecError saying what was expected."""
        if not self.accepts(value):
            raise container.error(key, f"expected {self.words}, received {describe(value)}")
        return value

    def accepts(self, value) -> bool:
        return True

    def schema(self) -> dict:
        return {}


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class Integer(Type):
    def __init__(self, low: int | None = None, high: int | None = None, words: str = ""):
        self.low, self.high = low, high
        self.words = words or ("a positive integer" if low == 1 else
                               f"an integer >= {low}" if low is not None else "an integer")
        self.example, self.wrong = (low if low is not None else 0), "many"

    def check(self, value, container, key):
        if isinstance(value, bool) or not isinstance(value, int) or (
                self.low is not None and value < self.low):
            raise container.error(key, f"expected {self.words}, received {describe(value)}")
        if self.high is not None and value > self.high:
            raise container.error(key, f"expected at most {self.high:,}, received {value:,}")
        return value

    def schema(self) -> dict:
        bounds = {"minimum": self.low, "maximum": self.high}
        return {"type": "integer", **{k: v for k, v in bounds.items() if v is not None}}


class Number(Type):
    """A finite number (an integer is a number), from `low` up to `high` (`below`: high itself
    excluded)."""

    def __init__(self, low: float | None = None, high: float | None = None, *,
                 below: bool = False, above: bool = False, example: float | None = None):
        self.low, self.high, self.below, self.above = low, high, below, above
        lower = f"{'above' if above else 'from'} {low:g}" if low is not None else ""
        upper = f"to {'below ' if below else ''}{high:g}" if high is not None else ""
        if lower and upper:
            self.words = f"a number {lower} {upper}"
        elif lower:
            self.words = f"a number {'>' if above else '>='} {low:g}"
        else:
            self.words = "a number"
        self.example = example if example is not None else (
            0.5 if low is None else low + 1 if above else low)
        self.wrong = "fast"

    def accepts(self, value) -> bool:
        if not _is_number(value) or not math.isfinite(value):
            return False
        if self.low is not None and (value < self.low or (self.above and value == self.low)):
            return False
        return self.high is None or value < self.high or (value == self.high and not self.below)

    def schema(self) -> dict:
        schema = {"type": "number"}
        if self.low is not None:
            schema["exclusiveMinimum" if self.above else "minimum"] = self.low
        if self.high is not None:
            schema["exclusiveMaximum" if self.below else "maximum"] = self.high
        return schema


class Text(Type):
    words = "a non-empty string"

    def __init__(self, example: str = "train", words: str = ""):
        self.example, self.wrong = example, [1]
        self.words = words or self.words

    def accepts(self, value) -> bool:
        return isinstance(value, str) and bool(value)

    def schema(self) -> dict:
        return {"type": "string", "minLength": 1}


class Boolean(Type):
    words, example, wrong = "true or false", True, "false"

    def accepts(self, value) -> bool:
        return isinstance(value, bool)

    def schema(self) -> dict:
        return {"type": "boolean"}


def _spelled(choice) -> str:
    return str(choice).lower() if isinstance(choice, bool) else str(choice)  # as YAML writes it


class Choice(Type):
    """One of a few values, compared with their type: 1 is not true."""

    def __init__(self, *choices):
        self.choices = choices
        self.words = f"one of {', '.join(map(_spelled, choices))}"
        self.example, self.wrong = choices[0], "nonsense"

    def accepts(self, value) -> bool:
        return any(value == choice and type(value) is type(choice) for choice in self.choices)

    def check(self, value, container, key):
        if not self.accepts(value):
            close = suggest(value, list(map(_spelled, self.choices))) \
                if isinstance(value, str) else ""
            raise container.error(key, f"expected {self.words}, received {describe(value)}{close}")
        return value

    def schema(self) -> dict:
        return {"enum": list(self.choices)}


class ListOf(Type):
    def __init__(self, item: Type, words: str = "", min_items: int = 0):
        self.item, self.min_items = item, min_items
        self.words = words or f"a list of {item.words.removeprefix('a ')}"
        self.example, self.wrong = [item.example], item.example

    def check(self, value, container, key):
        if not isinstance(value, Sequence) or len(value) < self.min_items:
            raise container.error(key, f"expected {self.words}, received {describe(value)}")
        for index, item in enumerate(value):
            value[index] = self.item.check(item, value, index)
        return value

    def schema(self) -> dict:
        schema = {"type": "array", "items": self.item.schema()}
        return {**schema, "minItems": self.min_items} if self.min_items else schema


class Range(ListOf):
    """Two numbers of one kind, the least first: the bounds a random draw takes values from."""

    def __init__(self, number: Number, example: list):
        super().__init__(number, f"two numbers ({number.words.removeprefix('a ')}), the least "
                                 f"first, such as {example}", min_items=2)
        self.example = example

    def check(self, value, container, key):
        value = super().check(value, container, key)
        if len(value) != 2 or value[0] > value[1]:  # a list of numbers: shown as it is
            raise container.error(key, f"expected {self.words}, received {list(value)}")
        return value

    def schema(self) -> dict:
        return {**super().schema(), "maxItems": 2}


class Either(Type):
    """One of several kinds of value (tried in order)."""

    def __init__(self, *kinds: Type, words: str = ""):
        self.kinds = kinds
        self.words = words or " or ".join(kind.words for kind in kinds)
        self.example, self.wrong = kinds[0].example, [1]

    def check(self, value, container, key):
        for kind in self.kinds:
            try:
                return kind.check(value, container, key)
            except SpecError:
                continue
        raise container.error(key, f"expected {self.words}, received {describe(value)}")

    def schema(self) -> dict:
        return {"anyOf": [kind.schema() for kind in self.kinds]}


class NameMap(Type):
    """A mapping of names the spec chooses to values of one kind."""

    def __init__(self, value: Type, words: str):
        self.value, self.words = value, words
        self.example, self.wrong = {"name": value.example}, value.example

    def check(self, value, container, key):
        if not isinstance(value, Mapping):
            raise container.error(key, f"expected {self.words}, received {describe(value)}")
        for name, item in value.items():
            value[name] = self.value.check(item, value, name)
        return value

    def schema(self) -> dict:
        return {"type": "object", "additionalProperties": self.value.schema()}


def split_call(value, container, key, words: str):
    """`name` or `{name: {kwargs}}` -> (name, kwargs Mapping): how Keras objects are named."""
    if isinstance(value, str) and value:
        return value, Mapping(location=container.where(key)[0], path=container.child_path(key))
    if isinstance(value, Mapping) and len(value) == 1:
        (name, kwargs), = value.items()
        if kwargs is None:
            kwargs = Mapping(location=value.key_locations[name], path=value.child_path(name))
            value.set(name, kwargs, value.key_locations[name], value.key_locations[name])
        if not isinstance(kwargs, Mapping):
            raise value.error(name, f"expected the keyword arguments of '{name}' as a mapping, "
                                    f"received {describe(kwargs)}")
        return name, kwargs
    raise container.error(key, f"expected {words}, received {describe(value)}")


def name_location(value, container, key):
    """Where the name of a `name` / `{name: kwargs}` value is written."""
    if isinstance(value, Mapping):
        return value.key_locations[next(iter(value))]
    return container.where(key)[0]


class KerasObject(Type):
    """A Keras object by name, `adam`, or by name with its keyword arguments,
    `{sgd: {learning_rate: 0.1}}`: the name and the arguments are checked against Keras
    (zoo.names) without making the object, which must wait for the run's strategy."""

    def __init__(self, kind: str, word: str, example: str, supplied=()):
        self.kind, self.supplied = kind, supplied
        article = "an" if word[0] in "aeiou" else "a"
        self.words = (f"{article} {word}: a name, or a mapping of one name to its keyword "
                      "arguments")
        self.example, self.wrong = example, 5

    def check(self, value, container, key):
        from zoo import names  # deferred: Keras takes seconds to import, `zoo schema` needs none

        name, kwargs = split_call(value, container, key, self.words)
        try:
            names.checked_class(self.kind, name, plain(kwargs), self.supplied)
        except names.Refused as refused:
            raise refused_error(refused, value, container, key, kwargs) from None
        return value

    def schema(self) -> dict:
        return {"anyOf": [{"type": "string"}, {
            "type": "object", "minProperties": 1, "maxProperties": 1,
            "additionalProperties": {"type": ["object", "null"]}}]}


class KerasName(Type):
    """A Keras object by its name alone (an activation)."""

    def __init__(self, kind: str, words: str, example: str):
        self.kind, self.words, self.example, self.wrong = kind, words, example, 5

    def check(self, value, container, key):
        from zoo import names

        if not isinstance(value, str):
            raise container.error(key, f"expected {self.words}, received {describe(value)}")
        try:
            names.resolve(self.kind, value)
        except names.Refused as refused:
            raise container.error(key, str(refused)) from None
        return value

    def schema(self) -> dict:
        return {"type": "string"}


class Structure(Type):
    """A value that another module checks inside (the model's graph, in zoo.graph); here only
    whether it is a mapping or a (non-empty) list."""

    def __init__(self, container: type, words: str, schema: dict | None = None):
        self.container, self.words, self._schema = container, words, schema or {}
        self.example = Sequence() if container is Sequence else Mapping()
        self.wrong = 5

    def check(self, value, container, key):
        if not isinstance(value, self.container) or (self.container is Sequence and not value):
            raise container.error(key, f"expected {self.words}, received {describe(value)}")
        return value

    def schema(self) -> dict:
        return self._schema


def refused_error(refused, value, container, key, kwargs: Mapping) -> SpecError:
    """zoo.names' complaint, located: at the argument it names (its key when the argument is
    unknown, its value otherwise), else at the object's name."""
    if refused.argument in kwargs:
        if refused.unknown:
            return kwargs.key_error(refused.argument, str(refused))
        return kwargs.error(refused.argument, str(refused))
    return SpecError(name_location(value, container, key), container.child_path(key),
                     str(refused))


# --- names that depend on the run: checked again once the model is built (zoo.preflight) ------


class Monitor(Text):
    """A figure the run logs each epoch (loss, val_accuracy, ...)."""

    def __init__(self):
        super().__init__("val_loss", "the name of a figure the run logs each epoch, e.g. "
                                     "val_loss or val_accuracy")


class LayerName(Text):
    def __init__(self):
        super().__init__("predictions", "the name of a layer of the model")


class LayerPatterns(ListOf):
    def __init__(self):
        super().__init__(Text("hidden*"), "a non-empty list of layer names or patterns "
                                          "(hidden*)", min_items=1)

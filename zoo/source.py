"""YAML text -> plain Python values that remember where each one came from.

Mappings and lists are returned as `Mapping` and `Sequence`, thin subclasses of
dict and list that carry the `Location` of every item and the dotted path of
the container, so any later step can say `file:line:col: model.layers[3]: ...`.
Scalars stay plain Python values; their location lives in their container.

Loading is safe by construction: only YAML's core types are built (no Python
tags, nothing executed), duplicate keys are errors, aliases are counted so an
alias bomb ("billion laughs") is refused, and nesting depth is bounded.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

MAX_DEPTH = 64  # far deeper than any real spec, far below Python's recursion limit
MAX_NODES = 20_000  # values after expanding aliases: 50 times the biggest spec (resnet.yaml, 393)
MAX_BYTES = 2_000_000
MAX_INTEGER = 2**63 - 1  # TensorFlow's int64; Python's str() of an int fails past 4,300 digits


class SpecLoader(yaml.SafeLoader):
    """YAML's safe loader, reading numbers as YAML 1.2 does: `1e-3` is the number 0.001 and
    `0o17` the octal 15 (YAML 1.1, which PyYAML follows, reads both as strings: its floats
    need a dot, `1.0e-3`)."""


SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"), list("-+0123456789"))
SpecLoader.add_implicit_resolver("tag:yaml.org,2002:int", re.compile(r"^0o[0-7]+$"), ["0"])


@dataclass(frozen=True)
class Location:
    file: str
    line: int  # 1-based
    column: int  # 1-based

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class SpecError(ValueError):
    """A problem with a spec, located: `file:line:col: dotted.path: message`."""

    def __init__(self, location: Location | None, path: str, message: str):
        self.location = location
        self.path = path
        self.message = message
        where = f"{location}: " if location else ""
        super().__init__(f"{where}{path + ': ' if path else ''}{message}")


def suggest(name: object, candidates) -> str:
    """' (did you mean 'x' or 'y'?)' for the closest candidates, or ''."""
    close = difflib.get_close_matches(str(name), [str(c) for c in candidates], n=3, cutoff=0.6)
    if not close:
        return ""
    return " (did you mean " + " or ".join(f"'{c}'" for c in close) + "?)"


def normalize_name(name: str) -> str:
    """How names of Keras things are compared: `conv2d`, `Conv2D` and `conv_2d` are one."""
    return name.replace("_", "").lower()


def describe(value: object) -> str:
    """How a received value is shown in messages: its type and a short repr."""
    kind = {dict: "a mapping", list: "a list", str: "the string", bool: "the boolean",
            int: "the integer", float: "the number", type(None): "nothing (null)"}
    for cls, word in kind.items():
        if isinstance(value, cls):
            if cls in (dict, list, type(None)):
                return word
            text = repr(value)
            return f"{word} {text if len(text) <= 60 else text[:57] + '...'}"
    return type(value).__name__


class Mapping(dict):
    """A dict that knows its own location and the location of each key/value."""

    def __init__(self, items=(), *, location: Location | None = None, path: str = ""):
        super().__init__(items)
        self.location = location
        self.path = path
        self.key_locations: dict = {}
        self.value_locations: dict = {}

    def child_path(self, key) -> str:
        return f"{self.path}.{key}" if self.path else str(key)

    def where(self, key) -> tuple[Location | None, str]:
        return self.value_locations.get(key, self.location), self.child_path(key)

    def error(self, key, message: str) -> SpecError:
        """An error about the value under `key`."""
        return SpecError(*self.where(key), message)

    def key_error(self, key, message: str) -> SpecError:
        """An error about the key itself (e.g. an unknown key)."""
        return SpecError(self.key_locations.get(key, self.location), self.child_path(key), message)

    def set(self, key, value, location: Location | None, key_location: Location | None = None):
        self[key] = value
        self.value_locations[key] = location
        self.key_locations[key] = key_location or location


class Sequence(list):
    """A list that knows its own location and the location of each item."""

    def __init__(self, items=(), *, location: Location | None = None, path: str = ""):
        super().__init__(items)
        self.location = location
        self.path = path
        self.item_locations: list = [location] * len(self)

    def child_path(self, index: int) -> str:
        return f"{self.path}[{index}]"

    def where(self, index: int) -> tuple[Location | None, str]:
        return self.item_locations[index], self.child_path(index)

    def error(self, index: int, message: str) -> SpecError:
        return SpecError(*self.where(index), message)

    def append_located(self, value, location: Location | None):
        self.append(value)
        self.item_locations.append(location)


def dotted_parts(dotted: str) -> list:
    """The keys and indexes of a dotted path: 'train.stages[1].epochs' -> ['train', 'stages',
    1, 'epochs']."""
    return [int(part[1:-1]) if part.startswith("[") else part
            for part in re.findall(r"[\w-]+|\[\d+\]", dotted)]


def repath(value, path: str):
    """Give a located container (and everything inside it) a new dotted path."""
    if isinstance(value, Mapping):
        value.path = path
        for key, item in value.items():
            repath(item, value.child_path(key))
    elif isinstance(value, Sequence):
        value.path = path
        for index, item in enumerate(value):
            repath(item, value.child_path(index))
    return value


def _mark_location(file: str, mark) -> Location:
    return Location(file, mark.line + 1, mark.column + 1)


def parse_yaml(text: str, file: str, path: str = ""):
    """Parse YAML text into located values. Raises SpecError for anything wrong."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise SpecError(Location(file, 1, 1), path,
                        f"the file is larger than {MAX_BYTES:,} bytes; a spec is a short text")
    try:
        loader = SpecLoader(text)  # refuses control characters already
    except yaml.reader.ReaderError as exc:
        raise SpecError(_position_location(text, exc.position, file), path,
                        f"this is not valid YAML: the control character U+{exc.character:04X} is "
                        "not allowed; remove it, or write it as the escape "
                        f"\"\\u{exc.character:04x}\" inside a double-quoted string") from None
    try:
        _check_nesting(text, file, path)  # before composing, which recurses per level
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        location = _mark_location(file, mark) if mark else Location(file, 1, 1)
        problem = " ".join(filter(None, [exc.context, exc.problem]))
        raise SpecError(location, path, f"this is not valid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise SpecError(Location(file, 1, 1), path, f"this is not valid YAML: {exc}") from None
    finally:
        loader.dispose()
    if node is None:
        return None
    return _Converter(loader, file).convert(node, path, depth=0)


def _position_location(text: str, position: int, file: str) -> Location:
    line_start = text.rfind("\n", 0, position) + 1
    return Location(file, text.count("\n", 0, position) + 1, position - line_start + 1)


def _check_nesting(text: str, file: str, path: str) -> None:
    depth = 0
    for event in yaml.parse(text, Loader=SpecLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise SpecError(_mark_location(file, event.start_mark), path,
                                f"nesting is deeper than {MAX_DEPTH} levels")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


class _Converter:
    """Walks composed YAML nodes; counts them, since aliases can multiply a small file."""

    def __init__(self, loader, file: str):
        self.loader = loader
        self.file = file
        self.count = 0

    def convert(self, node, path: str, depth: int):
        location = _mark_location(self.file, node.start_mark)
        self.count += 1
        if self.count > MAX_NODES:
            raise SpecError(location, path,
                            f"the document expands to more than {MAX_NODES:,} values "
                            "(aliases included): refusing what looks like an alias bomb")
        if depth > MAX_DEPTH:
            shown = path if len(path) < 80 else path[:77] + "..."
            raise SpecError(location, shown, f"nesting is deeper than {MAX_DEPTH} levels")
        if not isinstance(node, yaml.ScalarNode) and node.tag not in _CONTAINER_TAGS:
            raise SpecError(location, path, _refused_tag(node.tag))
        if isinstance(node, yaml.MappingNode):
            return self.mapping(node, location, path, depth)
        if isinstance(node, yaml.SequenceNode):
            sequence = Sequence(location=location, path=path)
            for index, item in enumerate(node.value):
                value = self.convert(item, f"{path}[{index}]", depth + 1)
                sequence.append_located(value, _mark_location(self.file, item.start_mark))
            return sequence
        return _scalar(node, self.loader, location, path)

    def mapping(self, node, location: Location, path: str, depth: int) -> Mapping:
        self.loader.flatten_mapping(node)  # resolves YAML merge keys (<<)
        mapping = Mapping(location=location, path=path)
        for key_node, value_node in node.value:
            key_location = _mark_location(self.file, key_node.start_mark)
            if not isinstance(key_node, yaml.ScalarNode):
                raise SpecError(key_location, path,
                                "a key must be a plain name, not a list or mapping")
            key = _scalar(key_node, self.loader, key_location, path)
            if key in mapping:
                first = mapping.key_locations[key]
                raise SpecError(key_location, mapping.child_path(key),
                                f"duplicate key '{key}' (first given at line {first.line})")
            value = self.convert(value_node, mapping.child_path(key), depth + 1)
            mapping.set(key, value, _mark_location(self.file, value_node.start_mark), key_location)
        return mapping


_CONTAINER_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")
_SCALAR_TAGS = tuple(f"tag:yaml.org,2002:{kind}"
                     for kind in ("str", "int", "float", "bool", "null"))


def _refused_tag(tag: str) -> str:
    tag = tag.replace("tag:yaml.org,2002:", "!!")  # as it was written in the file
    return (f"the tag '{tag}' is not allowed: a spec holds plain data (strings, numbers, "
            "booleans, null, lists, mappings) and nothing in it is ever executed")


def _scalar(node, loader, location: Location, path: str):
    if node.tag not in _SCALAR_TAGS:
        raise SpecError(location, path, _refused_tag(node.tag))
    too_long = node.tag.endswith(":int") and len(node.value) > 30  # before Python converts it
    value = None if too_long else loader.construct_object(node, deep=True)
    if too_long or (isinstance(value, int) and not isinstance(value, bool)
                    and abs(value) > MAX_INTEGER):
        raise SpecError(location, path, f"an integer of {len(node.value.lstrip('+-'))} digits is "
                                        "larger than any size, count or seed a spec can use "
                                        f"(at most {MAX_INTEGER:,})")
    return value


def load_yaml_file(file: Path | str, display: str | None = None, path: str = ""):
    """Read and parse one YAML file; `display` is how the file is named in errors."""
    display = display or str(file)
    try:
        text = Path(file).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(None, path, f"{display}: no such spec file") from None
    except IsADirectoryError:
        raise SpecError(None, path, f"{display}: is a directory, not a spec file") from None
    except UnicodeDecodeError as exc:
        raise SpecError(Location(display, 1, 1), path,
                        f"the file is not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise SpecError(None, path, f"{display}: cannot read: {exc.strerror}") from None
    return parse_yaml(text, display, path)


def plain(value):
    """Strip locations: Mapping/Sequence -> dict/list, recursively."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value

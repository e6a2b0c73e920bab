"""One strict loader for every YAML file a person gives tre (job specs, project
requests, dataset descriptors).

PyYAML's safe loader reads YAML 1.1, which surprises people: `on`, `yes` and `no` are
booleans, `2:00` is 120 (base 60), a key given twice silently keeps the last value (so
a second `filter:` drops the first), keys can be numbers or null, and deep nesting
ends in a RecursionError. Here:

- the bytes must be UTF-8 text (a UTF-8 byte-order mark is allowed); Latin-1 or
  UTF-16 files are refused with the fix, and so is a control character YAML forbids;
- at most 1 MiB, and nesting at most 64 levels deep;
- YAML 1.2 core scalars: only `true`/`false` are booleans, no base 60, no `on`/`yes`,
  and dates stay text for the field that reads them (so `2027-06-31` is refused there,
  by name, rather than crashing the parser);
- every mapping key is a string, and none is given twice;
- an explicit tag the value does not fit (`!!int x`, `!!float` alone) is a refusal
  naming the line, never PyYAML's own ValueError or IndexError (property-tested:
  tests/tre/test_yamlfile_properties.py).

    ValueError
    └── YamlError    the text is not YAML tre accepts; the message says where and why
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode
from yaml.reader import ReaderError

__all__ = ["MAX_BYTES", "MAX_DEPTH", "YamlError", "decode", "load"]

MAX_BYTES = 1 << 20
MAX_DEPTH = 64


class YamlError(ValueError):
    """Text that is not YAML tre accepts (the message says where and how to fix it)."""


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core scalars, string keys only, no duplicate keys and a
    depth limit."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise YamlError(
                    f"line {mark.line + 1}: nested more than {MAX_DEPTH} levels deep",
                    # no spec, request or descriptor needs this: it is a mistake or an attack
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except YamlError:
            raise
        except (ValueError, TypeError, LookupError, AttributeError, ArithmeticError):
            # An explicit tag PyYAML cannot apply (`!!int x`, `!!timestamp 2027-02-30`,
            # `!!bool maybe`, `!!float` with no value): its constructors raise these
            # (IndexError, KeyError, ...), not a YAMLError.
            tag = node.tag.removeprefix("tag:yaml.org,2002:")
            raise YamlError(
                f"line {node.start_mark.line + 1}: {_shown(node)} cannot be read as !!{tag}; "
                "leave the tag out (tre reads each field as the type it needs)"
            ) from None

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        if not isinstance(node, MappingNode):  # a `!!map` tag on a list or a scalar
            return super().construct_mapping(node, deep=deep)  # ConstructorError, with a mark
        seen: dict[str, int] = {}
        for key_node, _ in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, ScalarNode) or key_node.tag != "tag:yaml.org,2002:str":
                raise YamlError(
                    f"line {line}: a key must be a name (text), not {_shown(key_node)}; "
                    "quote it if it is meant as text"
                )
            if key_node.value in seen:
                raise YamlError(
                    f"line {line}: {key_node.value!r} is given twice (first on line "
                    f"{seen[key_node.value]}); give it once (a list holds several values)"
                )
            seen[key_node.value] = line
        return super().construct_mapping(node, deep=deep)


def _shown(node: Node) -> str:
    """A node as a message quotes it: a scalar's text, else what kind of thing it is."""
    if isinstance(node, ScalarNode):
        return repr(node.value)
    return "a mapping" if isinstance(node, MappingNode) else "a list"


# YAML 1.2 core schema instead of YAML 1.1's booleans, integers and floats.
_Loader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if not tag.endswith(("bool", "int", "float", "timestamp"))
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
for _tag, _pattern, _first in (
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    (
        "float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+.0123456789",
    ),
):
    _Loader.add_implicit_resolver(f"tag:yaml.org,2002:{_tag}", re.compile(_pattern), list(_first))


def _construct_int(loader: yaml.SafeLoader, node: Node) -> int:
    text = str(loader.construct_scalar(node))  # type: ignore[arg-type]
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text)  # never base 60, never a leading-zero octal


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def decode(data: bytes, what: str) -> str:
    """`data` as text: UTF-8 (with or without a byte-order mark), else YamlError."""
    if len(data) > MAX_BYTES:
        raise YamlError(f"{what} is {len(data):,} bytes; the most tre reads is {MAX_BYTES:,}")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in data[:4096]:
        raise YamlError(f"{what} is UTF-16 (or binary) text; save it as UTF-8")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise YamlError(
            f"{what} is not UTF-8 text (byte {exc.start + 1} cannot be read; Latin-1 or "
            "Windows-1252, perhaps): save it as UTF-8"
        ) from None


def load(text: str | bytes, what: str = "the file") -> Any:
    """Parse one YAML document strictly; YamlError naming the line and the problem."""
    if isinstance(text, bytes):
        text = decode(text, what)
    elif len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise YamlError(f"{what} is over {MAX_BYTES:,} bytes; the most tre reads is that")
    loader: _Loader | None = None
    try:
        loader = _Loader(text)  # reads the whole text first: a control character stops it
        return loader.get_single_data()
    except YamlError as exc:  # raised by _Loader, which does not know the file's name
        raise YamlError(f"{what}: {exc}") from None
    except ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        raise YamlError(
            f"{what} is not valid YAML: line {line}: it contains the character "
            f"U+{exc.character:04X} (a control character or a non-character), which a YAML "
            "file may not hold; remove it"
        ) from None
    except (yaml.MarkedYAMLError, ConstructorError) as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise YamlError(f"{what} is not valid YAML: {where}{exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise YamlError(f"{what} is not valid YAML: {str(exc).splitlines()[0]}") from None
    except RecursionError:
        raise YamlError(f"{what} is nested too deeply") from None
    finally:
        if loader is not None:
            loader.dispose()

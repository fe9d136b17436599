"""Config files read safely: plain YAML only, duplicate keys refused, every problem naming the file and line."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from brandsteps.config.errors import ConfigError, format_validation_error


class _UniqueKeyLoader(yaml.CSafeLoader if hasattr(yaml, "CSafeLoader") else yaml.SafeLoader):  # type: ignore[misc]
    """A safe loader (C parser when available) that rejects duplicate mapping keys."""


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    # Every key of a mapping is checked before any of its values is built: of two duplicates, the
    # outer mapping's is the one reported.
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            known = key in seen
        except TypeError:  # a list or mapping as a key: PyYAML's own wording, not a traceback
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark, "found unhashable key", key_node.start_mark
            ) from None
        if known:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)  # type: ignore[no-any-return]


def _construct_timestamp_or_text(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    # PyYAML raises a bare ValueError for 2026-02-30; as text it reaches the field's own check.
    try:
        return yaml.constructor.SafeConstructor.construct_yaml_timestamp(loader, node)
    except ValueError:
        return loader.construct_scalar(node)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)
_UniqueKeyLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp_or_text)
_YAML_KINDS = {
    "list": "a list",
    "str": "a single value",
    "int": "a number",
    "float": "a number",
    "bool": "true or false",
}
_READ_SIZE = 1 << 16


def read_bytes(path: Path | str, display: str) -> bytes:
    """The file's bytes; a file that cannot be read is a ConfigError naming it and why."""
    # os.open/os.read: half the time of open().read() per small file (no buffered file object)
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            chunks = [os.read(fd, _READ_SIZE)]
            while chunks[-1]:  # until end of file: a short read is not one everywhere (FUSE, pipes)
                chunks.append(os.read(fd, _READ_SIZE))
            return chunks[0] if len(chunks) == 2 else b"".join(chunks)
        finally:
            os.close(fd)
    except OSError as exc:
        raise ConfigError([f"{display}: cannot read the file ({exc.strerror})"]) from None


def _decoded(raw: bytes, display: str) -> str:
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise ConfigError([f"{display}: UTF-16 text; save the file as UTF-8"])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{display}: not UTF-8 text (byte {exc.start}); save the file as UTF-8"]) from None
    if not text.strip():
        raise ConfigError([f"{display}: the file is empty"])
    return text


# the word, not its letters: "unconstructable" is no reason to mention tabs
_MENTIONS_TABS = re.compile(r"\btabs?\b", re.IGNORECASE)


def _marked_problem(exc: yaml.MarkedYAMLError, text: str) -> str:
    """'invalid YAML (line L, column C): reason', with a hint for the usual causes (tabs, tags)."""
    mark = exc.problem_mark or exc.context_mark
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
    problem = exc.problem or exc.context or "invalid YAML"
    line = text.splitlines()[mark.line] if mark and mark.line < len(text.splitlines()) else ""
    if "\t" in line or _MENTIONS_TABS.search(problem):
        problem += "; indent with spaces, not tabs"
    if problem.startswith("could not determine a constructor for the tag"):
        tag = problem.rpartition(" ")[2].replace("tag:yaml.org,2002:", "!!")
        problem = f"tag {tag} is not allowed (configs are plain YAML: no tags, nothing is executed)"
    return f"invalid YAML{where}: {problem}"


def parse_yaml(raw: bytes, display: str) -> Any:
    """Parse one YAML document given as bytes; raise ConfigError naming the file, line and reason."""
    text = _decoded(raw, display)
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        raise ConfigError([f"{display}: {_marked_problem(exc, text)}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{display}: invalid YAML: {exc}"]) from None


def read_yaml(path: Path, display: str) -> Any:
    """Parse one YAML file safely; raise ConfigError naming the file, line and reason."""
    return parse_yaml(read_bytes(path, display), display)


def display_path(path: Path, root: Path) -> str:
    """How messages name a file: relative to the folder holding configs/ (configs/brands/x.yaml)."""
    try:
        return str(path.relative_to(root.parent))
    except ValueError:
        return str(path)


def validated(model: type[BaseModel], data: Any, display: str) -> Any:
    """A parsed document as the model; ConfigError when it is not a mapping or does not validate."""
    if data is None:
        raise ConfigError([f"{display}: the file has no settings (only comments or blank lines)"])
    if not isinstance(data, dict):
        kind = _YAML_KINDS.get(type(data).__name__, "something else")
        raise ConfigError([f"{display}: must be a mapping of keys to values, not {kind}"])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(display, exc)) from None


def load_model(model: type[BaseModel], path: Path, display: str) -> Any:
    """One YAML file read and validated as the model."""
    return validated(model, read_yaml(path, display), display)

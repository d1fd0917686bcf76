"""Reading a configuration file (YAML, a flat mapping of flag names to values) safely, and
checking each value against its argparse flag: the one reader of ``--config`` for training
(``options/config.py``) and for ``python -m data.check``.

The file is bounded before it is parsed (size, nesting, number length, no aliases), so a
hostile file is one ``ConfigError`` line naming it, never gigabytes of expansion.
"""

import argparse
import re
from pathlib import Path
from typing import Any

import yaml

from common.cli import int_list
from common.errors import UserError


class ConfigError(UserError, ValueError):
    """A configuration that cannot be used: unknown key, wrong type, impossible value."""


class UnknownKey(ConfigError):
    """A key of a config file that is no flag of the script reading it."""


# Largest config file read: a run's every flag takes a few kilobytes (and YAML parses some
# 30 KB a second, so this bounds the time too).
MAX_CONFIG_BYTES = 64 << 10
# Deepest nesting in a config: a flag's value is at most a list inside the top mapping.
MAX_CONFIG_DEPTH = 32
# Longest whole number in a config: sizes and counts have a few digits.
MAX_CONFIG_DIGITS = 30


class _ConfigLoader(yaml.SafeLoader):
    """YAML's safe loader without aliases (``*name``: a 400-byte file of nested aliases
    expands to gigabytes, and a flag's value never needs one) and with whole numbers of at
    most MAX_CONFIG_DIGITS digits."""

    depth = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise ConfigError(f"line {mark.line + 1}: aliases ('*name') are not read in a "
                              f"config file; write the value itself")
        self.depth += 1
        if self.depth > MAX_CONFIG_DEPTH:
            mark = self.peek_event().start_mark
            raise ConfigError(f"line {mark.line + 1}: nested more than {MAX_CONFIG_DEPTH} "
                              f"deep; nested too deep to be a config file")
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key in (key for key, _ in node.value if isinstance(key, yaml.ScalarNode)):
            if key.value in seen:
                raise ConfigError(f"line {key.start_mark.line + 1}: key '{key.value}' again")
            seen.add(key.value)
        return super().construct_mapping(node, deep)

    def construct_yaml_int(self, node):
        if len(node.value.lstrip("+-")) > MAX_CONFIG_DIGITS:
            raise ConfigError(f"line {node.start_mark.line + 1}: a number of "
                              f"{len(node.value)} digits")
        return super().construct_yaml_int(node)


_ConfigLoader.add_constructor("tag:yaml.org,2002:int", _ConfigLoader.construct_yaml_int)


def load_yaml(file: Path) -> Any:
    """The document of the YAML file ``file``: a regular file of at most MAX_CONFIG_BYTES,
    UTF-8 text, no aliases, nested at most as deep as Python's recursion allows; one
    ConfigError line naming the file otherwise."""
    try:
        if file.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError(f"more than the {MAX_CONFIG_BYTES >> 10} KiB a config file may take")
        with open(file, "rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
        text = data.decode("utf-8-sig")
        return yaml.load(text, Loader=_ConfigLoader)
    except ConfigError as error:
        raise ConfigError(f"--config: {file}: {error}") from None
    except OSError as error:
        raise ConfigError(f"--config: {file}: cannot read ({error.strerror or error})") \
            from None
    except UnicodeDecodeError as error:
        line = data[:error.start].count(b"\n") + 1
        raise ConfigError(f"--config: {file}, line {line}: not UTF-8 text (byte "
                          f"0x{data[error.start]:02x})") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"--config: {file} is not valid YAML: "
                          f"{prefix(' '.join(str(error).split()), 300)}") \
            from None
    except RecursionError:
        raise ConfigError(f"--config: {file}: nested too deep to be a config file") from None


def prefix(value: Any, limit: int = 60) -> str:
    """``value``'s text cut to ``limit`` characters, for messages: a bad value may be long."""
    text = str(value)
    return text if len(text) <= limit else text[:limit] + "..."


def coerce(action: argparse.Action, value: Any, where: str) -> Any:
    """Check a YAML value against its flag and convert it to what argparse would produce."""
    def wrong(expected: str) -> ConfigError:
        return ConfigError(f"{where}: expected {expected}, got {prefix(repr(value))} "
                           f"({type(value).__name__})")

    is_switch = isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction,
                                    argparse.BooleanOptionalAction))
    if is_switch:   # None: a switch whose default is None (unset), as written config.yaml has it
        if not isinstance(value, bool) and not (value is None and action.default is None):
            raise wrong("true or false")
        return value
    if value is None:
        if action.default is None:
            return None
        raise wrong(f"a value (the flag has default {action.default!r})")
    if action.type is int_list:
        if isinstance(value, str):
            try:
                value = int_list(value)
            except (argparse.ArgumentTypeError, ValueError) as error:
                raise ConfigError(f"{where}: {prefix(error, 120)}") from None
        elif not (isinstance(value, list) and value
                  and all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
            raise wrong("a list of integers")
        return list(value)
    if action.type is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong("an integer")
    elif action.type is float:
        if isinstance(value, str) and re.fullmatch(r"[-+]?[0-9]+[eE][-+]?[0-9]+", value):
            value = float(value)   # YAML 1.1 reads an exponent without a point (1e-3) as text
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise wrong("a number")
        value = float(value)
    elif action.type in (None, str):
        if not isinstance(value, str):
            raise wrong("a string")
    elif action.type is not None:
        try:
            value = action.type(value)
        except (TypeError, ValueError, argparse.ArgumentTypeError) as error:
            raise ConfigError(f"{where}: {error}") from None
    if action.choices is not None and value not in action.choices:
        raise ConfigError(f"{where}: {prefix(repr(value))} is not one of {list(action.choices)}")
    return value

"""YAML as calibgate's own files read it: safe, and a key given twice is an error, not the last one silently winning.

Policies and ``calibgate.yaml`` both read through :func:`load_unique`.
"""

from __future__ import annotations

from typing import Any

import yaml


class DuplicateKey(yaml.constructor.ConstructorError):
    """A mapping names one key twice."""


class UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a mapping naming one key twice (PyYAML keeps the last silently)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":  # '<<' merges may be overridden on purpose
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    if key in seen:
                        raise DuplicateKey(
                            None, None, f"key '{key}' appears twice (first on line {seen[key]}); YAML would keep only "
                            "the last one and drop the first silently", key_node.start_mark,
                        )
                    seen[key] = key_node.start_mark.line + 1
                except TypeError:  # an unhashable key: the base class reports it
                    continue
        return super().construct_mapping(node, deep=deep)


def load_unique(text: str) -> Any:
    """``yaml.safe_load`` that raises :class:`DuplicateKey` (a YAMLError) for a key given twice in one mapping."""
    return yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass

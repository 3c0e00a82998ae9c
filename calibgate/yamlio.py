"""YAML as calibgate's own files read it: safe, and a key given twice is an error, not the last one silently winning.

Policies and ``calibgate.yaml`` both read through :func:`load_unique`.

Aliases are bounded too: a few lines of anchors that refer to anchors (a
"billion laughs") compose to a small graph that expands to billions of nodes
once anything walks it as a tree. pydantic did, rendering its error, for a
minute and several GB (then MemoryError, exit 3, or an abort): a pull request
controls both files, so that was a denial of service on the CI runner. The
document's expanded size is counted on the composed graph, before anything is
constructed, and a document past :data:`MAX_EXPANDED_NODES` is refused.
"""

from __future__ import annotations

from typing import Any

import yaml


MAX_EXPANDED_NODES = 100_000  # a policy is a few hundred nodes


class DuplicateKey(yaml.constructor.ConstructorError):
    """A mapping names one key twice."""


class TooLarge(yaml.constructor.ConstructorError):
    """The document expands (through aliases) past :data:`MAX_EXPANDED_NODES` nodes."""


class UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a mapping naming one key twice (PyYAML keeps the last silently)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            merge_line = None
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":  # keys merged by '<<' may be overridden on purpose
                    if merge_line is not None:  # but a second '<<' replaces the first: PyYAML keeps the last silently
                        raise DuplicateKey(
                            None, None, f"'<<' appears twice (first on line {merge_line}); YAML would keep only the last "
                            "merge and drop the first silently: merge a list instead, '<<: [*first, *second]'",
                            key_node.start_mark,
                        )
                    merge_line = key_node.start_mark.line + 1
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


def describe_yaml_error(exc: yaml.YAMLError, text: str) -> tuple[int | None, str]:
    """The 1-based line and the one-line problem of a YAML error: a parser's ``problem``, or for a character the reader
    refuses (a NUL, a control character) its first line, placed by its position (PyYAML's text spans two lines)."""
    mark = getattr(exc, "problem_mark", None)
    line = mark.line + 1 if mark is not None else None
    if isinstance(exc, yaml.reader.ReaderError) and isinstance(exc.position, int):
        line = text.count("\n", 0, exc.position) + 1
    problem = getattr(exc, "problem", None) or (str(exc).splitlines() or [type(exc).__name__])[0]
    return line, problem


def load_unique(text: str) -> Any:
    """``yaml.safe_load`` that raises :class:`DuplicateKey` (a YAMLError) for a key given twice in one mapping, and
    :class:`TooLarge` for a document whose aliases expand it past :data:`MAX_EXPANDED_NODES` nodes."""
    loader = UniqueKeyLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expanded_size(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _check_expanded_size(root) -> None:
    """Count the nodes ``root`` expands to (aliases are shared nodes: memoised, so the count costs the graph's size).

    A node is sized only after all its children, whichever path reached them first: sizing in the order nodes were
    first seen let an alias met early through a short branch count as nothing under the anchors that multiply it
    (a billion-node document passed). An alias inside its own anchor expands without end.
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()  # entered, children not all sized yet: meeting one again is a cycle
    stack = [(root, False)]
    while stack:  # post-order without recursion: a deep document must not overflow the stack either
        node, children_done = stack.pop()
        key = id(node)
        if key in sizes:
            continue
        if children_done:
            open_nodes.discard(key)
            total = 1 + sum(sizes[id(child)] for child in _children(node))
            if total > MAX_EXPANDED_NODES:
                raise TooLarge(None, None, f"the document expands to more than {MAX_EXPANDED_NODES:,} nodes through "
                               "its aliases (&anchor / *alias): not a policy or config file", node.start_mark)
            sizes[key] = total
            continue
        if key in open_nodes:
            raise TooLarge(None, None, "an alias refers to a node that contains it (&anchor / *alias), so the document "
                           "expands without end: not a policy or config file", node.start_mark)
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in sizes)


def _children(node) -> list:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []

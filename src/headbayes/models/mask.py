"""Leaf naming, selectors -> bool mask pytree, and the leaf table.

A leaf is named by its dotted path (`output_layer.weight`, `hidden_layers.0.bias`). A selector
matches a leaf by exact path, by subtree prefix (`output_layer`), or by glob
(`hidden_layers.*.bias`). The mask is a pytree of Python bools with the structure of the
*array* leaves of the model; it is static, never traced.
"""

import difflib
import fnmatch
import math

from headbayes.core.errors import ConfigError

__all__ = ["node_at", "leaf_path", "named_leaves", "selector_matches", "select", "build_mask",
           "leaf_table", "assign_groups", "group_owners"]


def leaf_path(key_path) -> str:
    """Dotted name of a jax key path: attributes and sequence indices joined by '.'."""
    parts = []
    for key in key_path:
        for attr in ("name", "idx", "key"):
            if hasattr(key, attr):
                parts.append(str(getattr(key, attr)))
                break
    return ".".join(parts)


def named_leaves(tree) -> dict:
    """{dotted path: leaf} for every non-None leaf, in tree order."""
    import jax

    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    return {leaf_path(path): leaf for path, leaf in flat}


def selector_matches(selector: str, path: str) -> bool:
    """Exact path, subtree prefix, or glob."""
    return (path == selector or path.startswith(selector + ".")
            or fnmatch.fnmatchcase(path, selector))


def _unmatched_error(key: str, selector: str, paths: list[str]) -> ConfigError:
    prefixes = sorted({p.rsplit(".", 1)[0] for p in paths} | set(paths))
    close = difflib.get_close_matches(selector, prefixes, n=1, cutoff=0.0)
    hint = f"; closest: '{close[0]}'" if close else ""
    if selector == "output_layer" and paths:  # the shipped `head` mask on another model
        last = paths[-1].rsplit(".", 1)[0]
        hint = (f"; 'output_layer' (mask=head) is the built-in models' last layer, this "
                f"model's is '{last}': {key}=[{last}]")
    return ConfigError(f"`{key}` selector '{selector}' matches no parameter{hint}. "
                       f"Available paths: {', '.join(paths)}")


def select(paths: list[str], include: list[str], exclude: list[str],
           key: str = "mask") -> dict:
    """{path: sampled?}: True where a path matches some `include` and no `exclude` selector.

    Raises ConfigError if a selector matches nothing or the selection is empty (`key` names
    the config section in the message).
    """
    for where, selectors in ((f"{key}.include", include), (f"{key}.exclude", exclude)):
        for selector in selectors:
            if not any(selector_matches(selector, p) for p in paths):
                raise _unmatched_error(where, selector, paths)
    chosen = {p: (any(selector_matches(s, p) for s in include)
                  and not any(selector_matches(s, p) for s in exclude)) for p in paths}
    if not any(chosen.values()):
        raise ConfigError(f"`{key}` selects no parameter: include={list(include)} minus "
                          f"exclude={list(exclude)} is empty. Available paths: {', '.join(paths)}")
    return chosen


def build_mask(params, include: list[str], exclude: list[str]):
    """Bool pytree with the structure of `params`; see `select`."""
    import jax

    chosen = select(list(named_leaves(params)), include, exclude)
    return jax.tree_util.tree_map_with_path(lambda path, _: chosen[leaf_path(path)], params)


def assign_groups(paths: list[str], sampled: dict, groups: dict) -> dict:
    """{sampled path: group name} for `mask.groups` ({name: config with include/exclude}):
    every sampled leaf in exactly one group, no group reaching a frozen leaf. {} without
    groups. Raises ConfigError naming the leaves at fault."""
    if not groups:
        return {}
    owner: dict = {}
    for name, group in groups.items():
        chosen = select(paths, group.include, group.exclude, key=f"mask.groups.{name}")
        for path in (p for p, flag in chosen.items() if flag):
            if not sampled[path]:
                raise ConfigError(f"`mask.groups.{name}` selects '{path}', which the mask "
                                  f"leaves frozen (mask.include/mask.exclude choose the "
                                  f"sampled leaves, the groups split them)")
            if path in owner:
                raise ConfigError(f"mask groups must be disjoint: '{path}' is in both "
                                  f"'{owner[path]}' and '{name}'")
            owner[path] = name
    missing = [p for p, flag in sampled.items() if flag and p not in owner]
    if missing:
        raise ConfigError(f"sampled leaves in no mask group: {', '.join(missing)}; add them "
                          f"to a group of mask.groups (or exclude them from the mask)")
    return owner


def group_owners(mask_cfg, paths: list[str]) -> dict:
    """{sampled path: group name} of a MaskConfig over the leaf `paths`: its selection split
    by its groups (`select` then `assign_groups`, both checked); {} without groups."""
    return assign_groups(paths, select(paths, mask_cfg.include, mask_cfg.exclude),
                         mask_cfg.groups)


def leaf_table(shapes: dict, sampled: dict, groups: dict | None = None) -> dict:
    """The mask.json content from {path: shape} and {path: sampled?}: every leaf, plus totals;
    with `groups` ({sampled path: group name}) each sampled leaf also names its group."""
    leaves = [{"path": p, "shape": list(shape), "size": int(math.prod(shape)),
               "sampled": bool(sampled[p]),
               **({"group": groups[p]} if groups and p in groups else {})}
              for p, shape in shapes.items()]
    return {
        "leaves": leaves,
        "total_size": sum(leaf["size"] for leaf in leaves),
        "sampled_size": sum(leaf["size"] for leaf in leaves if leaf["sampled"]),
        "total_leaves": len(leaves),
        "sampled_leaves": sum(leaf["sampled"] for leaf in leaves),
    }


def node_at(model, path: str):
    """The module at dotted `path` of `model` (attributes, and sequence indices as digits;
    None for an attribute it lacks)."""
    node = model
    for part in path.split("."):
        node = node[int(part)] if part.isdigit() else getattr(node, part, None)
    return node

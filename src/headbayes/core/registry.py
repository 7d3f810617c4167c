"""Name registries: one entry per option of a config group, owning its schema and checks.

An entry carries the option's config schema (a dataclass of exactly its keys, the key naming
the option first: `name`, or the prior's `family`),
its builder, a `check(options, run_config)` that raises ConfigError for values the option does
not allow, and a set of capabilities (`"minibatch"`, `"fitted"`, `"linear_gaussian"`, ...) that
the rest of the code asks about instead of comparing names. Name lists are `Registry.names()`,
never typed twice. A key that the chosen option does not have is refused with the option's
keys listed.
"""

import dataclasses
import difflib
import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Callable

from headbayes.core.checks import check_bool
from headbayes.core.errors import ConfigError

__all__ = ["Entry", "Registry", "discover", "registry_of"]

_BY_KIND: dict = {}  # kind -> Registry, filled as each registry is created


@dataclass(frozen=True)
class Entry:
    name: str
    schema: type
    build: Callable
    check: Callable | None = None
    caps: frozenset = field(default_factory=frozenset)
    extras: dict = field(default_factory=dict)  # kind-specific callables (hints, sizes, ...)

    def keys(self) -> list[str]:
        return [f.name for f in dataclasses.fields(self.schema)]


class Registry:
    """Options of the config group `kind` (e.g. "sampler"), by name, in registration order;
    `key` is the config key naming the option (`name`; the prior's is `family`)."""

    def __init__(self, kind: str, key: str = "name"):
        self.kind = kind
        self.key = key
        self._entries: dict[str, Entry] = {}
        _BY_KIND[kind] = self

    def register(self, name: str, schema: type, *, check: Callable | None = None,
                 caps=(), **extras) -> Callable:
        """Decorator: register the decorated builder as option `name`."""
        def add(build: Callable) -> Callable:
            self._entries[name] = Entry(name, schema, build, check, frozenset(caps), extras)
            return build

        return add

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def __getitem__(self, name: str) -> Entry:
        if not isinstance(name, str) or name not in self._entries:
            close = difflib.get_close_matches(str(name), self._entries, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ConfigError(f"`{self.kind}.{self.key}` must be one of "
                              f"{', '.join(self._entries)}, got {name!r}{hint}")
        return self._entries[name]

    def entry(self, options) -> Entry:
        """The entry of typed `options` (the one its `key` names)."""
        return self[getattr(options, self.key)]

    def all_keys(self) -> list[str]:
        """Every key some option has (for the unknown-key check before composition)."""
        return list(dict.fromkeys(k for e in self._entries.values() for k in e.keys()))

    def typed(self, values: dict, strict: bool = True):
        """`values` ({key: value}, with the `key` naming the option) as the chosen option's
        schema, types checked.

        strict: a key the option does not have is a ConfigError naming the option and its keys;
        otherwise (loading a saved run written by an older release) such keys are dropped."""
        from omegaconf import OmegaConf
        from omegaconf.errors import OmegaConfBaseException

        if dataclasses.is_dataclass(values):
            values = dataclasses.asdict(values)
        entry = self[values.get(self.key)]
        keys = entry.keys()
        extra = [k for k in values if k not in keys]
        if extra and strict:
            close = difflib.get_close_matches(extra[0], keys, n=1, cutoff=0.6)
            hint = f" (did you mean {self.kind}.{close[0]}?)" if close else ""
            raise ConfigError(f"{self.kind} '{entry.name}' has no key "
                              f"{', '.join(f'{self.kind}.{k}' for k in extra)}{hint}; its keys: "
                              f"{', '.join(keys)}")
        values = {k: v for k, v in values.items() if k in keys}
        for f in dataclasses.fields(entry.schema):
            if f.type in (bool, "bool") and f.name in values:
                check_bool(f"{self.kind}.{f.name}", values[f.name])
        try:
            merged = OmegaConf.merge(OmegaConf.structured(entry.schema), values)
            return OmegaConf.to_object(merged)
        except (OmegaConfBaseException, ValueError) as e:
            key = getattr(e, "full_key", None)
            where = f"`{self.kind}.{key}`" if key else f"{self.kind} '{entry.name}'"
            raise ConfigError(f"{where}: {str(e).splitlines()[0]}") from None


def registry_of(kind: str) -> Registry:
    """The registry of config group `kind`, for a lower layer that must ask a higher one's
    entries (a model's output size is its likelihood's `model_outputs`); the registry exists
    once its module is imported, as it is for any typed config."""
    return _BY_KIND[kind]


def discover(package: str) -> None:
    """Import every module of `package` (each registers its options when imported), so a new
    option is one new module plus its YAML file."""
    module = importlib.import_module(package)
    for info in pkgutil.iter_modules(module.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{package}.{info.name}")

"""One registry class for every extension point (payment gateways, statement formats, domain
systems, document sinks, identity providers, signature verifiers).

Built-in plugins register with `@registry.register`; installed packages through the entry-point
group `platforma.plugins`, whose objects are plugin classes that name their `kind`.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

ENTRY_POINT_GROUP = "platforma.plugins"
KINDS = ("PaymentGateway", "StatementFormat", "DomainSystem", "DocumentSink", "IdentityProvider", "SignatureVerifier",
         "SigningMethod")


class NoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    message: str


class Plugin:
    """Base of every plugin: a stable id, a human name, typed options and a self-check."""

    #: never changes once published: stored in data and configuration
    id: ClassVar[str]
    #: shown to administrators (Polish)
    name: ClassVar[str]
    kind: ClassVar[str]
    Options: ClassVar[type[BaseModel]] = NoOptions

    def __init__(self, options: BaseModel):
        self.options = options

    def check_config(self) -> CheckResult:
        """Test settings, connection and credentials; shown by `platforma plugins check`."""
        return CheckResult(True, "konfiguracja poprawna")


P = TypeVar("P", bound=type[Plugin])


class Registry(Generic[P]):
    def __init__(self) -> None:
        self._plugins: dict[str, type[Plugin]] = {}
        self._loaded_entry_points = False

    def register(self, cls: P) -> P:
        if cls.kind not in KINDS:
            raise ValueError(f"unknown plugin kind {cls.kind!r}")
        existing = self._plugins.get(cls.id)
        if existing is not None and existing is not cls:
            raise ValueError(f"plugin id {cls.id!r} is taken by {existing.__module__}.{existing.__name__}")
        self._plugins[cls.id] = cls
        return cls

    def load_entry_points(self) -> None:
        if self._loaded_entry_points:
            return
        for entry_point in entry_points(group=ENTRY_POINT_GROUP):
            self.register(entry_point.load())
        self._loaded_entry_points = True

    def all(self, kind: str | None = None) -> list[type[Plugin]]:
        self.load_entry_points()
        return sorted((p for p in self._plugins.values() if kind is None or p.kind == kind), key=lambda p: p.id)

    def get(self, plugin_id: str) -> type[Plugin]:
        self.load_entry_points()
        try:
            return self._plugins[plugin_id]
        except KeyError:
            raise KeyError(f"nie ma wtyczki o identyfikatorze {plugin_id!r}") from None

    def instantiate(self, plugin_id: str, options: dict[str, Any]) -> Plugin:
        cls = self.get(plugin_id)
        try:
            parsed = cls.Options.model_validate(options)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ValueError(f"wtyczka {plugin_id}: błędne opcje: {problems}") from None
        return cls(parsed)


registry: Registry[type[Plugin]] = Registry()

"""Menus that modules add to: the resident's navigation and the clerks' back office."""
from __future__ import annotations

from dataclasses import dataclass

from flask import g, request, url_for

from platforma.core.access import Permission, has_permission


@dataclass(frozen=True)
class MenuItem:
    label: str  # a lazy_gettext string
    endpoint: str
    permission: Permission | None
    order: int


class Menu:
    def __init__(self) -> None:
        self._items: dict[str, MenuItem] = {}

    def add(self, label, endpoint: str, permission: Permission | None = None, order: int = 100) -> None:
        self._items[endpoint] = MenuItem(label, endpoint, permission, order)

    def visible(self) -> list[dict]:
        user = g.get("user")
        items = sorted(self._items.values(), key=lambda i: (i.order, i.endpoint))
        result = []
        for item in items:
            if item.permission is not None and not has_permission(user, item.permission):
                continue
            href = url_for(item.endpoint)
            current = request.endpoint == item.endpoint or (href != "/" and request.path.startswith(href.rstrip("/") + "/"))
            result.append({"label": str(item.label), "href": href, "current": current})
        return result


resident_menu = Menu()
backoffice_menu = Menu()

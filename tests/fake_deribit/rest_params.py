"""Reading request parameters the way Deribit does: JSON values or HTTP query strings
(`"true"`, `"1000"`), with -32602 `{reason, param}` for missing or malformed ones."""

from __future__ import annotations

from typing import Any

from tests.fake_deribit.errors import invalid_params

_MISSING = object()


class Params:
    def __init__(self, raw: dict[str, Any], *, history: bool) -> None:
        if not isinstance(raw, dict):
            raise invalid_params("wrong format", "params")
        self.raw = raw
        self.history = history

    def has(self, name: str) -> bool:
        return self.raw.get(name) is not None

    def _get(self, name: str, required: bool) -> Any:
        value = self.raw.get(name, _MISSING)
        if value is _MISSING or value is None:
            if required:
                raise invalid_params("value is required", name)
            return _MISSING
        return value

    def string(self, name: str, *, required: bool = False, default: Any = None) -> Any:
        value = self._get(name, required)
        if value is _MISSING:
            return default
        if isinstance(value, bool):
            raise invalid_params("wrong format", name)
        if isinstance(value, int | float):
            return str(value)
        if not isinstance(value, str):
            raise invalid_params("wrong format", name)
        return value

    def integer(self, name: str, *, required: bool = False, default: Any = None) -> Any:
        value = self._get(name, required)
        if value is _MISSING:
            return default
        if isinstance(value, bool):
            raise invalid_params("wrong format", name)
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            text = value.strip()
            try:
                return int(text)
            except ValueError:
                try:
                    f = float(text)
                except ValueError:
                    f = float("nan")
                if f.is_integer():
                    return int(f)
        raise invalid_params("wrong format", name)

    def boolean(self, name: str, *, default: bool) -> bool:
        value = self._get(name, False)
        if value is _MISSING:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise invalid_params("wrong format", name)

    def choice(self, name: str, options: tuple[str, ...], *, default: Any) -> Any:
        value = self.string(name, default=_MISSING)
        if value is _MISSING:
            return default
        if value not in options:
            raise invalid_params("wrong format", name)
        return value

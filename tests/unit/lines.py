"""What device unit tests share: an interrupt line that remembers every level it was driven to."""

from __future__ import annotations


class Line:
    """An interrupt line that remembers every level it was driven to."""

    def __init__(self) -> None:
        self.levels: list[bool] = []

    def __call__(self, level: bool) -> None:
        self.levels.append(level)

    @property
    def level(self) -> bool:
        return bool(self.levels) and self.levels[-1]

"""A bounded buffer that keeps the newest items and counts the ones it pushed out."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

__all__ = ["Ring"]

T = TypeVar("T")


class Ring(Generic[T]):
    """The newest *capacity* items, oldest first; ``dropped`` counts the ones pushed out."""

    def __init__(self, capacity: int, items: Iterable[T] = ()) -> None:
        if capacity < 0:
            raise ValueError(f"capacity must be 0 or more, got {capacity}")
        self.capacity = capacity
        self._items: deque[T] = deque(maxlen=capacity)
        self.dropped = 0
        for item in items:
            self.append(item)

    def append(self, item: T) -> None:
        if len(self._items) == self.capacity:
            self.dropped += 1
        if self.capacity:
            self._items.append(item)

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[T]:
        return iter(self._items)

    def __getitem__(self, index: int) -> T:
        """``ring[0]`` the oldest kept, ``ring[-1]`` the newest (as a deque indexes)."""
        return self._items[index]

    def __reversed__(self) -> Iterator[T]:
        return reversed(self._items)

    def __eq__(self, other: object) -> bool:
        """Same items in the same order (as deques compare)."""
        if isinstance(other, Ring):
            return self._items == other._items
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, as a deque

    def __repr__(self) -> str:
        return f"Ring({self.capacity}, {list(self._items)!r}, dropped={self.dropped})"

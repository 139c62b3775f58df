"""The output ring: the last `capacity` bytes a child wrote, addressed by absolute offsets."""

from __future__ import annotations


class OutputRing:
    """Bytes at absolute offsets [start, end); older bytes are overwritten.

    Memory grows with the output up to `capacity` and never beyond it (no preallocation, so an
    idle session costs nothing). While filling, offset o lives at index o; once full, at o % cap.
    """

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError(f"ring capacity must be positive, got {capacity}")
        self._cap = capacity
        self._buf = bytearray()
        self._end = 0

    @property
    def capacity(self) -> int:
        return self._cap

    @property
    def start(self) -> int:
        return self._end - len(self._buf)

    @property
    def end(self) -> int:
        return self._end

    def __len__(self) -> int:
        return len(self._buf)

    def append(self, data: bytes) -> None:
        view = memoryview(data)
        if len(self._buf) < self._cap:
            grow = min(self._cap - len(self._buf), len(view))
            self._buf += view[:grow]
            self._end += grow
            view = view[grow:]
        if not view:
            return
        if len(view) > self._cap:  # only the tail of an oversized chunk can be kept
            self._end += len(view) - self._cap
            view = view[-self._cap :]
        index = self._end % self._cap
        first = min(self._cap - index, len(view))
        self._buf[index : index + first] = view[:first]
        self._buf[: len(view) - first] = view[first:]
        self._end += len(view)

    def read(self, offset: int, limit: int) -> bytes:
        """Up to `limit` bytes from `offset` (start <= offset <= end)."""
        if not self.start <= offset <= self._end:
            raise IndexError(f"offset {offset} outside the ring [{self.start}, {self._end})")
        size = min(limit, self._end - offset)
        if size <= 0:
            return b""
        index = offset % self._cap
        first = min(self._cap - index, size)
        with memoryview(self._buf) as view:
            if first == size:
                return bytes(view[index : index + size])
            return bytes(view[index:]) + bytes(view[: size - first])

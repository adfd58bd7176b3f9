"""A request body read as text lines while it arrives, within a size limit.

An import runs in a worker thread (it talks to the database) while the body can only
be read on the event loop. ``body_lines`` bridges the two: the thread pulls one chunk
at a time from the loop, so memory holds a chunk and a partial line, never the file.
"""

from __future__ import annotations

import codecs
from collections.abc import AsyncIterator, Iterator

from anyio import from_thread


class UploadTooLarge(Exception):
    """The request body is larger than the endpoint accepts."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        super().__init__(f"the upload is larger than {max_bytes} bytes")


def body_lines(chunks: AsyncIterator[bytes], max_bytes: int) -> Iterator[str]:
    """UTF-8 lines (a BOM is dropped, "\\n" kept) of the body; call from an anyio worker thread.

    Raises UploadTooLarge as soon as more than ``max_bytes`` arrived, and
    UnicodeDecodeError for a body that is not UTF-8.
    """
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    received = 0
    pending = ""
    while (chunk := from_thread.run(_next_chunk, chunks)) is not None:
        received += len(chunk)
        if received > max_bytes:
            raise UploadTooLarge(max_bytes)
        # Split on "\n" only: the csv module itself reads "\r\n" and newlines in quotes.
        # Only the new text is split, so a long line costs no rescans of its start.
        *complete, rest = decoder.decode(chunk).split("\n")
        if complete:
            complete[0] = pending + complete[0]
            pending = ""
            yield from (line + "\n" for line in complete)
        pending += rest
    pending += decoder.decode(b"", final=True)
    if pending:
        yield pending


async def _next_chunk(chunks: AsyncIterator[bytes]) -> bytes | None:
    try:
        return await anext(chunks)
    except StopAsyncIteration:
        return None

"""Group commit: requests hand their items to one writer, which writes everything handed in meanwhile in
one transaction, commits, and then answers them all.

A request that carries one position pays a transaction of its own otherwise: a BEGIN, a dozen statements
and a COMMIT (on SQLite also its turn at the write lock), ten times the cost of the position itself.
Here a request costs its share of a transaction instead. Nothing is answered before the transaction
that holds its item has committed, so an acknowledged item survives a crash of the server; a request
whose client gives up while waiting still has its item written (a retry then finds it stored).

There is no timer: while a transaction runs, the items that arrive wait for the next one, so a quiet
server commits each item at once, and a busy one commits more per transaction. `write` runs in a
worker thread; it gets the items and answers one result per item (a value, or an exception for that
item alone); if it raises, every item of the group gets that exception.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

import anyio

Item = TypeVar("Item")
Result = TypeVar("Result")


class GroupCommit(Generic[Item, Result]):
    """One writer per event loop (a server process); `submit` waits for the item's result."""

    def __init__(
        self, write: Callable[[Sequence[Item]], Sequence[Result | BaseException]], *, max_items: int = 2000
    ) -> None:
        self.write = write
        self.max_items = max_items
        self._waiting: list[tuple[Item, asyncio.Future[Result]]] = []
        self._writer: asyncio.Task[None] | None = None
        # Figures for benchmarks and tests: transactions written, and items in them.
        self.groups = 0
        self.items = 0

    async def submit(self, item: Item) -> Result:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._run())
        # Shielded: a client that leaves does not take its item out of a group being written.
        return await asyncio.shield(future)

    async def _run(self) -> None:
        while self._waiting:
            group, self._waiting = self._waiting[: self.max_items], self._waiting[self.max_items :]
            items = [item for item, _ in group]
            try:
                results = await anyio.to_thread.run_sync(self.write, items)
            except BaseException as exc:  # every waiting request is told, whatever it was
                for _, future in group:
                    if not future.done():
                        future.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                continue
            self.groups += 1
            self.items += len(items)
            for (_, future), result in zip(group, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)

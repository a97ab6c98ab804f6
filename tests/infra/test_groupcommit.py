"""Group commit: items handed in while a group is written go together into the next one; each request
gets its own result or error; a client that leaves does not take its item out."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

from riderwatch.infra.groupcommit import GroupCommit


class Recorder:
    """A writer that holds its first group until released, so the next items queue up behind it."""

    def __init__(self) -> None:
        self.groups: list[list[int]] = []
        self.release = threading.Event()

    def __call__(self, items: Sequence[int]) -> list[int | BaseException]:
        if not self.groups:
            self.release.wait(10)
        self.groups.append(list(items))
        return [ValueError(f"odd {i}") if i % 2 else i * 10 for i in items]


async def _wait_until(check: object, timeout: float = 10) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():  # type: ignore[operator]
        assert loop.time() < deadline
        await asyncio.sleep(0.005)


def test_items_arriving_during_a_write_share_the_next_transaction() -> None:
    async def scenario() -> None:
        writer = Recorder()
        group = GroupCommit(writer)
        first = asyncio.create_task(group.submit(0))
        await asyncio.sleep(0.05)  # the first group is being written (held)
        rest = [asyncio.create_task(group.submit(i)) for i in range(1, 7)]
        await asyncio.sleep(0.05)
        writer.release.set()
        assert await first == 0
        results = await asyncio.gather(*rest, return_exceptions=True)
        assert [r if isinstance(r, int) else str(r) for r in results] == ["odd 1", 20, "odd 3", 40, "odd 5", 60]
        assert writer.groups == [[0], [1, 2, 3, 4, 5, 6]]
        assert (group.groups, group.items) == (2, 7)

    asyncio.run(scenario())


def test_a_failed_write_fails_every_item_of_its_group_and_the_writer_goes_on() -> None:
    calls: list[list[int]] = []

    def write(items: Sequence[int]) -> list[int | BaseException]:
        calls.append(list(items))
        if len(calls) == 1:
            raise RuntimeError("the database went away")
        return list(items)

    async def scenario() -> None:
        group = GroupCommit(write)
        with pytest.raises(RuntimeError):
            await group.submit(1)
        assert await group.submit(2) == 2

    asyncio.run(scenario())
    assert calls == [[1], [2]]


def test_a_client_that_leaves_still_has_its_item_written() -> None:
    async def scenario() -> None:
        writer = Recorder()
        group = GroupCommit(writer)
        leaving = asyncio.create_task(group.submit(4))
        await asyncio.sleep(0.05)
        leaving.cancel()
        writer.release.set()
        await _wait_until(lambda: writer.groups)
        assert writer.groups == [[4]]

    asyncio.run(scenario())


def test_groups_are_at_most_max_items() -> None:
    async def scenario() -> None:
        writer = Recorder()
        group = GroupCommit(writer, max_items=3)
        first = asyncio.create_task(group.submit(0))
        await asyncio.sleep(0.05)
        rest = [asyncio.create_task(group.submit(i)) for i in (2, 4, 6, 8)]
        writer.release.set()
        await asyncio.gather(first, *rest)
        assert writer.groups == [[0], [2, 4, 6], [8]]

    asyncio.run(scenario())

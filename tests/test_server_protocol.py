"""The production WebSocket protocol's own parts (``starling.server``): the frames it writes
itself and the slim structures that replace uvicorn's queue and event per socket. The
protocol as a whole runs under every real-socket test (``tests/live.py`` serves with it)."""

from __future__ import annotations

import asyncio

import pytest
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from starling.server import Flag, Inbox, text_frame


def parse(data: bytes) -> Frame:
    reader = StreamReader()
    reader.feed_data(data)
    parser = Frame.parse(reader.read_exact, mask=False)
    try:
        next(parser)
    except StopIteration as done:
        frame: Frame = done.value
        return frame
    raise AssertionError("incomplete frame")


@pytest.mark.parametrize("size", [0, 125, 126, 0xFFFF, 0x10000])
def test_text_frames_parse_back_whatever_their_length(size: int) -> None:
    payload = b"x" * size
    frame = parse(text_frame(payload))
    assert frame.opcode is Opcode.TEXT and frame.fin and frame.data == payload


async def test_the_inbox_hands_items_in_order_to_a_waiting_reader() -> None:
    inbox = Inbox()
    assert inbox.empty()
    reader = asyncio.ensure_future(inbox.get())
    await asyncio.sleep(0)
    inbox.put_nowait(1)
    inbox.put_nowait(2)
    assert await reader == 1
    assert not inbox.empty()
    assert await inbox.get() == 2
    assert inbox.empty()


async def test_a_cancelled_reader_leaves_the_inbox_usable() -> None:
    inbox = Inbox()
    reader = asyncio.ensure_future(inbox.get())
    await asyncio.sleep(0)
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    inbox.put_nowait("next")
    assert await inbox.get() == "next"


async def test_the_flag_holds_writers_until_set() -> None:
    flag = Flag(True)
    assert await flag.wait()
    flag.clear()
    waiter = asyncio.ensure_future(flag.wait())
    await asyncio.sleep(0)
    assert not waiter.done() and not flag.is_set()
    flag.set()
    assert await waiter and flag.is_set()

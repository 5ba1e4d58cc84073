"""The socket under `DeribitWsClient`: websockets' connection with a fast path for data frames.

websockets' asyncio connection parses every frame with a generator-based reader, queues each
message and wakes a reader task per message: about 8 µs a message, more than parsing and
routing it. Deribit sends small, unfragmented, uncompressed text frames, so once the opening
handshake is done this subclass splits the complete data frames out of each socket read
itself (RFC 6455 §5.2: a server's frames are unmasked) and hands all the payloads of one read
to the sink in one synchronous call, in order.

Every other frame (ping, pong, close, fragments, reserved bits or opcodes, a masked frame, one
above `max_size`) goes through websockets' sans-I/O protocol exactly as before, so keepalive
pings, the closing handshake and protocol errors behave as in websockets. A fragmented message
is reassembled and handed to the sink like any other. Frames are not UTF-8-checked here: the
JSON decoder checks, and a bad frame becomes a counted malformed frame, not a closed socket.

`connect(url, create_connection=FastClientConnection, ...)` builds it; `set_sink(fn)` starts
the delivery (frames read before that wait); `send_text_now` sends from a synchronous callback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.frames import Frame, Opcode
from websockets.protocol import State

FrameSink = Callable[[list[bytes]], None]

_DATA_OPCODES = (Opcode.TEXT, Opcode.BINARY, Opcode.CONT)
_HEADER_END = b"\r\n\r\n"


class FastClientConnection(ClientConnection):
    """A websockets `ClientConnection` whose data frames go to a sink, a read at a time."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._fast = False  # True while the framing is ours (after the handshake, while OPEN)
        self._head_tail = b""  # the last bytes of the handshake response seen so far
        self._rest = bytearray()  # the start of a frame not complete yet
        self._need = 0  # bytes `_rest` must hold before parsing again
        self._fragments: list[bytes] | None = None  # a fragmented message being reassembled
        self._sink: FrameSink | None = None
        self._sink_set = False
        self._waiting: list[bytes] = []  # frames read before the first sink was set
        size = self.protocol.max_message_size
        self._max_size = size if size is not None else 1 << 62

    # ---- public ---------------------------------------------------------------------------
    def set_sink(self, sink: FrameSink | None) -> None:
        """Sends every data frame's payload to `sink`; None stops the delivery (frames dropped)."""
        self._sink = sink
        self._sink_set = True
        if sink is not None and self._waiting:
            waiting, self._waiting = self._waiting, []
            sink(waiting)

    def send_text_now(self, data: bytes) -> None:
        """Sends one text frame at once, without awaiting (for answers from the sink).

        Raises websockets' `InvalidState` when the connection is not open."""
        self.protocol.send_text(data)
        self.send_data()

    # ---- asyncio.Protocol -----------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self._fast:
            self._read_frames(data)
        elif self.response is None and self.protocol.state is State.CONNECTING:
            self._handshake_bytes(data)
        else:
            super().data_received(data)

    def process_event(self, event: Any) -> None:
        """Data frames the protocol parsed (fragments, in practice) go to the sink too."""
        if isinstance(event, Frame) and event.opcode in _DATA_OPCODES:
            self._data_frame(event)
        else:
            super().process_event(event)

    # ---- the handshake --------------------------------------------------------------------
    def _handshake_bytes(self, data: bytes) -> None:
        """Feeds the protocol the HTTP response up to its blank line, no further: the frames
        after it are then parsed here, and the protocol's parser stays at a frame boundary."""
        tail = self._head_tail
        at = (tail + data).find(_HEADER_END)
        if at < 0:
            self._head_tail = (tail + data)[-3:]
            super().data_received(data)
            return
        cut = at + len(_HEADER_END) - len(tail)
        super().data_received(data[:cut])
        rest = data[cut:]
        if self.protocol.state is State.OPEN:
            self._fast = True
            if rest:
                self._read_frames(rest)
        elif rest:  # refused or unusual: websockets deals with the rest as usual
            super().data_received(rest)

    # ---- frames ---------------------------------------------------------------------------
    def _read_frames(self, data: bytes) -> None:
        rest = self._rest
        if rest:
            rest += data
            if len(rest) < self._need:
                return
            data = bytes(rest)
            rest.clear()
        n = len(data)
        pos = 0
        out: list[bytes] = []
        append = out.append
        need = 0
        while True:
            avail = n - pos
            if avail < 2:
                need = 2
                break
            b0 = data[pos]
            length = data[pos + 1]
            if length < 126:
                start = pos + 2
            elif length == 126:
                if avail < 4:
                    need = 4
                    break
                length = (data[pos + 2] << 8) | data[pos + 3]
                start = pos + 4
            elif length == 127:
                if avail < 10:
                    need = 10
                    break
                length = int.from_bytes(data[pos + 2 : pos + 10], "big")
                start = pos + 10
            else:  # the mask bit: a server must not mask; websockets fails the connection
                self._hand_over(out, data[pos:])
                return
            end = start + length
            if length > self._max_size:  # websockets refuses it (1009) before reading it
                self._hand_over(out, data[pos:])
                return
            if end > n:
                need = end - pos
                break
            if (b0 == 0x81 or b0 == 0x82) and self._fragments is None:
                append(data[start:end])
            else:
                if out:
                    self._deliver(out)
                    out = []
                    append = out.append
                super().data_received(data[pos:end])  # one whole frame: ping, close, ...
                if self.protocol.state is not State.OPEN:  # closing: websockets discards
                    self._fast = False
                    if end < n:
                        super().data_received(data[end:])
                    return
            pos = end
        if pos < n:
            rest += data[pos:] if pos else data
            self._need = need
        if out:
            self._deliver(out)

    def _hand_over(self, out: list[bytes], data: bytes) -> None:
        """Frames websockets must see (it will fail the connection): the framing is its own."""
        if out:
            self._deliver(out)
        self._fast = False
        super().data_received(data)

    def _data_frame(self, frame: Frame) -> None:
        if frame.opcode is not Opcode.CONT:
            if frame.fin:
                self._deliver([bytes(frame.data)])
            else:
                self._fragments = [bytes(frame.data)]
            return
        parts = self._fragments
        if parts is None:  # the protocol raises first; never reached
            return
        parts.append(bytes(frame.data))
        if frame.fin:
            self._fragments = None
            self._deliver([b"".join(parts)])

    def _deliver(self, payloads: list[bytes]) -> None:
        sink = self._sink
        if sink is not None:
            sink(payloads)
        elif not self._sink_set:
            self._waiting.extend(payloads)

"""A rate-limiting TCP proxy: the master Glance as seen across a WAN, for ``bench/perf.py``.

Every byte the master sends back (its egress) goes through ONE token bucket shared by all
connections, so N parallel downloads share the bandwidth as they would share a WAN link;
requests towards the master are not limited. ``direction="up"`` limits the other way (a
region's link as seen by uploads: what clients send to it), and ``stall_after=N`` sets
the bucket's rate to 0 once N limited bytes went through (a link that stops). The proxy
also counts the bytes it relays in each direction: ``served`` is what the master sent,
measured on the master's side of the link, not by any client.

asyncio, one thread, 127.0.0.1 only. Use::

    with ThrottledProxy("127.0.0.1", upstream_port, rate_bytes=50_000_000) as proxy:
        ...  # point clients at http://127.0.0.1:{proxy.port}
        proxy.served  # bytes master -> clients so far

Not a test: pytest never collects it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from types import TracebackType

READ_SIZE = 64 * 1024


class TokenBucket:
    """``rate`` bytes per second, at most ``burst`` at once; shared by every connection."""

    def __init__(self, rate: float, burst: int):
        self.rate, self.burst = rate, burst
        self._tokens = float(burst)
        self._stamp = time.monotonic()
        self._lock = asyncio.Lock()

    async def take(self, count: int) -> None:
        async with self._lock:  # one waiter at a time: FIFO, the link is shared fairly
            while True:
                if self.rate <= 0:  # a stalled link: nothing passes until the proxy stops
                    await asyncio.sleep(0.5)
                    continue
                now = time.monotonic()
                self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
                self._stamp = now
                if self._tokens >= count:
                    self._tokens -= count
                    return
                await asyncio.sleep((count - self._tokens) / self.rate)


class ThrottledProxy:
    """The proxy in a background thread with its own event loop."""

    def __init__(
        self,
        host: str,
        upstream_port: int,
        rate_bytes: float,
        burst: int = 256 * 1024,
        direction: str = "down",
        stall_after: int | None = None,
    ):
        self.host, self.upstream_port = host, upstream_port
        self.rate_bytes, self.burst = rate_bytes, burst
        self.direction, self.stall_after = direction, stall_after
        self.port = 0
        self.served = 0  # upstream -> client bytes (the master's egress)
        self.received = 0  # client -> master bytes
        self.limited = 0  # bytes through the bucket (either direction)
        self.connections = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="wan-proxy", daemon=True)
        self._server: asyncio.base_events.Server | None = None

    # -- lifecycle
    def start(self) -> ThrottledProxy:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the proxy did not start")
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def __enter__(self) -> ThrottledProxy:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- inside the loop thread
    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._bucket = TokenBucket(self.rate_bytes, self.burst)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, self.host, 0)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._server.close()
            self._loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.upstream_port)
        except OSError:
            writer.close()
            return
        up = self.direction == "up"
        await asyncio.gather(
            self._pipe(reader, up_writer, throttle=up, downstream=False),
            self._pipe(up_reader, writer, throttle=not up, downstream=True),
            return_exceptions=True,
        )

    async def _pipe(
        self,
        src: asyncio.StreamReader,
        dst: asyncio.StreamWriter,
        throttle: bool,
        downstream: bool,
    ) -> None:
        try:
            while data := await src.read(READ_SIZE):
                if throttle:
                    await self._bucket.take(len(data))
                    self.limited += len(data)
                    if self.stall_after is not None and self.limited >= self.stall_after:
                        self._bucket.rate = 0
                if downstream:
                    self.served += len(data)
                else:
                    self.received += len(data)
                dst.write(data)
                await dst.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(RuntimeError):  # the loop is already closing
                dst.close()

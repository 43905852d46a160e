"""A TLS front for one testbed server: TLS on ``--listen``, plain TCP to ``--target``.

Run as a script (stdlib only) by ``testbed.servers.launch``. The server behind it keeps
its plain HTTP port, so the same Keystone or Glance is reachable both ways: the catalog
lists the plain URL as ``public`` and this relay as ``internal`` (issue 13). A relay
instead of gunicorn's own ``certfile``: gunicorn serves TLS on every bind or none.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ssl

CHUNK = 256 * 1024


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    except (OSError, ssl.SSLError, asyncio.IncompleteReadError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def _serve_one(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, target: int
) -> None:
    try:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target)
    except OSError:
        writer.close()
        return
    await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))


async def _main(listen: int, target: int, cert: str, key: str) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = await asyncio.start_server(
        lambda r, w: _serve_one(r, w, target), "127.0.0.1", listen, ssl=context, backlog=128
    )
    print(f"TLS relay 127.0.0.1:{listen} -> 127.0.0.1:{target}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listen", type=int, required=True)
    parser.add_argument("--target", type=int, required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    args = parser.parse_args()
    asyncio.run(_main(args.listen, args.target, args.cert, args.key))


if __name__ == "__main__":
    main()

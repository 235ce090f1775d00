#!/usr/bin/python3
"""Long-poll TLS origin for scenario e of bench/run.sh: an Exchange-like server that holds
every request (an ActiveSync Ping) until the connection closes or --hold seconds pass, then
answers 200. A plain-text control port reports how many requests have arrived and how many
are held right now: `received R held H` (one line, then close).

Usage: longpoll_origin.py --listen 127.0.0.1:19444 --control 127.0.0.1:19449 \
           --cert origin.pem --key origin.key [--hold 3600]
Debian python3, standard library only.
"""
import argparse
import asyncio
import resource
import signal
import ssl
import sys

RECEIVED = 0
HELD = 0

PING_RESPONSE = (b"HTTP/1.1 200 OK\r\n"
                 b"Content-Type: application/vnd.ms-sync.wbxml\r\n"
                 b"X-Powered-By: ASP.NET\r\n"
                 b"X-FEServer: EXCH01\r\n"
                 b"Content-Length: 13\r\n\r\n"
                 b"\x03\x01\x6a\x00\x00\x0d\x45\x47\x03\x31\x00\x01\x01")


def hostport(text):
    host, _, port = text.rpartition(":")
    return host, int(port)


async def read_head(reader):
    """The request head as bytes, or None at EOF / on a malformed head."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ssl.SSLError):
        return None
    return head


def content_length(head):
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return 0


async def handle(reader, writer, hold):
    global RECEIVED, HELD
    try:
        while True:
            head = await read_head(reader)
            if head is None:
                return
            length = content_length(head)
            if length:
                await reader.readexactly(length)
            RECEIVED += 1
            HELD += 1
            try:
                # Held until the proxy closes the upstream connection or the hold ends.
                data = await asyncio.wait_for(reader.read(1), timeout=hold)
            except asyncio.TimeoutError:
                data = b"timeout"
            finally:
                HELD -= 1
            if not data:
                return
            writer.write(PING_RESPONSE)
            await writer.drain()
    except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError, OSError):
        pass
    finally:
        writer.transport.abort()


async def control(reader, writer):
    writer.write(f"received {RECEIVED} held {HELD}\n".encode())
    try:
        await writer.drain()
    finally:
        writer.close()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--control", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--hold", type=float, default=3600.0)
    args = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(args.cert, args.key)

    host, port = hostport(args.listen)
    chost, cport = hostport(args.control)
    server = await asyncio.start_server(lambda r, w: handle(r, w, args.hold), host, port,
                                        ssl=ctx, backlog=4096, ssl_handshake_timeout=60)
    ctl = await asyncio.start_server(control, chost, cport)
    print(f"long-poll origin on {args.listen}, control on {args.control}", file=sys.stderr, flush=True)
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    async with server, ctl:
        await stop


if __name__ == "__main__":
    asyncio.run(main())

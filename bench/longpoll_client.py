#!/usr/bin/python3
"""Scenario e of bench/run.sh: N phones each holding one ActiveSync Ping through the proxy.

Opens N TLS connections to the proxy, sends one ActiveSync-like POST on each, waits until the
long-poll origin has received all of them (its control port), holds them for --hold seconds,
then reads the RSS of the proxy's process tree and closes everything. Prints one JSON object:
  {"n": N, "sent": S, "held": H, "errors": E, "rss_before_kib": B, "rss_after_kib": A,
   "kib_per_held": (A-B)/H, "open_seconds": T}

Usage: longpoll_client.py --connect 127.0.0.1:18443 --control 127.0.0.1:19449 --pid PROXY_PID \
           --ca ca.pem [--n 5000] [--hold 10] [--concurrency 64]
Debian python3, standard library only.
"""
import argparse
import asyncio
import json
import resource
import ssl
import sys
import time

import procstat

BODY = (b"\x03\x01\x6a\x00\x00\x0d\x45\x48\x03\x39\x30\x30\x00\x01\x49\x4a\x4b\x03\x31"
        b"\x00\x01\x4c\x03\x45\x6d\x61\x69\x6c\x00\x01\x01\x01\x01")


def request(i):
    return (f"POST /Microsoft-Server-ActiveSync?Cmd=Ping&User=u&DeviceId=d{i}&DeviceType=iPhone HTTP/1.1\r\n"
            "Host: localhost\r\n"
            "User-Agent: Apple-iPhone9C1/1402.100\r\n"
            "Content-Type: application/vnd.ms-sync.wbxml\r\n"
            "MS-ASProtocolVersion: 14.1\r\n"
            "X-MS-PolicyKey: 1234567890\r\n"
            "Authorization: Basic dTpw\r\n"
            f"Content-Length: {len(BODY)}\r\n\r\n").encode() + BODY


def hostport(text):
    host, _, port = text.rpartition(":")
    return host, int(port)


async def origin_counts(control):
    host, port = hostport(control)
    reader, writer = await asyncio.open_connection(host, port)
    line = (await reader.readline()).decode().split()
    writer.close()
    return int(line[1]), int(line[3])  # received, held


class Phone:
    def __init__(self):
        self.writer = None
        self.failed = None   # why, when it failed
        self.watch = None


async def open_phone(i, phone, host, port, ctx, sem):
    async with sem:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, ssl=ctx, server_hostname="localhost"), 60)
            writer.write(request(i))
            await writer.drain()
        except (OSError, ssl.SSLError, asyncio.TimeoutError) as e:
            phone.failed = f"open: {type(e).__name__}"
            return
    phone.writer = writer

    async def watch():
        try:
            data = await reader.read(1)
        except (OSError, ssl.SSLError) as e:
            phone.failed = f"read: {type(e).__name__}"
            return
        phone.failed = "answered early" if data else "closed early"
    phone.watch = asyncio.create_task(watch())


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--connect", required=True)
    ap.add_argument("--control", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--hold", type=float, default=10.0)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--timeout", type=float, default=120.0)
    args = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < args.n + 100:
        sys.exit(f"longpoll_client: RLIMIT_NOFILE {hard} is too low for {args.n} connections")

    ctx = ssl.create_default_context(cafile=args.ca)
    host, port = hostport(args.connect)
    base_received, base_held = await origin_counts(args.control)
    rss_before = procstat.rss_kib(args.pid)

    t0 = time.monotonic()
    sem = asyncio.Semaphore(args.concurrency)
    phones = [Phone() for _ in range(args.n)]
    await asyncio.gather(*(open_phone(i, p, host, port, ctx, sem) for i, p in enumerate(phones)))
    sent = sum(1 for p in phones if p.writer is not None)

    deadline = time.monotonic() + args.timeout
    while True:
        received, held = await origin_counts(args.control)
        if received - base_received >= sent or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.25)
    open_seconds = time.monotonic() - t0

    await asyncio.sleep(args.hold)
    rss_after = procstat.rss_kib(args.pid)
    _, held = await origin_counts(args.control)
    held -= base_held  # requests still held by the origin for an earlier proxy do not count
    failures = {}
    for p in phones:
        if p.failed:
            failures[p.failed] = failures.get(p.failed, 0) + 1

    for p in phones:
        if p.watch:
            p.watch.cancel()
        if p.writer:
            p.writer.transport.abort()
    await asyncio.sleep(0)

    print(json.dumps({
        "n": args.n, "sent": sent, "held": held,
        "errors": sum(failures.values()), "failures": failures,
        "rss_before_kib": rss_before, "rss_after_kib": rss_after,
        "kib_per_held": round((rss_after - rss_before) / held, 2) if held else None,
        "open_seconds": round(open_seconds, 2),
    }))


if __name__ == "__main__":
    asyncio.run(main())

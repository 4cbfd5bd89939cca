"""``layerlab registry``: run the local OCI registry, or garbage-collect its storage.

``layerlab registry serve --root DIR --port N`` serves in the foreground until SIGINT or
SIGTERM.  Once listening it prints one line: ``listening on http://127.0.0.1:N (root DIR)``,
or with ``--json`` one JSON object per line::

    {"event": "listening", "url": "http://127.0.0.1:N", "host": "127.0.0.1:N",
     "port": N, "root": "DIR" | null}

after each periodic gc (``--gc-interval``) ``{"event": "gc", "blobs_deleted": int, ...}``
(the fields of ``registry gc --json``), and on exit ``{"event": "stopped", "requests":
int, "errors": int, "misses": int, "bytes_in": int, "bytes_out": int}`` (``misses``: 404
answers to existence checks, which clients make on purpose; ``errors``: every other
status >= 400).

``layerlab registry gc --root DIR`` deletes blobs no manifest references (and metadata
temporaries a killed write left), refusing (exit 2) while a registry serves DIR; ``--json``
prints ``{"blobs_deleted": int, "bytes_freed": int, "blobs_kept": int, "blobs_recent": int,
"temporaries_removed": int}``.
"""

from __future__ import annotations

import argparse
import json
import sys


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("registry", help="run the local OCI/Docker v2 registry",
                                   description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="registry_command", metavar="ACTION", required=True)

    serve = sub.add_parser("serve", help="serve the registry in the foreground")
    where = serve.add_mutually_exclusive_group()
    where.add_argument("--root", help="storage directory (default: a temporary directory)")
    where.add_argument("--memory", action="store_true", help="keep everything in memory")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=5000, help="port (0: any free port)")
    serve.add_argument("--no-cache", action="store_true",
                       help="disable the in-memory blob descriptor cache")
    serve.add_argument("--verify", choices=("stream", "reread"), default="stream",
                       help="hash while receiving, or re-read each blob on commit")
    serve.add_argument("--bandwidth", help="limit shared by all connections, e.g. '100 MB/s'")
    serve.add_argument("--latency", help="added to every request, e.g. '20 ms'")
    serve.add_argument("--htpasswd", help="require Basic auth from this bcrypt htpasswd file")
    serve.add_argument("--permission", action="append", default=[], metavar="USER=pull|push",
                       help="per-user access (repeatable; '*' is anonymous); default: all push")
    serve.add_argument("--read-only", action="store_true", help="refuse every write")
    serve.add_argument("--no-delete", action="store_true", help="refuse DELETE requests")
    serve.add_argument("--max-manifest-size", default="4 MiB", help="default 4 MiB")
    serve.add_argument("--max-blob-size", default=None, help="default unlimited")
    serve.add_argument("--idle-timeout", default="30 s",
                       help="close connections without a complete request for this long "
                            "(default 30 s)")
    serve.add_argument("--body-timeout", default="30 s",
                       help="a request body must keep sending: at least --min-body-rate "
                            "in every this long the server waits for it (default 30 s)")
    serve.add_argument("--min-body-rate", default="1 KiB/s", help="default 1 KiB/s")
    serve.add_argument("--max-uploads", type=int, default=1000,
                       help="open upload sessions kept at most; more get 429 (default 1000)")
    serve.add_argument("--max-uploads-per-client", type=int, default=100,
                       help="open upload sessions per user or peer address (default 100)")
    serve.add_argument("--upload-timeout", default="1 h",
                       help="cancel upload sessions unused this long (default 1 h)")
    serve.add_argument("--max-upload-bytes", default="32 GiB",
                       help="bytes open upload sessions may hold on disk together "
                            "(default 32 GiB; 'none': unbounded)")
    serve.add_argument("--gc-interval", default=None,
                       help="run garbage collection this often while serving (default: never)")
    serve.add_argument("--gc-grace", default="10 min",
                       help="periodic gc keeps unreferenced blobs younger than this "
                            "(default 10 min)")
    serve.add_argument("--log-records", type=int, default=10_000,
                       help="requests kept in memory for the log (default 10000; the "
                            "totals count every request)")
    serve.add_argument("--no-fsync", action="store_true",
                       help="do not fsync blobs before making them visible")
    serve.add_argument("--json", action="store_true", help="JSON lines on stdout")

    gc = sub.add_parser("gc", help="delete blobs no manifest references")
    gc.add_argument("--root", required=True, help="storage directory")
    gc.add_argument("--json", action="store_true", help="JSON output")
    return parser


def _permissions(items: list[str]) -> dict[str, str] | None:
    if not items:
        return None
    result = {}
    for item in items:
        user, sep, level = item.partition("=")
        if not sep or level not in ("pull", "push"):
            raise ValueError(f"--permission {item!r}: expected USER=pull or USER=push")
        result[user] = level
    return result


def _print_gc(result, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"event": "gc", **result.to_json()}), flush=True)
    else:
        print(_gc_text(result), flush=True)


def _gc_text(result) -> str:
    from layerlab.units import format_size

    return (f"gc: deleted {result.blobs_deleted} blobs ({format_size(result.bytes_freed)}), "
            f"kept {result.blobs_kept} referenced and {result.blobs_recent} recent, removed "
            f"{result.temporaries_removed} temporary files")


def _serve(args: argparse.Namespace) -> int:
    import signal
    import threading

    from layerlab.registry import LocalRegistry
    from layerlab.registry.server import tune_allocator

    tune_allocator()  # this process only serves: keep network buffers' memory mapped
    registry = LocalRegistry(
        args.root, memory=args.memory, host=args.host, port=args.port,
        cache=not args.no_cache, verify=args.verify, bandwidth=args.bandwidth,
        latency=args.latency, htpasswd=args.htpasswd,
        permissions=_permissions(args.permission), read_only=args.read_only,
        delete_enabled=not args.no_delete, max_manifest_size=args.max_manifest_size,
        max_blob_size=args.max_blob_size, durable=not args.no_fsync,
        max_uploads=args.max_uploads, max_uploads_per_client=args.max_uploads_per_client,
        upload_timeout=args.upload_timeout,
        max_upload_bytes=None if args.max_upload_bytes.lower() == "none" else args.max_upload_bytes,
        idle_timeout=args.idle_timeout, body_timeout=args.body_timeout,
        min_body_rate=args.min_body_rate, gc_interval=args.gc_interval, gc_grace=args.gc_grace,
        on_gc=lambda result: _print_gc(result, args.json), log_records=args.log_records,
    )
    done = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: done.set())
    registry.start()
    root = str(registry.root) if registry.root else None
    if args.json:
        print(json.dumps({"event": "listening", "url": registry.url, "host": registry.host,
                          "port": registry.port, "root": root}), flush=True)
    else:
        print(f"listening on {registry.url} (root {root or 'memory'})", flush=True)
    try:
        while not done.wait(0.5):
            pass
    finally:
        registry.stop()
    from layerlab.registry.log import errors_text

    c = registry.log.counters()
    if args.json:
        print(json.dumps({"event": "stopped", "requests": c["requests"], "errors": c["errors"],
                          "misses": c["misses"],
                          "bytes_in": c["bytes_in"], "bytes_out": c["bytes_out"]}), flush=True)
    else:
        print(f"stopped after {c['requests']} requests ({errors_text(c)})", file=sys.stderr)
    return 0


def _gc(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from layerlab.cli.output import print_json
    from layerlab.registry import RegistryStorage
    from layerlab.registry.backend import FilesystemBackend
    if not (Path(args.root) / "blobs").is_dir():
        raise ValueError(f"{args.root} is not a registry root (no blobs/ directory)")
    backend = FilesystemBackend(args.root)
    hold = backend.hold(exclusive=True)  # refuses while a registry serves the root
    try:
        result = RegistryStorage(backend).gc()
    finally:
        os.close(hold)
    if args.json:
        print_json(result.to_json())
    else:
        print(_gc_text(result).removeprefix("gc: "))
    return 0


def run(args: argparse.Namespace) -> int:
    if args.registry_command == "serve":
        return _serve(args)
    return _gc(args)

"""The deployment subcommands: `e2e export` and `e2e serve` (wired into e2e.cli)."""

from __future__ import annotations

import argparse

BACKENDS = ["torch", "onnx", "torchscript"]


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a run to ONNX / TorchScript, checked against "
                                      "PyTorch with onnxruntime")
    p.add_argument("run")
    p.add_argument("--format", nargs="+", default=["onnx", "torchscript"],
                   choices=["onnx", "torchscript"], help="default: both")
    p.add_argument("--out", help="folder for the files (default RUN/export)")
    p.add_argument("--tolerance", type=float, default=1e-4,
                   help="largest max-abs difference from PyTorch accepted (default 1e-4)")
    p.add_argument("--dynamo", action="store_true",
                   help="use the torch.export-based ONNX exporter (needs onnxscript)")
    p.set_defaults(handler=cmd_export)

    p = sub.add_parser("serve", help="a demo web page per run (127.0.0.1 unless --host)")
    p.add_argument("runs", nargs="+", metavar="RUN")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on; 0.0.0.0 exposes the demo to the network")
    p.add_argument("--backend", choices=BACKENDS, default="torch",
                   help="run the PyTorch weights or the exported model (after e2e export)")
    p.add_argument("--max-upload-mb", type=float, default=2.0, help="largest upload (default 2)")
    p.add_argument("--max-megapixels", type=float, default=16.0,
                   help="largest image accepted, in decoded pixels (default 16; Pillow's own "
                        "limit is 89)")
    p.add_argument("--max-decodes", type=int, default=2,
                   help="uploads decoded and answered at the same time (default 2)")
    p.add_argument("--timeout", type=float, default=20.0, metavar="SECONDS",
                   help="a request must arrive whole within this time (default 20)")
    p.add_argument("--max-connections", type=int, default=32,
                   help="open connections at once (8 per client address); past it the "
                        "oldest idle one is closed, or the new one gets 503 (default 32)")
    p.set_defaults(handler=cmd_serve)


def cmd_export(args) -> int:
    from e2e.errors import check_range
    from e2e.export import export_run

    check_range("--tolerance", args.tolerance, 0)
    manifest = export_run(args.run, args.format, args.out, args.tolerance, args.dynamo)
    print(f"exported {len(manifest['graphs'])} graph(s) of the {manifest['task']} model; "
          f"manifest: {(args.out or args.run.rstrip('/') + '/export')}/manifest.json")
    return 0


def cmd_serve(args) -> int:
    from e2e.serve import serve

    serve(args.runs, host=args.host, port=args.port, backend=args.backend,
          max_upload_mb=args.max_upload_mb, max_megapixels=args.max_megapixels,
          max_decodes=args.max_decodes, timeout_s=args.timeout,
          max_connections=args.max_connections)
    return 0

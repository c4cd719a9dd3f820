"""`e2e serve RUN... [--port P]`: a demo page per trained run, on 127.0.0.1 by default.

See `app.py` for how an application's serving side plugs its page in (`demo_input`,
`demo_answer`, optionally `demo_page(cfg, info)` for extra template values such as track seeds).

HTTP API (one page and one endpoint per loaded run, named after its folder):

    GET  /            the loaded models, with links to their pages
    GET  /m/NAME      the demo page: draw or upload an image, upload a WAV, type text,
                      pick a track
    POST /api/NAME    a form (multipart/form-data): field `file` (image, audio), `text` or
                      `choice` (a track seed); answers JSON {"model": NAME, "answer": {...}}
                      with `top` (label, p), `text`, or `gif` + `note`
    GET  /healthz     ok

Errors are JSON `{"error": "..."}`: 400 unreadable input, 404 no such model, 408 a request not
sent within `--timeout` (20 s), 413 over `--max-upload-mb` (2 MB) or `--max-megapixels` (16 MP,
read from the image header before decoding), 415 wrong type, 503 busy (at most `--max-decodes`
answers at once; `--max-connections` connections, 8 per address, idle ones closed first), 429
more than 4 requests at once from one address. Every answer carries a Content-Security-Policy,
X-Frame-Options, nosniff and Referrer-Policy; everything echoed back is escaped.

    curl -F file=@shoe.png http://127.0.0.1:8000/api/fashion-mnist
    curl -F text="The file could not be opened." http://127.0.0.1:8000/api/messages
"""

from __future__ import annotations

import errno
import socket
from pathlib import Path

from e2e.errors import E2EError

__all__ = ["check_port", "serve"]  # the app itself: e2e.serve.app (imported on use)


def check_port(host: str, port: int) -> None:
    """Fail now, with a clear message, if HOST:PORT cannot be bound."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise E2EError(f"port {port} on {host} is already in use; pick another with "
                               "--port (or stop the program using it)") from None
            raise E2EError(f"cannot listen on {host}:{port}: {e.strerror}") from None


def serve(runs: list[str | Path], host: str = "127.0.0.1", port: int = 8000,
          backend: str = "torch", max_upload_mb: float = 2.0, max_megapixels: float = 16.0,
          max_decodes: int = 2, timeout_s: float = 20.0, max_connections: int = 32) -> None:
    import uvicorn
    from PIL import Image

    from e2e.data import images
    from e2e.errors import check_range
    from e2e.serve.app import Limits, create_app, load_models
    from e2e.serve.limits import ConnectionLimits, limited_protocol

    if not runs:
        raise E2EError("name at least one run directory to serve")
    check_range("--port", port, 0, 65535)
    for name, value in (("--max-upload-mb", max_upload_mb), ("--max-megapixels", max_megapixels),
                        ("--max-decodes", max_decodes), ("--timeout", timeout_s),
                        ("--max-connections", max_connections)):
        check_range(name, value, 1e-3)
    check_port(host, port)
    models = load_models(runs, backend)
    limits = Limits(max_bytes=int(max_upload_mb * 2**20), max_pixels=int(max_megapixels * 1e6),
                    max_decodes=max_decodes)
    # Any decode that skipped the app's check still stops far below Pillow's 89 MP default;
    # the tasks' own image reading (e2e.data.images) takes this server's limit.
    Image.MAX_IMAGE_PIXELS = images.MAX_PIXELS = limits.max_pixels
    app = create_app(models, limits=limits)
    for name, m in models.items():
        print(f"{m.task.name:<8} {m.predictor.run.path}  ->  http://{host}:{port}/m/{name}")
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: listening on {host}: anyone who can reach this machine can use it")
    print(f"serving on http://{host}:{port}/  (Ctrl-C stops)", flush=True)
    # http: every request must arrive whole within timeout_s; idle connections are closed
    # first when one address, or all, hold too many (e2e.serve.limits)
    connections = ConnectionLimits(timeout_s=timeout_s, idle_s=min(5.0, timeout_s),
                                   max_connections=max_connections,
                                   max_per_client=min(8, max_connections))
    uvicorn.run(app, host=host, port=port, log_level="warning",
                http=limited_protocol(connections), timeout_keep_alive=5)

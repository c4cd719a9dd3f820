"""The demo web app: one page per loaded run, one JSON endpoint per page.

    GET  /            the loaded models
    GET  /m/NAME      the page: upload or draw an image, upload a WAV, type text, pick a track
    POST /api/NAME    multipart form: `file` (image, audio) or `text` / `choice` -> JSON answer
    GET  /healthz     "ok"

What a page shows is the application's business: its serving side names its kind of input
(`Serving.demo_input`: image | audio | text | track) and turns one input into a JSON answer
with `demo_answer(model, raw, cfg, info)` ({"top": [...]}, {"text": ...} or {"gif": data-URL}),
adding template values with `demo_page(cfg, info)` (the classes, the tracks). The
app only checks uploads (size or pixel count -> 413, type -> 415, unreadable -> 400) and
keeps serving after any bad request.

Hardening: every page is a Jinja template with autoescaping (no HTML is built from strings),
and JSON escapes <, > and & so nothing echoed (a model name, a filename) can become markup.
Every answer, refusals included, carries a Content-Security-Policy (scripts, styles and
requests from this server only), X-Frame-Options, nosniff and Referrer-Policy. Bodies over
`max_bytes` get 413, whether Content-Length says so or a chunked body grows past it. Images are
refused by their header's pixel count before any decoding; at most `max_decodes` uploads are
decoded or answered at once, the others wait (up to `wait_s`, then 503) without holding a
thread; one address has at most `max_requests_per_client` requests in progress (more: 429).
`/healthz` and the pages are answered on the event loop, never behind an upload. The
connection side (e2e.serve.limits) cuts off slow and idle clients and caps connections per
address.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader
from starlette.concurrency import run_in_threadpool

from e2e.data.images import MAX_PIXELS, TooManyPixels, open_image
from e2e.errors import E2EError
from e2e.serve.limits import SECURITY_HEADERS

HERE = Path(__file__).parent


def _check_image(data: io.BytesIO, max_pixels: int) -> None:
    """Refuse by the header's size (decoding nothing), then decode to prove it is whole."""
    with open_image(data, max_pixels=max_pixels) as img:  # TooManyPixels: by the header
        img.load()


def _check_wav(data: io.BytesIO, max_pixels: int) -> None:
    import soundfile

    soundfile.info(data)


@dataclass(frozen=True)
class InputKind:
    """What a page asks for and which uploads it accepts."""

    field: str  # the form field carrying the input
    types: tuple[str, ...] = ()  # accepted content types of an uploaded file
    label: str = ""
    # raises if the upload does not decode (or, for images, has over max_pixels pixels)
    check: Callable[[io.BytesIO, int], None] | None = None


KINDS = {
    "image": InputKind("file", ("image/png", "image/jpeg", "image/gif", "image/bmp",
                                "image/webp"), "PNG, JPEG, GIF, BMP or WebP image", _check_image),
    "audio": InputKind("file", ("audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave"),
                       "WAV file", _check_wav),
    "text": InputKind("text", label="text"),
    "track": InputKind("choice", label="track"),
}


@dataclass
class Loaded:
    """A run ready to answer: the predictor (PyTorch or exported) and its page's facts."""

    name: str
    predictor: Any  # e2e.api.Predictor or e2e.export.ExportedPredictor
    kind: str
    backend: str
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def task(self):
        return self.predictor.task

    def answer(self, raw: Any) -> dict:
        with self.lock, torch.no_grad():  # one request at a time: models are not re-entrant
            p = self.predictor
            return p.serving.demo_answer(p.model, raw, p.cfg, p.info)

    def page(self) -> dict[str, Any]:
        """What the page template needs besides the kind."""
        p = self.predictor
        return {"name": self.name, "task": self.task.name, "kind": self.kind,
                "backend": self.backend, "run": str(self.predictor.run.path),
                "accept": ",".join(KINDS[self.kind].types),
                "label": KINDS[self.kind].label, **p.serving.demo_page(p.cfg, p.info)}


def load_models(runs: list[str | Path], backend: str = "torch") -> dict[str, Loaded]:
    """Load each run (refusing runs that cannot have a page), named by its directory."""
    from e2e.api import Predictor
    from e2e.export import ExportedPredictor

    models: dict[str, Loaded] = {}
    for run in runs:
        predictor = Predictor(run) if backend == "torch" else ExportedPredictor(run, backend)
        task = predictor.task
        kind = predictor.serving.demo_input
        if kind not in KINDS:
            raise E2EError(f"{run}: the {task.name} application has no demo page "
                           f"(its Serving.demo_input is {kind!r}; pages exist for "
                           f"{', '.join(KINDS)})")
        name = base = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(run).resolve().name) or "model"
        n = 2
        while name in models:
            name, n = f"{base}-{n}", n + 1
        models[name] = Loaded(name, predictor, kind, backend)
    return models


class SecurityHeaders:
    """ASGI middleware, outermost: the security headers on every answer, the 413 of LimitBody
    and the app's errors included."""

    def __init__(self, app):
        self.app = app
        self.headers = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                names = {k for k, _ in self.headers}
                message = {**message, "headers": [
                    *(h for h in message.get("headers", []) if h[0].lower() not in names),
                    *self.headers]}
            await send(message)
        await self.app(scope, receive, send_with_headers)


class LimitBody:
    """ASGI middleware: refuse request bodies over `max_bytes` with 413, before reading them
    when Content-Length says so, and while streaming when it does not."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            # A modest overshoot is read and dropped first: closing on a client that is still
            # sending makes it see a broken pipe or reset instead of the 413 and its message.
            if int(length) <= 8 * self.max_bytes:
                await _drain(receive)
            return await self.too_large(send)
        seen = 0

        async def counted():  # the form parser sees _TooLarge; the endpoint answers 413
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge
            return message
        await self.app(scope, counted, send)

    async def too_large(self, send):
        await too_large(self.max_bytes)({"type": "http"}, None, send)


class _TooLarge(Exception):
    pass


def _too_large_in(e: BaseException) -> bool:
    """True if `e` is _TooLarge, or an exception group (the form parser writes files in a
    task group) holding one."""
    if isinstance(e, _TooLarge):
        return True
    return isinstance(e, BaseExceptionGroup) and any(_too_large_in(x) for x in e.exceptions)


async def _drain(receive) -> None:
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return


class SafeJSON(JSONResponse):
    """JSON with <, > and & escaped (as \\u003c ...): still the same JSON to any parser, but
    never markup, even to a browser that sniffs a response as HTML."""

    def render(self, content: Any) -> bytes:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
            text = text.replace(char, escaped)
        return text.encode()


def error(status: int, message: str) -> JSONResponse:
    return SafeJSON({"error": message}, status_code=status)


def too_large(max_bytes: int) -> JSONResponse:
    return error(413, f"upload too large: the limit is {max_bytes / 2**20:g} MB")


@dataclass(frozen=True)
class Limits:
    """What one request may cost the demo server."""

    max_bytes: int = 2 * 2**20  # upload size
    # decoded pixels per image (the limit `e2e predict` has too): far below Pillow's own bomb
    # limit of 89 MP, and 2 decodes at once stay within a few hundred MB
    max_pixels: int = MAX_PIXELS
    max_decodes: int = 2  # uploads decoded / answered at the same time
    wait_s: float = 30.0  # how long a request waits for a free decoder before 503
    max_requests_per_client: int = 4  # requests to /api in progress from one address


def create_app(models: dict[str, Loaded], max_bytes: int = 2 * 2**20,
               limits: Limits | None = None) -> FastAPI:
    limits = limits or Limits(max_bytes=max_bytes)
    max_bytes = limits.max_bytes
    app = FastAPI(title="e2e demo", docs_url=None, redoc_url=None, openapi_url=None)
    templates = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    decoders = asyncio.Semaphore(limits.max_decodes)  # waiters hold no thread
    in_progress: dict[str, int] = {}  # requests to /api per client address

    def render(template: str, status: int = 200, **context) -> HTMLResponse:
        pages = [m.page() for m in models.values()]
        return HTMLResponse(templates.get_template(template).render(pages=pages, **context),
                            status_code=status)

    async def decoded_and_answered(m: Loaded, kind: InputKind, raw: Any, what: str
                                   ) -> JSONResponse:
        """At most `max_decodes` at once, in worker threads: check the upload, answer it."""
        try:
            await asyncio.wait_for(decoders.acquire(), limits.wait_s)
        except TimeoutError:
            return error(503, f"the server is busy (all {limits.max_decodes} decoders taken "
                              f"for {limits.wait_s:g}s); try again")
        try:
            return await run_in_threadpool(decode_and_answer, m, kind, raw, what)
        finally:
            decoders.release()

    def decode_and_answer(m: Loaded, kind: InputKind, raw: Any, what: str) -> JSONResponse:
        if kind.check is not None:
            try:
                kind.check(raw, limits.max_pixels)
            except TooManyPixels as e:
                return error(413, f"{what}: {e}")
            except Exception as e:  # noqa: BLE001 - any decoder error means a bad upload
                reason = str(e).replace(repr(raw), what)
                return error(400, f"{what} is not a readable {kind.label}: {reason}")
            raw.seek(0)
        try:
            return SafeJSON({"model": m.name, "answer": m.answer(raw)})
        except E2EError as e:
            return error(400, f"could not use {what}: {e}")

    # async: answered on the event loop, never waiting for a worker thread behind uploads
    @app.get("/", response_class=HTMLResponse)
    async def index():
        return render("index.html")

    @app.get("/healthz", response_class=PlainTextResponse)
    async def healthz():
        return "ok"

    @app.get("/m/{name}", response_class=HTMLResponse)
    async def page(name: str):
        if name not in models:
            return render("missing.html", status=404, name=name)
        m = models[name]
        return render(f"{m.kind}.html", page=m.page())

    @app.post("/api/{name}")
    async def answer(name: str, request: Request):
        client = request.client.host if request.client else "?"
        if in_progress.get(client, 0) >= limits.max_requests_per_client:
            return error(429, f"too many requests at once from your address (the limit is "
                              f"{limits.max_requests_per_client}); wait for their answers")
        in_progress[client] = in_progress.get(client, 0) + 1
        try:
            return await answer_one(name, request)
        finally:
            in_progress[client] -= 1
            if not in_progress[client]:
                del in_progress[client]

    async def answer_one(name: str, request: Request):
        if name not in models:
            return error(404, f"no model named '{name}'; loaded: {', '.join(models)}")
        m = models[name]
        kind = KINDS[m.kind]
        if not request.headers.get("content-type", "").startswith(("multipart/form-data",
                                                                   "application/x-www-form")):
            return error(415, "send a form (multipart/form-data), field "
                              f"'{kind.field}' with the {kind.label}")
        try:
            form = await request.form(max_files=1, max_fields=4, max_part_size=max_bytes)
        except Exception as e:  # noqa: BLE001 - a malformed form is the client's error
            if _too_large_in(e):  # a chunked body past max_bytes, however the parser wraps it
                return too_large(max_bytes)
            return error(400, f"could not read the form: {e}")
        value = form.get(kind.field)
        if getattr(value, "filename", None) == "" and not value.size:  # an empty file input
            value = None
        if value is None or value == "":
            return error(400, f"missing form field '{kind.field}' (the {kind.label})")
        if kind.types:
            if isinstance(value, str):
                return error(400, f"'{kind.field}' must be an uploaded {kind.label}")
            ctype = (value.content_type or "").split(";")[0].strip().lower()
            if ctype not in kind.types:
                return error(415, f"unsupported file type '{ctype or 'unknown'}' for "
                                  f"{value.filename}: upload a {kind.label}")
            raw: Any = io.BytesIO(await value.read())
            what = value.filename or "the upload"
        else:
            what = f"the {kind.label}"
            raw = value
            if not isinstance(value, str):  # a file sent as the text field
                what = value.filename or what
                data = await value.read()
                try:
                    raw = data.decode()
                except UnicodeDecodeError as e:
                    return error(400, f"{what} is not UTF-8 text (byte 0x{data[e.start]:02x} at "
                                      f"offset {e.start}); send the text as UTF-8")
        return await decoded_and_answered(m, kind, raw, what)

    return SecurityHeaders(LimitBody(app, max_bytes))

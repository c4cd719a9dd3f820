"""The demo web app: one page per loaded run, one JSON endpoint per page.

    GET  /            the loaded models
    GET  /m/NAME      the page: upload or draw an image, upload a WAV, type text, pick a track
    POST /api/NAME    multipart form: `file` (image, audio) or `text` / `choice` -> JSON answer
    GET  /healthz     "ok"

What a page shows is the task's business: a task names its kind of input
(`demo_input`: image | audio | text | track) and turns one input into a JSON answer with
`demo_answer(model, raw, info)` ({"top": [...]}, {"text": ...} or {"gif": data-URL}). The
app only checks uploads (size -> 413, type -> 415, unreadable -> 400) and keeps serving
after any bad request.
"""

from __future__ import annotations

import io
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
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

from e2e.errors import E2EError

HERE = Path(__file__).parent


def _check_image(data: io.BytesIO) -> None:
    from PIL import Image

    with Image.open(data) as img:
        img.load()


def _check_wav(data: io.BytesIO) -> None:
    import soundfile

    soundfile.info(data)


@dataclass(frozen=True)
class InputKind:
    """What a page asks for and which uploads it accepts."""

    field: str  # the form field carrying the input
    types: tuple[str, ...] = ()  # accepted content types of an uploaded file
    label: str = ""
    check: Callable[[io.BytesIO], None] | None = None  # raises if the upload does not decode


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
            return self.task.demo_answer(self.predictor.model, raw, self.predictor.info)

    def page(self) -> dict[str, Any]:
        """What the page template needs besides the kind."""
        info = self.predictor.info
        extra = getattr(self.task, "demo_page", None)
        return {"name": self.name, "task": self.task.name, "kind": self.kind,
                "backend": self.backend, "run": str(self.predictor.run.path),
                "classes": info.get("classes"), "accept": ",".join(KINDS[self.kind].types),
                "label": KINDS[self.kind].label, **(extra(info) if extra else {})}


def load_models(runs: list[str | Path], backend: str = "torch") -> dict[str, Loaded]:
    """Load each run (refusing runs that cannot have a page), named by its directory."""
    from e2e.api import Predictor
    from e2e.export import ExportedPredictor

    models: dict[str, Loaded] = {}
    for run in runs:
        predictor = Predictor(run) if backend == "torch" else ExportedPredictor(run, backend)
        task = predictor.task
        kind = getattr(task, "demo_input", None)
        if kind not in KINDS or not hasattr(task, "demo_answer"):
            raise E2EError(f"{run}: the {task.name} application has no demo page yet "
                           "(its task has no demo_input / demo_answer)")
        name = base = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(run).resolve().name) or "model"
        n = 2
        while name in models:
            name, n = f"{base}-{n}", n + 1
        models[name] = Loaded(name, predictor, kind, backend)
    return models


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


async def _drain(receive) -> None:
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def too_large(max_bytes: int) -> JSONResponse:
    return error(413, f"upload too large: the limit is {max_bytes / 2**20:g} MB")


def create_app(models: dict[str, Loaded], max_bytes: int = 2 * 2**20) -> FastAPI:
    app = FastAPI(title="e2e demo", docs_url=None, redoc_url=None, openapi_url=None)
    templates = Environment(loader=FileSystemLoader(HERE / "templates"),
                            autoescape=select_autoescape())
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    def render(name: str, **context) -> HTMLResponse:
        pages = [m.page() for m in models.values()]
        return HTMLResponse(templates.get_template(name).render(pages=pages, **context))

    @app.get("/", response_class=HTMLResponse)
    def index():
        return render("index.html")

    @app.get("/healthz", response_class=PlainTextResponse)
    def healthz():
        return "ok"

    @app.get("/m/{name}", response_class=HTMLResponse)
    def page(name: str):
        if name not in models:
            return HTMLResponse(f"no model named {name}", status_code=404)
        m = models[name]
        return render(f"{m.kind}.html", page=m.page())

    @app.post("/api/{name}")
    async def answer(name: str, request: Request):
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
        except _TooLarge:
            return too_large(max_bytes)
        except Exception as e:  # noqa: BLE001 - a malformed form is the client's error
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
            try:
                kind.check(raw)
            except Exception as e:  # noqa: BLE001 - any decoder error means a bad upload
                reason = str(e).replace(repr(raw), what)
                return error(400, f"{what} is not a readable {kind.label}: {reason}")
            raw.seek(0)
        else:
            raw = value if isinstance(value, str) else (await value.read()).decode()
            what = f"the {kind.label}"
        try:
            result = await run_in_threadpool(m.answer, raw)
        except E2EError as e:
            return error(400, f"could not use {what}: {e}")
        return JSONResponse({"model": name, "answer": result})

    return LimitBody(app, max_bytes)

"""X-Request-ID: taken from the client when sane, else made up; returned on every response and
put in the log context (and, by the submit path, in the task's headers)."""

from __future__ import annotations

import re
import uuid

from flask import Flask, Response, g, request

from common.logs import request_id_var

HEADER = "X-Request-ID"
_ACCEPTABLE = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def current_request_id() -> str:
    return g.request_id


def register_request_id(app: Flask) -> None:
    @app.before_request
    def _take_request_id() -> None:
        offered = request.headers.get(HEADER, "")
        g.request_id = offered if _ACCEPTABLE.match(offered) else uuid.uuid4().hex
        g.request_id_token = request_id_var.set(g.request_id)

    @app.after_request
    def _return_request_id(response: Response) -> Response:
        if "request_id" in g:
            response.headers[HEADER] = g.request_id
        return response

    @app.teardown_request
    def _forget_request_id(_: BaseException | None) -> None:
        token = g.pop("request_id_token", None)
        if token is not None:
            request_id_var.reset(token)

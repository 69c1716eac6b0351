"""A small HTTP client for the CLI's ``--server URL`` mode."""

from __future__ import annotations

from typing import Any

import httpx

from msearch.errors import MSearchError


class ServerClient:
    def __init__(self, base_url: str, api_key: str | None = None, timeout: float = 120) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise MSearchError(
                f"cannot reach the msearch server: {exc}", code="server_unreachable"
            ) from exc
        body = (
            response.json()
            if response.headers.get("content-type", "").startswith("application/json")
            else {}
        )
        if response.status_code >= 400:
            error = body.get("error", {}) if isinstance(body, dict) else {}
            raise MSearchError(
                error.get("message", f"HTTP {response.status_code}"),
                code=error.get("code", "http_error"),
            )
        return body

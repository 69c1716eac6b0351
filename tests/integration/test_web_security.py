"""What a hostile web page can make a browser do: DNS rebinding, cross-site requests,
framing, stolen or stale session cookies, guessing the key."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from support.app import api_client

from msearch.api.security import FailedKeyThrottle, SessionStore, host_allowed
from msearch.config import Settings
from msearch.embedding.infinity import InfinityEngine
from msearch.errors import TooManyAttempts

KEY = "right-key"


@pytest.fixture
async def keyless(
    make_settings: Callable[..., Settings], tiny_engine: InfinityEngine
) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(make_settings(), tiny_engine) as client:
        yield client


@pytest.fixture
async def keyed(
    make_settings: Callable[..., Settings], tiny_engine: InfinityEngine
) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(make_settings(api={"api_key": KEY}), tiny_engine) as client:
        yield client


def _error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


async def test_dns_rebinding_names_are_refused(keyless: httpx.AsyncClient) -> None:
    """The reported attack: no key on loopback, ``Host: evil.example``, reset."""
    evil = {"Host": "evil.example"}
    _error(
        await keyless.post("/api/v1/system/reset", json={"reset_type": "all"}, headers=evil),
        400,
        "host_not_allowed",
    )
    _error(await keyless.get("/api/v1/files", headers=evil), 400, "host_not_allowed")
    _error(await keyless.get("/", headers={"Host": "evil.example:8000"}), 400, "host_not_allowed")
    for host in ("localhost:8000", "127.0.0.1:8000", "[::1]:8000", "localhost"):
        assert (await keyless.get("/health", headers={"Host": host})).status_code == 200


def test_allowed_host_names(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(api={"allowed_hosts": ["media.example.org"]})
    assert host_allowed("media.example.org:8000", settings)
    assert host_allowed("MEDIA.example.org.", settings)
    assert host_allowed("192.168.1.5:8000", settings)  # a literal address cannot rebind
    assert not host_allowed("evil.example", settings)
    assert not host_allowed("", settings)
    assert host_allowed("anything", make_settings(api={"allowed_hosts": ["*"]}))


async def test_cross_site_changes_are_refused(keyless: httpx.AsyncClient) -> None:
    reset = {"reset_type": "index"}
    for headers in (
        {"Origin": "http://evil.example"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "null"},
    ):
        _error(
            await keyless.post("/api/v1/system/reset", json=reset, headers=headers),
            403,
            "forbidden",
        )
    same = {"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"}
    assert (await keyless.post("/api/v1/system/reset", json=reset, headers=same)).status_code == 200
    # reading stays possible (a cross-site page cannot read the answer anyway)
    assert (
        await keyless.get("/api/v1/files", headers={"Sec-Fetch-Site": "cross-site"})
    ).status_code == 200


async def test_security_headers(keyless: httpx.AsyncClient) -> None:
    for path in ("/", "/health", "/api/v1/files", "/ui/app.js", "/nope"):
        response = await keyless.get(path)
        assert response.headers["x-content-type-options"] == "nosniff", path
        assert response.headers["x-frame-options"] == "DENY", path
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"], path
    page = (await keyless.get("/")).headers["content-security-policy"]
    assert "default-src 'self'" in page and "unsafe-inline" not in page


async def test_sessions_are_random_server_side_and_revocable(keyed: httpx.AsyncClient) -> None:
    _error(await keyed.post("/api/v1/session", json={"api_key": "wrong"}), 401, "unauthorized")
    first = await keyed.post("/api/v1/session", json={"api_key": KEY})
    assert first.status_code == 204
    token = keyed.cookies["msearch_session"]
    assert KEY not in token and len(token) >= 40
    assert (await keyed.get("/api/v1/files")).status_code == 200  # the cookie works
    keyed.cookies.clear()
    assert (await keyed.post("/api/v1/session", json={"api_key": KEY})).status_code == 204
    assert keyed.cookies["msearch_session"] != token  # a new session, a new token
    second = keyed.cookies["msearch_session"]
    # logout revokes the token itself: a copy kept by an attacker stops working too
    assert (await keyed.delete("/api/v1/session")).status_code == 204
    keyed.cookies.clear()
    keyed.cookies.set("msearch_session", second)
    _error(await keyed.get("/api/v1/files"), 401, "unauthorized")
    keyed.cookies.clear()
    keyed.cookies.set("msearch_session", token)  # the first one is still its own session
    assert (await keyed.get("/api/v1/files")).status_code == 200
    keyed.cookies.clear()
    keyed.cookies.set("msearch_session", "forged")
    _error(await keyed.get("/api/v1/files"), 401, "unauthorized")


async def test_a_cookie_session_cannot_change_things_cross_site(keyed: httpx.AsyncClient) -> None:
    assert (await keyed.post("/api/v1/session", json={"api_key": KEY})).status_code == 204
    _error(
        await keyed.post(
            "/api/v1/system/reset",
            json={"reset_type": "index"},
            headers={"Sec-Fetch-Site": "cross-site"},
        ),
        403,
        "forbidden",
    )
    _error(
        await keyed.post(
            "/api/v1/session", json={"api_key": KEY}, headers={"Origin": "http://evil.example"}
        ),
        403,
        "forbidden",
    )


async def test_wrong_keys_are_throttled_per_client(keyed: httpx.AsyncClient) -> None:
    wrong = {"Authorization": "Bearer guess"}
    statuses = [(await keyed.get("/api/v1/files", headers=wrong)).status_code for _ in range(30)]
    assert statuses[:5] == [401] * 5
    assert statuses.count(429) >= 20
    throttled = await keyed.get("/api/v1/files", headers={"Authorization": f"Bearer {KEY}"})
    _error(throttled, 429, "too_many_attempts")  # even the right key waits its turn
    assert int(throttled.headers["retry-after"]) >= 1


def test_session_expiry_and_throttle_back_off() -> None:
    now = [0.0]
    sessions = SessionStore(60, clock=lambda: now[0])
    token = sessions.open()
    now[0] = 59
    assert sessions.valid(token)  # use extends it
    now[0] = 118
    assert sessions.valid(token)
    now[0] = 179
    assert not sessions.valid(token)  # idle for 61 s
    throttle = FailedKeyThrottle(free=2, max_wait_s=8, clock=lambda: now[0])
    for _ in range(2):
        throttle.failed("a")
        throttle.check("a")
    waits = []
    for _ in range(6):
        throttle.failed("a")
        with pytest.raises(TooManyAttempts) as caught:
            throttle.check("a")
        waits.append(caught.value.retry_after)
    assert waits == [1, 2, 4, 8, 8, 8]
    throttle.check("b")  # another client is not slowed down
    now[0] += 9
    throttle.check("a")
    throttle.succeeded("a")
    throttle.failed("a")
    throttle.check("a")

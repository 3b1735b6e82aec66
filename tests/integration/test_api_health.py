from litestar.testing import AsyncTestClient

from apps.api.app import create_app
from apps.core.settings import Settings


async def test_health_and_ready_report_every_connection(settings: Settings) -> None:
    async with AsyncTestClient(app=create_app(settings)) as client:
        assert (await client.get("/health")).json() == {"status": "ok"}
        response = await client.get("/ready")
        assert response.status_code == 200
        assert response.json() == {
            "status": "ready",
            "checks": {"nats": True, "redis": True, "mongodb": True},
        }


async def test_ready_says_which_dependency_is_down(settings: Settings) -> None:
    from dataclasses import replace

    from apps.core.embedded import free_port

    broken = replace(settings, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    async with AsyncTestClient(app=create_app(broken)) as client:
        response = await client.get("/ready")
        assert response.status_code == 503
        assert response.json()["checks"] == {"nats": True, "redis": False, "mongodb": True}


async def test_the_built_dashboard_is_served_with_history_mode_fallback(
    settings: Settings,
) -> None:
    from apps.api.frontend import DIST

    assert (DIST / "index.html").is_file(), "./dev test builds the dashboard first"
    async with AsyncTestClient(app=create_app(settings)) as client:
        home = await client.get("/")
        deep = await client.get("/channels/some-id")
        assert home.status_code == deep.status_code == 200
        assert deep.text == home.text and '<div id="app">' in home.text
        assert (await client.get("/missing.js")).status_code == 404
        assert (await client.get("/api/v1/nothing")).status_code == 404
        asset = next((DIST / "assets").glob("*.js")).name
        response = await client.get(f"/assets/{asset}")
        assert response.status_code == 200
        assert "immutable" in response.headers["cache-control"]


async def test_cors_allows_only_the_configured_origins(settings: Settings) -> None:
    from dataclasses import replace

    app = create_app(replace(settings, cors_origins="https://dash.example"))
    async with AsyncTestClient(app=app) as client:
        allowed = await client.options(
            "/api/v1/me",
            headers={
                "Origin": "https://dash.example",
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        assert allowed.headers.get("access-control-allow-origin") == "https://dash.example"
        assert allowed.headers.get("access-control-allow-credentials") == "true"
        other = await client.get("/health", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers

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

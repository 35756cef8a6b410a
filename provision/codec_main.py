"""The codec server's main (`provision codec-server`): the Temporal UI and CLI decode through it."""

from __future__ import annotations

import sys

from provision.client import codec_settings, key_ring_for
from provision.settings import Settings
from provision.signals import stop_requested


def codec_app_for(settings: Settings, origins: list[str]):
    """The codec server app, configured from settings (keys, token, CORS, namespaces)."""
    from codec.server import build_codec_app

    settings = codec_settings(settings)
    key_ring = key_ring_for(settings)
    token = settings.codec_auth_token.get_secret_value() if settings.codec_auth_token else None
    return build_codec_app(
        key_ring=key_ring,
        compress=settings.compress_payloads,
        cors_origins=sorted({*origins, *settings.codec_cors_origins}),
        auth_token=token or None,
        allowed_namespaces=settings.codec_namespaces or None,
    )


def ui_origins(settings: Settings, ui_port: int | None = None) -> list[str]:
    origins = {settings.ui_url.rstrip("/")}
    if ui_port:
        origins |= {f"http://localhost:{ui_port}", f"http://127.0.0.1:{ui_port}"}
    return sorted(origins)


async def run_codec_server_main(settings: Settings, host: str, port: int, web: list[str]) -> int:
    from codec.server import run_codec_server

    app = codec_app_for(settings, web or ui_origins(settings))
    runner = await run_codec_server(app, host, port)
    print(f"codec server on http://{host}:{port}  (routes /encryption_codec/encode|decode)")
    sys.stdout.flush()
    await stop_requested().wait()
    await runner.cleanup()
    return 0

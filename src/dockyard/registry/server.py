"""The registry as a configured server: configuration, create_app(), serve().

Configuration is a JSON file, the command line, or both (flags win):

    {
      "addr": "127.0.0.1:5000",
      "root": "/var/lib/dockyard-registry",
      "tls": {"cert": "server.crt", "key": "server.key"},
      "auth": {
        "htpasswd": "/etc/dockyard/htpasswd",
        "realm": "dockyard registry",
        "token": {"key_file": "token.key", "service": "dockyard-registry",
                  "issuer": "dockyard-registry", "realm": "https://host:5000/token"}
      },
      "read_only": false,
      "s3": {"bucket": "images", "region": "eu-west-1", "endpoint": null,
             "prefix": "registry", "access_key": null, "secret_key": null},
      "proxy": {"remoteurl": "https://registry-1.docker.io",
                "username": null, "password": null},
      "maintenance": {"uploadpurging": {"enabled": true, "age": "168h",
                                        "interval": "24h", "dryrun": false}}
    }

Without `auth` anyone may pull and push (bind to 127.0.0.1 then). With an
htpasswd file alone, clients use basic auth on every request. With `token`,
clients are sent to the token endpoint this server serves at `/token`
(`realm` defaults to it), which checks the htpasswd file (if any) and signs
tokens with the HMAC key in `key_file`.

Storage is the filesystem under `root`, or, with `s3`, a bucket (s3.py; then
`root` is not needed; keys absent or null take boto3's defaults, credentials
its usual chain). With `proxy`, the registry is a pull-through cache of the
registry at `remoteurl` (proxy.py) and refuses pushes.

`maintenance.uploadpurging` is distribution's setting of the same name, with
its defaults: every `interval` the server deletes upload sessions idle for
longer than `age` (uploads.py), the first time after a random delay of up to
an hour (or the interval, if shorter), so that registries sharing storage and
started together do not all purge at once. Durations are Go's ("45m",
"2h10m", "168h") or a number of seconds. With `dryrun` the sessions are only
logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import re
import signal
import ssl
import time
from dataclasses import dataclass, field

from aiohttp import web

from dockyard.registry.app import EXECUTOR, build_app
from dockyard.registry.auth import (AccessController, AllowAll, BasicAuth, Htpasswd, TokenAuth,
                                    TokenConfig, TokenServer)
from dockyard.registry.driver import StorageDriver
from dockyard.registry.filesystem import FilesystemDriver
from dockyard.registry.proxy import Proxy, ProxySettings, Upstream
from dockyard.registry.s3 import S3Settings
from dockyard.registry.storage import Registry

log = logging.getLogger(__name__)

DEFAULT_ADDR = "127.0.0.1:5000"
DEFAULT_REALM = "dockyard registry"


@dataclass
class TokenSettings:
    key_file: str
    service: str = "dockyard-registry"
    issuer: str = "dockyard-registry"
    realm: str | None = None
    expiration: int = 300


@dataclass
class UploadPurging:
    """distribution's storage.maintenance.uploadpurging; durations in seconds."""
    enabled: bool = True
    age: float = 168 * 3600
    interval: float = 24 * 3600
    dry_run: bool = False


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0,
                 "h": 3600.0}


class InvalidDuration(ValueError):
    pass


def parse_duration(value: str | int | float) -> float:
    """Seconds in a Go duration ("168h", "2h10m", "1.5s") or a number of seconds;
    InvalidDuration unless it is positive."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and value and re.fullmatch(
            f"(?:{_DURATION_PART.pattern})+", value):
        seconds = sum(float(n) * _UNIT_SECONDS[unit]
                      for n, unit in _DURATION_PART.findall(value))
    else:
        raise InvalidDuration(f"invalid duration {value!r}: expected e.g. \"168h\" or "
                              "\"45m\"")
    if seconds <= 0:
        raise InvalidDuration(f"invalid duration {value!r}: it must be positive")
    return seconds


def _upload_purging(raw: dict) -> UploadPurging:
    """The `uploadpurging` section; absent keys keep distribution's defaults."""
    settings = UploadPurging()
    if "enabled" in raw:
        settings.enabled = bool(raw["enabled"])
    if "age" in raw:
        settings.age = parse_duration(raw["age"])
    if "interval" in raw:
        settings.interval = parse_duration(raw["interval"])
    if "dryrun" in raw:
        settings.dry_run = bool(raw["dryrun"])
    return settings


@dataclass
class Config:
    root: str  # "" when the storage is S3
    addr: str = DEFAULT_ADDR
    tls_cert: str | None = None
    tls_key: str | None = None
    htpasswd: str | None = None
    realm: str = DEFAULT_REALM
    token: TokenSettings | None = None
    read_only: bool = False
    s3: S3Settings | None = None
    proxy: ProxySettings | None = None
    upload_purging: UploadPurging = field(default_factory=UploadPurging)

    @property
    def scheme(self) -> str:
        return "https" if self.tls_cert else "http"

    def host_port(self) -> tuple[str, int]:
        host, sep, port = self.addr.rpartition(":")
        if not sep or not port.isdigit():
            raise ValueError(f"invalid address {self.addr!r}: expected host:port")
        return host.strip("[]") or "0.0.0.0", int(port)


def load_config(path: str) -> dict:
    """The JSON configuration file as a dict of Config's fields."""
    with open(path, encoding="utf-8") as f:
        raw = json.load(f)
    fields: dict = {}
    for key in ("addr", "root", "read_only"):
        if key in raw:
            fields[key] = raw[key]
    tls = raw.get("tls") or {}
    fields.update({k: v for k, v in (("tls_cert", tls.get("cert")),
                                     ("tls_key", tls.get("key"))) if v})
    auth = raw.get("auth") or {}
    if auth.get("htpasswd"):
        fields["htpasswd"] = auth["htpasswd"]
    if auth.get("realm"):
        fields["realm"] = auth["realm"]
    if auth.get("token"):
        fields["token"] = TokenSettings(**auth["token"])
    if raw.get("s3"):
        fields["s3"] = S3Settings(**{k: v for k, v in raw["s3"].items() if v is not None})
    if raw.get("proxy"):
        fields["proxy"] = ProxySettings(**raw["proxy"])
    purging = (raw.get("maintenance") or {}).get("uploadpurging")
    if purging is not None:
        fields["upload_purging"] = _upload_purging(purging)
    return fields


def open_driver(config: Config) -> StorageDriver:
    """The storage `config` names: an S3 bucket, else the filesystem under `root`."""
    if config.s3 is not None:
        from dockyard.registry.s3 import S3Driver  # boto3: only for S3 storage

        return S3Driver(config.s3)
    return FilesystemDriver(config.root)


def _access(config: Config) -> tuple[AccessController, TokenServer | None]:
    htpasswd = Htpasswd.load(config.htpasswd) if config.htpasswd else None
    if config.token is not None:
        with open(config.token.key_file, "rb") as f:
            key = f.read().strip()
        if len(key) < 16:
            raise ValueError(f"{config.token.key_file}: a token key needs at least 16 bytes")
        realm = config.token.realm or f"{config.scheme}://{config.addr}/token"
        token = TokenConfig(realm, config.token.service, config.token.issuer, key,
                            config.token.expiration)
        return TokenAuth(token), TokenServer(token, htpasswd)
    if htpasswd is not None:
        return BasicAuth(htpasswd, config.realm), None
    return AllowAll(), None


def create_app(config: Config, driver: StorageDriver | None = None) -> web.Application:
    """The registry's aiohttp application for `config` (storage: the driver
    `config` names unless another driver is given)."""
    registry = Registry(driver or open_driver(config))
    access, tokens = _access(config)
    proxy = Proxy(registry, Upstream(config.proxy)) if config.proxy else None
    app = build_app(registry, access, config.read_only, tokens, proxy=proxy)
    if config.upload_purging.enabled:
        app.cleanup_ctx.append(_upload_purger(registry, config.upload_purging))
    return app


def _upload_purger(registry: Registry, settings: UploadPurging):
    """A cleanup context that purges stale upload sessions while the app runs."""

    async def purger(app: web.Application):
        task = asyncio.create_task(_purge_periodically(app, registry, settings))
        yield
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass

    return purger


async def _purge_periodically(app: web.Application, registry: Registry,
                              settings: UploadPurging) -> None:
    loop = asyncio.get_running_loop()
    delay = random.uniform(0, min(settings.interval, 3600.0))
    log.info("registry: purging upload sessions idle for %.0f s, first in %.0f s, then "
             "every %.0f s", settings.age, delay, settings.interval)
    while True:
        await asyncio.sleep(delay)
        older_than = time.time() - settings.age
        try:
            purged = await loop.run_in_executor(app[EXECUTOR], registry.uploads.purge,
                                                older_than, settings.dry_run)
        except Exception:  # a failed purge (storage down) is retried next interval
            log.exception("registry: purging upload sessions failed")
        else:
            verb = "would purge" if settings.dry_run else "purged"
            for info in purged:
                log.info("registry: %s upload %s of %s (idle more than %.0f s)", verb,
                         info.uuid, info.repository or "?", settings.age)
        delay = settings.interval


def ssl_context(config: Config) -> ssl.SSLContext | None:
    if not config.tls_cert:
        return None
    if not config.tls_key:
        raise ValueError("a TLS certificate needs its key (--tls-key)")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(config.tls_cert, config.tls_key)
    return context


async def start(config: Config, driver: StorageDriver | None = None) -> web.AppRunner:
    """Start serving in the running loop; `await runner.cleanup()` stops it."""
    if config.root:
        os.makedirs(config.root, exist_ok=True)
    runner = web.AppRunner(create_app(config, driver), access_log=None)
    await runner.setup()
    host, port = config.host_port()
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context(config),
                       reuse_address=True)
    await site.start()
    storage = f"s3://{config.s3.bucket}/{config.s3.prefix}" if config.s3 else config.root
    log.info("registry serving %s://%s (storage %s%s)", config.scheme, config.addr, storage,
             f", a cache of {config.proxy.remoteurl}" if config.proxy else "")
    return runner


def serve(config: Config) -> None:
    """Serve until SIGINT or SIGTERM (blocking): what `dockyard registry serve` calls."""

    async def main() -> None:
        runner = await start(config)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()

    asyncio.run(main())

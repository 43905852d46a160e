"""The Testbed: two Keystones and four Glance API servers on 127.0.0.1.

Keystone ``keystone-1`` holds regions Spain2 (master), Trento and Lannion; a second,
independent Keystone ``keystone-2`` holds Madrid.  Everything lives in ``workdir``,
described by ``<workdir>/testbed.json`` so another process (CLI, tests) can use it.
"""

from __future__ import annotations

import getpass
import grp
import hashlib
import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from testbed import broker, clientfiles, config, servers, tls
from testbed.errors import TestbedError
from testbed.identity import KeystoneAdmin
from testbed.servers import Server
from testbed.venv import ensure_venv

# keystone name -> its regions, the first being the one served next to it as master.
TOPOLOGY: dict[str, list[str]] = {
    "keystone-1": ["Spain2", "Trento", "Lannion"],
    "keystone-2": ["Madrid"],
}
MASTER_REGION = "Spain2"
# The two file stores of a multi-store region (``start(multi_store=...)``), default first.
MULTI_STORES = ("fast", "slow")
# Servers that also get a TLS front, registered as their cloud's ``internal`` endpoint
# (issue 13); the plain HTTP URL stays the ``public`` one, so other tests are untouched.
TLS_FRONTS = ("keystone-1", "keystone-2", "glance-Madrid")
APP_CREDENTIAL_NAME = "glancesync-testbed"
SERVICE_PASSWORD = "glance-service-pw"
STATE_FILE = "testbed.json"


def _layout_hash() -> str:
    """Hash of the code that shapes the servers: a running testbed from older code is redone."""
    digest = hashlib.sha256()
    modules = (
        "config.py",
        "core.py",
        "broker.py",
        "tls.py",
        "tlsrelay.py",
        "identity.py",
        "clientfiles.py",
    )
    for module in modules:
        digest.update((Path(__file__).parent / module).read_bytes())
    return digest.hexdigest()[:12]


def _glance_name(region: str) -> str:
    return f"glance-{region}"


def _keystone_creds(name: str, url: str) -> dict[str, Any]:
    """Fixed, documented credentials: this is a throw-away loopback testbed."""
    suffix = name.rsplit("-", 1)[-1]
    return {
        "url": url,
        "admin": {
            "username": "admin",
            "password": f"admin-pw-{suffix}",
            "project_name": "admin",
            "user_domain_name": "Default",
            "project_domain_name": "Default",
        },
        "demo": {
            "username": "demo",
            "password": f"demo-pw-{suffix}",
            "project_name": "demo",
            "user_domain_name": "Default",
            "project_domain_name": "Default",
        },
    }


class Testbed:
    """Start, inspect, fault-inject and stop the local OpenStack testbed."""

    __test__ = False  # keep pytest from collecting this class

    def __init__(self, workdir: str | os.PathLike[str], threads: int = 8) -> None:
        self.workdir = Path(workdir).resolve()
        self.threads = threads
        self.info: dict[str, Any] = {}
        self.servers: dict[str, Server] = {}
        self.venv: Path | None = None
        # TOPOLOGY, plus the extra regions of the master's Keystone a start asked for
        self.topology: dict[str, list[str]] = {k: list(v) for k, v in TOPOLOGY.items()}
        self.multi_store: tuple[str, ...] = ()  # regions with the stores MULTI_STORES
        self._load()

    # ---- state -----------------------------------------------------------------
    @property
    def state_file(self) -> Path:
        return self.workdir / STATE_FILE

    def _load(self) -> None:
        if self.state_file.is_file():
            self.info = json.loads(self.state_file.read_text())
            self.servers = {n: Server.from_dict(s) for n, s in self.info["servers"].items()}
            self.venv = Path(self.info["venv"])
            self.topology = self.info.get("topology", self.topology)
            self.multi_store = tuple(self.info.get("multi_store") or ())

    def _save(self) -> None:
        for name, server in self.servers.items():
            self.info["servers"][name] = server.to_dict()
        for region, data in self.info.get("regions", {}).items():
            data["pid"] = self.servers[_glance_name(region)].pid
        for name, data in self.info.get("keystones", {}).items():
            data["pid"] = self.servers[name].pid
        self.workdir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.info, indent=2, sort_keys=True) + "\n")
        tmp.replace(self.state_file)

    def running(self) -> bool:
        """True if every server process of the saved state is alive and answers."""
        return bool(self.servers) and all(
            servers.alive(s.pid) and servers.answers(s.url + "/") for s in self.servers.values()
        )

    def status(self) -> dict[str, dict[str, Any]]:
        return {
            name: {
                "url": s.url,
                "pid": s.pid,
                "alive": servers.alive(s.pid),
                "answers": servers.answers(s.url + "/", timeout=1.0),
            }
            for name, s in self.servers.items()
        }

    # ---- whole testbed ---------------------------------------------------------
    def start(
        self,
        token_expiration: int = 3600,
        extra_regions: tuple[str, ...] = (),
        multi_store: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        """Start everything (installing the venv if needed); reuse a matching running one.

        ``extra_regions``: more regions of the master's Keystone (keystone-1), after
        Trento and Lannion (the server-side copy benchmark wants three).
        ``multi_store``: regions whose Glance has the two file stores ``MULTI_STORES``
        (the first its default) instead of the one store ``file``.
        """
        topology = {k: list(v) for k, v in TOPOLOGY.items()}
        topology["keystone-1"] += [r for r in extra_regions if r not in topology["keystone-1"]]
        wanted = {
            "token_expiration": token_expiration,
            "layout": _layout_hash(),
            "topology": topology,
            "multi_store": list(multi_store),
        }
        if self.running() and all(self.info.get(k) == v for k, v in wanted.items()):
            return self.info
        if self.servers:
            self.stop()
        t0 = time.monotonic()
        self.venv = ensure_venv()
        timings = {"venv": time.monotonic() - t0}
        self._wipe()
        self.topology = topology
        self.multi_store = tuple(multi_store)
        self._plan(token_expiration)
        try:
            for phase, step in (
                ("setup_databases", self._setup_databases),
                ("launch", self._launch_all),
                ("fill_keystones", self._fill_keystones),
            ):
                t1 = time.monotonic()
                step()
                timings[phase] = time.monotonic() - t1
        except BaseException:
            self.stop()
            raise
        self.info["start_seconds"] = round(time.monotonic() - t0, 1)
        self.info["start_timings"] = {k: round(v, 1) for k, v in timings.items()}
        self._save()
        return self.info

    def stop(self) -> None:
        """Stop every server (graceful, then SIGKILL) and drop the vhost; the workdir is kept
        for the logs."""
        with ThreadPoolExecutor(len(self.servers) or 1) as pool:
            list(pool.map(servers.stop, self.servers.values()))
        if self.info:
            self._save()
            vhost = self.info.get("notifications", {}).get("vhost")
            if vhost:
                broker.delete_vhost(vhost)

    # ---- single servers (fault tests) -------------------------------------------
    def _server(self, name: str) -> Server:
        try:
            return self.servers[name]
        except KeyError:
            raise TestbedError(f"unknown server {name!r}; known: {sorted(self.servers)}") from None

    def stop_server(self, name: str) -> None:
        servers.stop(self._server(name))
        self._save()

    def kill_server(self, name: str) -> None:
        """SIGKILL a server (master and workers) without any grace."""
        servers.kill(self._server(name))
        self._save()

    def freeze_server(self, name: str) -> None:
        """SIGSTOP master and workers: connections hang instead of being refused."""
        servers.freeze(self._server(name))

    def thaw_server(self, name: str) -> None:
        servers.freeze(self._server(name), frozen=False)

    def start_server(self, name: str, timeout: float = 120.0) -> None:
        """Start one server again with the same port and config; waits until it answers."""
        server = self._server(name)
        if servers.alive(server.pid):
            return
        assert self.venv is not None
        servers.launch(server, self.venv)
        self._save()
        servers.wait_ready(server, timeout)

    # ---- building blocks --------------------------------------------------------
    def _wipe(self) -> None:
        """Remove a previous run's files, keeping the workdir itself (may be a fixture)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        for child in self.workdir.iterdir():
            if child.is_dir() and child.name.startswith(("keystone-", "glance-", "logs", "tls")):
                shutil.rmtree(child)
            elif child.name.startswith("testbed.") or child.name in clientfiles.FILES:
                child.unlink()
        self.servers = {}
        self.info = {}

    def _new_server(self, name: str, kind: str, used: set[int]) -> Server:
        port = servers.free_port()
        while port in used:
            port = servers.free_port()
        used.add(port)
        return Server(
            name=name,
            kind=kind,
            port=port,
            conf_dir=str(self.workdir / name),
            log=str(self.workdir / "logs" / f"{name}.log"),
            threads=self.threads,
        )

    def _plan(self, token_expiration: int) -> None:
        """Pick ports, write every config file and the skeleton of testbed.json."""
        assert self.venv is not None
        used: set[int] = set()
        for ks, regions in self.topology.items():
            self.servers[ks] = self._new_server(ks, "keystone", used)
            for region in regions:
                name = _glance_name(region)
                self.servers[name] = self._new_server(name, "glance", used)
        tls_info = self._plan_tls(used)
        master_port = self.servers[_glance_name(MASTER_REGION)].port
        vhost = broker.vhost_for(self.workdir)
        broker.create_vhost(vhost)
        notifications = {"vhost": vhost, "transport_url": broker.transport_url(vhost)}
        keystones: dict[str, Any] = {}
        regions_info: dict[str, Any] = {}
        for ks, regions in self.topology.items():
            ks_server = self.servers[ks]
            config.keystone_conf(Path(ks_server.conf_dir), token_expiration)
            keystones[ks] = _keystone_creds(ks, ks_server.url + "/v3")
            keystones[ks].update(regions=regions, log=ks_server.log, pid=None)
            if ks in tls_info["urls"]:
                keystones[ks]["tls_url"] = tls_info["urls"][ks] + "/v3"
            for region in regions:
                gl = self.servers[_glance_name(region)]
                config.glance_conf(
                    Path(gl.conf_dir),
                    venv=self.venv,
                    port=gl.port,
                    keystone_url=ks_server.url,
                    service_password=SERVICE_PASSWORD,
                    identity_region=regions[0],
                    master_port=master_port,
                    notifications_url=(
                        notifications["transport_url"] if region == MASTER_REGION else None
                    ),
                    stores=MULTI_STORES if region in self.multi_store else (),
                )
                regions_info[region] = {
                    "keystone": ks,
                    "glance_url": gl.url,
                    "server": gl.name,
                    "master": region == MASTER_REGION,
                    "log": gl.log,
                    "pid": None,
                }
                if gl.name in tls_info["urls"]:
                    regions_info[region]["tls_url"] = tls_info["urls"][gl.name]
        self.info = {
            "workdir": str(self.workdir),
            "venv": str(self.venv),
            "token_expiration": token_expiration,
            "layout": _layout_hash(),
            "topology": self.topology,
            "multi_store": list(self.multi_store),
            "master_region": MASTER_REGION,
            "keystones": keystones,
            "regions": regions_info,
            "notifications": notifications,
            "tls": tls_info,
            "logs": {n: s.log for n, s in self.servers.items()},
            "servers": {},
        }
        self._save()

    def _plan_tls(self, used: set[int]) -> dict[str, Any]:
        """The CA, the server certificate and one TLS relay per front (not started yet)."""
        ca, cert, key = tls.make_certificates(self.workdir, self.workdir / "tls")
        urls = {}
        for backend in TLS_FRONTS:
            relay = self._new_server(f"tls-{backend}", "tls", used)
            relay.conf_dir = str(self.workdir / "tls")
            target = str(self.servers[backend].port)
            relay.extra = {"target": target, "cert": str(cert), "key": str(key)}
            self.servers[relay.name] = relay
            urls[backend] = relay.url
        return {"ca": str(ca), "urls": urls}

    def _manage(self, server: Server, args: list[str]) -> None:
        """Run keystone-manage / glance-manage for one server, logging to its setup log."""
        assert self.venv is not None
        tool = "keystone-manage" if server.kind == "keystone" else "glance-manage"
        conf = Path(server.conf_dir) / (
            "keystone.conf" if server.kind == "keystone" else "glance-api.conf"
        )
        cmd = [str(self.venv / "bin" / tool), "--config-file", str(conf), *args]
        log = Path(server.log).with_suffix(".setup.log")
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            out.write(f"\n$ {' '.join(cmd)}\n".encode())
            out.flush()
            rc = subprocess.run(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=servers.server_env(server),
                cwd=server.conf_dir,
            ).returncode
        if rc != 0:
            raise TestbedError(
                f"{server.name}: {tool} {args[0]} failed (exit {rc}); "
                f"last lines of {log}:\n{servers.log_tail(str(log))}"
            )

    def _setup_keystone(self, name: str) -> None:
        server = self.servers[name]
        creds = self.info["keystones"][name]
        owner = [
            "--keystone-user",
            getpass.getuser(),
            "--keystone-group",
            grp.getgrgid(os.getgid()).gr_name,
        ]
        # The key folders do not need the database: the three steps run side by side.
        with ThreadPoolExecutor(3) as pool:
            steps = [["db_sync"], ["fernet_setup", *owner], ["credential_setup", *owner]]
            for job in [pool.submit(self._manage, server, args) for args in steps]:
                job.result()
        self._manage(
            server,
            [
                "bootstrap",
                "--bootstrap-username",
                creds["admin"]["username"],
                "--bootstrap-password",
                creds["admin"]["password"],
                "--bootstrap-project-name",
                creds["admin"]["project_name"],
                "--bootstrap-role-name",
                "admin",
                "--bootstrap-service-name",
                "keystone",
                "--bootstrap-region-id",
                TOPOLOGY[name][0],
                "--bootstrap-public-url",
                creds["url"],
            ],
        )

    def _setup_databases(self) -> None:
        """keystone-manage bootstrap and glance-manage db_sync, all in parallel."""
        jobs = []
        with ThreadPoolExecutor(len(self.servers)) as pool:
            for name, server in self.servers.items():
                if server.kind == "keystone":
                    jobs.append(pool.submit(self._setup_keystone, name))
                elif server.kind == "glance":
                    jobs.append(pool.submit(self._manage, server, ["db_sync"]))
            for job in jobs:
                job.result()

    def _launch_all(self) -> None:
        assert self.venv is not None
        for server in self.servers.values():
            servers.launch(server, self.venv)
        self._save()
        with ThreadPoolExecutor(len(self.servers)) as pool:
            for job in [pool.submit(servers.wait_ready, s) for s in self.servers.values()]:
                job.result()

    def _fill_keystones(self) -> None:
        """Fill both Keystones side by side."""
        with ThreadPoolExecutor(len(self.topology)) as pool:
            for job in [pool.submit(self._fill_keystone, name) for name in self.topology]:
                job.result()
        clientfiles.write(self.workdir, self.info)

    def _fill_keystone(self, name: str) -> None:
        """Image service, per-region endpoints, glance service user and the demo user."""
        regions = self.topology[name]
        creds = self.info["keystones"][name]
        admin = KeystoneAdmin(
            creds["url"],
            creds["admin"]["username"],
            creds["admin"]["password"],
            creds["admin"]["project_name"],
        )
        creds["admin_project_id"] = admin.project_id
        creds["admin"]["project_id"] = admin.project_id
        service_project = admin.create_project("service")
        admin.create_user("glance", SERVICE_PASSWORD, service_project, ["admin", "service"])
        demo_project = admin.create_project(creds["demo"]["project_name"])
        demo_id = admin.create_user(
            creds["demo"]["username"], creds["demo"]["password"], demo_project, ["member"]
        )
        # a reader of the master's project (admin): the service's viewer (reference 10.2)
        admin.put(f"/projects/{admin.project_id}/users/{demo_id}/roles/{admin.role_id('reader')}")
        creds["demo"]["project_id"] = demo_project
        image_service = admin.create_image_service()
        tls_urls = self.info["tls"]["urls"]
        for region in regions:
            url = self.servers[_glance_name(region)].url
            admin.add_endpoint(image_service, region, url)
            if _glance_name(region) in tls_urls:
                admin.add_endpoint(
                    image_service, region, tls_urls[_glance_name(region)], "internal"
                )
        if name in tls_urls:
            identity = admin.service_id("identity")
            admin.add_endpoint(identity, regions[0], tls_urls[name] + "/v3", "internal")
        creds["app_credential"] = admin.create_application_credential(APP_CREDENTIAL_NAME)
        for region in regions:
            self._check_glance(admin.token, self.servers[_glance_name(region)])

    def _check_glance(self, token: str, server: Server) -> None:
        """An authenticated image list: proves Glance can validate tokens at its Keystone.

        It also warms the server up (policies, auth middleware), so the first real
        request of a test is not the slow one.
        """
        req = urllib.request.Request(server.url + "/v2/images", headers={"X-Auth-Token": token})
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                resp.read()
        except (urllib.error.HTTPError, OSError) as exc:
            raise TestbedError(
                f"{server.name} answers but an authenticated GET /v2/images failed ({exc}); "
                f"last lines of {server.log}:\n{servers.log_tail(server.log)}"
            ) from None

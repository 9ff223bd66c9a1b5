"""Tableau REST API client: personal-access-token sign-in, one session at a time.

A personal access token (PAT) holds one session: signing in again ends the previous session, so
two jobs with the same PAT make each other fail with 401s.  `pat_session(settings)` is therefore a
lock — a thread lock plus an `flock` on `<data>/secrets/tableau_pat.lock` — held by a publisher for
its whole run, so sign-ins are never parallel, within a process or across processes (a killed
process's lock is released by the kernel).  Inside it, `TableauAuth` signs in lazily, sends
`X-Tableau-Auth`, re-signs-in once on a 401 (an expired session) and signs out at the end.
"""
from __future__ import annotations

import fcntl
import logging
import os
import threading
from contextlib import contextmanager
from typing import Iterator, Mapping

from finance_pipeline.http import ApiClient, ApiError, RetryPolicy
from finance_pipeline.http.redaction import register_secret
from finance_pipeline.platforms.base import Connection
from finance_pipeline.settings import Secret, Settings, SettingsError, env

log = logging.getLogger("finance_pipeline.tableau")

DEFAULT_API_VERSION = "3.27"
REQUIRED_ENV = ("TABLEAU_SERVER_URL", "TABLEAU_PAT_NAME", "TABLEAU_PAT_SECRET")
_thread_lock = threading.Lock()


def live_connection(settings: Settings) -> Connection:
    missing = [name for name in REQUIRED_ENV if not env(name)]
    if missing:
        raise SettingsError(
            f"Tableau live mode needs {', '.join(missing)} (missing). Create a personal access token (My Account "
            "Settings > Personal Access Tokens) for a user who can publish to the project, and set "
            "TABLEAU_SERVER_URL (e.g. https://10ax.online.tableau.com), TABLEAU_PAT_NAME, TABLEAU_PAT_SECRET, and "
            "TABLEAU_SITE (the site's content URL; empty for the Default site) and TABLEAU_PROJECT (default "
            "Finance) in the environment or in .env. Use this token for this pipeline only: a second sign-in "
            "with it ends the first session.")
    creds: dict[str, Secret | str] = {
        "server_url": env("TABLEAU_SERVER_URL") or "",
        "site": env("TABLEAU_SITE") or "",
        "pat_name": env("TABLEAU_PAT_NAME") or "",
        "pat_secret": Secret(env("TABLEAU_PAT_SECRET") or "", "TABLEAU_PAT_SECRET"),
        "project": env("TABLEAU_PROJECT") or "Finance",
        "api_version": env("TABLEAU_API_VERSION") or DEFAULT_API_VERSION,
    }
    return Connection("tableau", str(creds["server_url"]), creds, settings)


@contextmanager
def pat_session(settings: Settings) -> Iterator[None]:
    """Serialise everything that signs in with the PAT (threads and processes)."""
    path = settings.secrets_dir / "tableau_pat.lock"
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with _thread_lock:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


class TableauAuth:
    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        version = connection.get("api_version") or DEFAULT_API_VERSION
        self.api_url = f"{connection.secret('server_url').rstrip('/')}/api/{version}"
        self._http = ApiClient("tableau-auth", self.api_url, timeout_s=connection.settings.http_timeout_s,
                               retry=RetryPolicy(max_attempts=connection.settings.http_max_attempts),
                               default_headers={"Accept": "application/json"})
        self.token: str | None = None
        self.site_id: str | None = None
        self.signins = 0

    def sign_in(self) -> str:
        body = {"credentials": {"personalAccessTokenName": self.connection.secret("pat_name"),
                                "personalAccessTokenSecret": self.connection.secret("pat_secret"),
                                "site": {"contentUrl": self.connection.get("site") or ""}}}
        try:
            answer = self._http.request("POST", "auth/signin", json=body, idempotent=True).json()
        except ApiError as exc:
            if exc.status == 401:
                raise SettingsError("Tableau refused the personal access token (401001): check TABLEAU_PAT_NAME, "
                                    "TABLEAU_PAT_SECRET and TABLEAU_SITE; a PAT unused for 15 days expires.") from None
            raise
        creds = answer["credentials"]
        self.token = creds["token"]
        register_secret(self.token)
        self.site_id = creds["site"]["id"]
        self.signins += 1
        return self.site_id

    def headers(self) -> Mapping[str, str]:
        if self.token is None:
            self.sign_in()
        return {"X-Tableau-Auth": self.token or ""}

    def refresh(self) -> bool:
        log.info("tableau: session refused (expired, or ended by another sign-in with this PAT); signing in again")
        self.sign_in()
        return True

    def close(self) -> None:
        if self.token is not None:
            try:
                self._http.request("POST", "auth/signout", headers={"X-Tableau-Auth": self.token},
                                   expect_json=False, idempotent=True)
            except ApiError as exc:
                log.info("tableau: sign-out failed (%s); the session expires by itself", exc.status)
            self.token = None
        self._http.close()


def make_client(connection: Connection, *, auth: TableauAuth | None = None) -> ApiClient:
    auth = auth or TableauAuth(connection)
    settings = connection.settings
    return ApiClient("tableau", auth.api_url, auth=auth, retry=RetryPolicy(max_attempts=settings.http_max_attempts),
                     timeout_s=max(settings.http_timeout_s, 5.0), default_headers={"Accept": "application/json"},
                     max_connections=2)


def project_site(client: ApiClient, auth: TableauAuth, project_name: str) -> tuple[str, str]:
    """Sign in (once per session) and find the project: ("sites/<site id>", project id)."""
    site = f"sites/{auth.site_id or auth.sign_in()}"
    body = client.get_json(f"{site}/projects", params={"filter": f"name:eq:{project_name}"})
    projects = (body.get("projects") or {}).get("project") or []
    if not projects:
        raise RuntimeError(f"tableau: project {project_name!r} not found on the site (TABLEAU_PROJECT)")
    return site, projects[0]["id"]


def project_datasources(client: ApiClient, site: str, project_id: str) -> dict[str, list[dict]]:
    """Data sources of the project by name (a list: more than one would be a duplicate), one paged listing."""
    out: dict[str, list[dict]] = {}
    page = 1
    while True:
        body = client.get_json(f"{site}/datasources", params={"pageSize": 1000, "pageNumber": page})
        for ds in (body.get("datasources") or {}).get("datasource") or []:
            if (ds.get("project") or {}).get("id") == project_id:
                out.setdefault(ds["name"], []).append(ds)
        if page * 1000 >= int((body.get("pagination") or {}).get("totalAvailable", 0)):
            return out
        page += 1

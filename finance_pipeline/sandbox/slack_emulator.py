"""A Slack Web API emulator (the part alerts use): `POST /api/chat.postMessage`, `POST /api/auth.test`.

As Slack's Web API does:
- the token comes as `Authorization: Bearer xoxb-…` (or a `token` form field); none → `not_authed`,
  unknown → `invalid_auth`; errors are HTTP 200 with `{"ok": false, "error": …}`;
- arguments as `application/x-www-form-urlencoded` or JSON; `channel` must exist
  (`channel_not_found`), and `text` or `blocks` must be given (`no_text`);
- chat.postMessage is limited to about one message per second per channel (short bursts
  allowed); beyond that HTTP 429 with `Retry-After` (seconds);
- the answer carries the channel id and the message `ts`, which is the message's id.

Messages are kept (`messages`) and appended to `data/sandbox/notifications/slack.jsonl`, so tests
and the demo can read what was posted from any process.
"""
from __future__ import annotations

import hashlib
import threading
import time
from urllib.parse import parse_qs

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from finance_pipeline.http.ratelimit import TokenBucket
from finance_pipeline.sandbox.server import Emulator, EmulatorConfig, json_response
from finance_pipeline.sandbox.store import Sandbox

CHANNELS = {"C0FINALERTS": "finance-alerts", "C0GENERAL01": "general"}
POST_RATE_PER_S = 1.0
POST_BURST = 5


class SlackEmulator(Emulator):
    name = "slack"

    def __init__(self, sandbox: Sandbox, config: EmulatorConfig | None = None) -> None:
        super().__init__(sandbox, config)
        seed = sandbox.state().seed if sandbox.exists() else 0
        digest = hashlib.blake2b(f"slack-bot-token:{seed}".encode(), digest_size=12).hexdigest()
        self.token = f"xoxb-000000000-{digest}"
        self.messages: list[dict] = []
        self._lock = threading.Lock()
        self._buckets: dict[str, TokenBucket] = {}
        self.log_path = sandbox.root / "notifications" / "slack.jsonl"

    def credentials(self) -> dict[str, str]:
        return {"bot_token": self.token, "channel": "#finance-alerts"}

    def routes(self) -> list[Route]:
        return [Route("/api/chat.postMessage", self.post_message, methods=["POST"]),
                Route("/api/auth.test", self.auth_test, methods=["POST", "GET"])]

    async def _args(self, request: Request) -> dict[str, str]:
        raw = await request.body()
        if request.headers.get("content-type", "").startswith("application/json"):
            try:
                data = orjson.loads(raw or b"{}")
            except orjson.JSONDecodeError:
                return {"__invalid__": "invalid_json"}
            return data if isinstance(data, dict) else {"__invalid__": "invalid_json"}
        return {k: v[0] for k, v in parse_qs(raw.decode()).items()}

    def _auth(self, request: Request, args: dict) -> str | None:
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else args.get("token")
        if not token:
            return "not_authed"
        return None if token == self.token else "invalid_auth"

    async def auth_test(self, request: Request) -> Response:
        args = await self._args(request)
        error = self._auth(request, args)
        if error:
            return json_response({"ok": False, "error": error})
        return json_response({"ok": True, "url": "https://curtains-sandbox.slack.com/", "team": "Curtains",
                              "user": "finance-bot", "team_id": "T0SANDBOX", "user_id": "U0FINBOT"})

    async def post_message(self, request: Request) -> Response:
        args = await self._args(request)
        if "__invalid__" in args:
            return json_response({"ok": False, "error": args["__invalid__"]})
        error = self._auth(request, args)
        if error:
            return json_response({"ok": False, "error": error})
        wanted = str(args.get("channel") or "")
        channel = wanted if wanted in CHANNELS else next(
            (cid for cid, name in CHANNELS.items() if wanted.lstrip("#") == name), None)
        if channel is None:
            return json_response({"ok": False, "error": "channel_not_found"})
        if not args.get("text") and not args.get("blocks"):
            return json_response({"ok": False, "error": "no_text"})
        with self._lock:
            bucket = self._buckets.setdefault(
                channel, TokenBucket(POST_RATE_PER_S, POST_BURST, time_scale=self.config.time_scale))
        wait = bucket.try_acquire() if self.config.enforce_rate_limits else 0.0
        if wait > 0:
            return self.refuse(json_response({"ok": False, "error": "ratelimited"}, 429,
                                             {"Retry-After": str(max(1, int(wait + 0.999)))}))
        blocks = args.get("blocks")
        if isinstance(blocks, str):
            try:
                blocks = orjson.loads(blocks)
            except orjson.JSONDecodeError:
                return json_response({"ok": False, "error": "invalid_blocks"})
        with self._lock:
            ts = f"{time.time():.6f}"
            message = {"type": "message", "subtype": None, "text": args.get("text") or "", "ts": ts,
                       "bot_id": "B0FINBOT", "channel": channel, "blocks": blocks}
            self.messages.append(message)
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.log_path, "ab") as f:
                f.write(orjson.dumps(message) + b"\n")
        return json_response({"ok": True, "channel": channel, "ts": ts,
                              "message": {k: v for k, v in message.items() if k != "channel"}})

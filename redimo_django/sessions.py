"""Django sessions in DynamoDB: ``SESSION_ENGINE = "redimo_django.sessions"``.

Each session is a string key (the session key) in a namespace of its own, holding Django's signed,
serialized session data, with the session's expiry as the key's expiry (checked on every read; the
TTL attribute lets AWS delete it later). Per authenticated user, a map of their session keys lets
:meth:`SessionStore.user_sessions` list them and :meth:`SessionStore.end_user_sessions` end them
all ("sign out everywhere"). Configuration and costs: docs/sessions.md.
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from typing import Any

from django.conf import settings
from django.contrib.sessions.backends.base import VALID_KEY_CHARS, CreateError, SessionBase, UpdateError
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.crypto import get_random_string

from redimo import Redimo
from redimo.commands import keys as key_commands
from redimo.commands import strings
from redimo.maps import MapItem

from .cache import RedimoCache, client_factory

DEFAULT_NAMESPACE = "django-sessions"
SETTINGS = frozenset({"TABLE", "NAMESPACE", "ENDPOINT_URL", "REGION_NAME", "CLIENT_FACTORY", "CONSISTENT_READS"})
USER_KEY = "_auth_user_id"  # django.contrib.auth's SESSION_KEY
CREATE_ATTEMPTS = 100

_clients: dict[tuple, Redimo] = {}
_clients_lock = threading.Lock()


@receiver(setting_changed)
def _forget_clients(setting: str, **_: Any) -> None:
    """Settings changed (override_settings in tests): build the client again."""
    if setting in ("REDIMO_SESSIONS", "CACHES", "SESSION_CACHE_ALIAS"):
        with _clients_lock:
            _clients.clear()


def session_client() -> Redimo:
    """The Redimo client for sessions, from ``REDIMO_SESSIONS`` or else from the RedimoCache that
    ``SESSION_CACHE_ALIAS`` names (its table and boto3 client, in the namespace ``django-sessions``)."""
    config = dict(getattr(settings, "REDIMO_SESSIONS", None) or {})
    unknown = sorted(set(config) - SETTINGS)
    if unknown:
        raise ImproperlyConfigured(f"REDIMO_SESSIONS: unknown keys {', '.join(unknown)}; "
                                   f"the keys are {', '.join(sorted(SETTINGS))}")
    identity = (repr(sorted(config.items())), settings.SESSION_CACHE_ALIAS)
    with _clients_lock:
        if identity not in _clients:
            _clients[identity] = _make_client(config)
        return _clients[identity]


def _make_client(config: dict[str, Any]) -> Redimo:
    namespace = config.get("NAMESPACE", DEFAULT_NAMESPACE)
    if not isinstance(namespace, str) or not namespace or "\x00" in namespace:
        raise ImproperlyConfigured(f"REDIMO_SESSIONS['NAMESPACE'] must be a non-empty string without NUL, "
                                   f"not {namespace!r}")
    consistent = config.get("CONSISTENT_READS", True)
    if not isinstance(consistent, bool):
        raise ImproperlyConfigured(f"REDIMO_SESSIONS['CONSISTENT_READS'] must be True or False, not {consistent!r}")
    table = config.get("TABLE")
    if table is None:
        cache = caches[settings.SESSION_CACHE_ALIAS]
        if not isinstance(cache, RedimoCache):
            raise ImproperlyConfigured(
                f"redimo_django.sessions: the cache {settings.SESSION_CACHE_ALIAS!r} (SESSION_CACHE_ALIAS) is not a "
                f"RedimoCache; set REDIMO_SESSIONS['TABLE'] or point SESSION_CACHE_ALIAS at a RedimoCache")
        if namespace == cache.namespace:
            raise ImproperlyConfigured("REDIMO_SESSIONS['NAMESPACE'] must differ from the cache's namespace, "
                                       "or clearing the cache would log everyone out")
        source = cache.get_client()
        return Redimo(table=source.gateway.table, namespace=namespace, consistent_reads=consistent,
                      client=source.gateway.client)
    client = client_factory(config, "REDIMO_SESSIONS")()
    return Redimo(table=table, namespace=namespace, consistent_reads=consistent, client=client)


class SessionStore(SessionBase):
    """Django's SessionBase on Redimo. load, exists, save and delete are one request each; binding a
    session to a user adds one write to the user's session map, and deleting it one more."""

    def __init__(self, session_key: str | None = None) -> None:
        super().__init__(session_key)
        self._loaded_user: str | None = None

    @classmethod
    def get_client(cls) -> Redimo:
        return session_client()

    @property
    def _db(self) -> Any:
        return self.get_client().engine.db

    @staticmethod
    def _user_map(db: Any, user_id: Any) -> MapItem:
        return MapItem(db, f"user:{user_id}".encode())

    def _get_new_session_key(self) -> str:
        # No EXISTS round trip: create() writes conditionally and retries a collision.
        return get_random_string(32, VALID_KEY_CHARS)

    async def _aget_new_session_key(self) -> str:
        return self._get_new_session_key()

    def load(self) -> dict[str, Any]:
        """1 GetItem. An unknown, expired or tampered session loads empty and writes nothing."""
        data = strings.get(self._db, [self.session_key.encode()]) if self.session_key else None
        if data is None:
            self._session_key = None
            return {}
        session = self.decode(data.decode("ascii", errors="replace"))
        if not session:
            self._session_key = None
            return {}
        self._loaded_user = session.get(USER_KEY)
        return session

    def exists(self, session_key: str) -> bool:
        """1 GetItem."""
        return bool(session_key) and bool(key_commands.exists(self._db, [session_key.encode()]))

    def create(self) -> None:
        """A new session under a fresh key: 1 conditional PutItem (again on a key collision)."""
        for _ in range(CREATE_ATTEMPTS):
            self._session_key = self._get_new_session_key()
            try:
                self.save(must_create=True)
            except CreateError:
                continue
            self.modified = True
            return
        raise RuntimeError("Unable to create a new session key: DynamoDB refused every attempt")

    def save(self, must_create: bool = False) -> None:
        """1 conditional PutItem: must_create never overwrites (CreateError); otherwise the session
        must still exist (UpdateError), so a session deleted elsewhere is never brought back."""
        if self.session_key is None:
            return self.create()
        session = self._get_session(no_load=must_create)
        data = self.encode(session).encode("ascii")
        expire_at = self._db.clock() + self.get_expiry_age() * 1000
        written = strings.set_string(self._db, self.session_key.encode(), data, expire_at,
                                     b"NX" if must_create else b"XX", False)
        if written is None:
            raise CreateError if must_create else UpdateError
        user = session.get(USER_KEY)
        if user is not None and user != self._loaded_user:
            self._user_map(self._db, user).put(self.session_key, expire_at)
            self._loaded_user = user

    def delete(self, session_key: str | None = None) -> None:
        """GETDEL: 1 UpdateItem returning the old session; one more write to its user's map if it had a user."""
        if session_key is None:
            if self.session_key is None:
                return
            session_key = self.session_key
        old = strings.getdel(self._db, [session_key.encode()])
        if old is None:
            return
        user = self.decode(old.decode("ascii", errors="replace")).get(USER_KEY)
        if user is not None:
            self._user_map(self._db, user).remove(session_key)

    @classmethod
    def clear_expired(cls) -> None:
        """Nothing to do: the table's TTL deletes expired sessions (reads already hide them), so
        ``clearsessions`` costs no request. Redimo.create_table turns TTL on."""

    # -- beyond Django: a user's sessions ---------------------------------------------------
    @classmethod
    def user_sessions(cls, user_id: Any) -> dict[str, datetime]:
        """The live sessions of a user, with their expiry: 1 GetItem of the user's map and
        ceil(n/100) BatchGetItem of the sessions' heads."""
        db = cls.get_client().engine.db
        entries = cls._user_map(db, user_id).read()
        live = db.load_many([key.encode() for key in entries], "pk, t, x")
        return {key.decode(): datetime.fromtimestamp(record.expire_at / 1000, timezone.utc)
                for key, record in live.items() if record.expire_at is not None}

    @classmethod
    def end_user_sessions(cls, user_id: Any) -> int:
        """Sign a user out everywhere: delete all their sessions and their map. 1 GetItem,
        ceil(n/25) BatchExecuteStatement, 1 DeleteItem. Returns how many
        live sessions ended."""
        db = cls.get_client().engine.db
        user_map = cls._user_map(db, user_id)
        keys = [key.encode() for key in user_map.read()]
        ended = key_commands.delete_keys(db, keys) if keys else 0
        user_map.delete()
        return ended

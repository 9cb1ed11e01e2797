"""Mailchimp Marketing API v3 subset: list members (batch upsert, get, put, patch, archive, delete-permanent).

No OpenAPI document is available for Mailchimp, so payload shapes are validated by hand from the documented
contract. Behaviour that matters for a consent-safe sync and is emulated on purpose:

* `update_existing: true` changes an existing member's status only when `status` is sent; `status_if_new` is
  used for new members only. Every change of an existing member's status is recorded (`status_changes`), so a
  test can assert a sync never touched consent.
* Per-member problems (invalid email, "Member Exists", injected rejects, permanently deleted contacts) come
  back inside a 200 in `errors`; malformed payloads get a 400 problem document with field-level `errors`.
* A permanently deleted contact cannot be re-imported (Mailchimp: "Forgotten Email Not Subscribed").
* At most 10 simultaneous connections per API key; the next concurrent request gets a 429.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from reverse_etl.testing.common import (
    Erasure,
    Handler,
    Request,
    Response,
    Route,
    dumps,
    is_valid_email,
    iso_now,
    loads,
    subscriber_hash,
)
from reverse_etl.testing.faults import FaultInjector

VENDOR = "mailchimp"
PREFIX = "/3.0"
BATCH = f"{PREFIX}/lists/{{list_id}}"
MEMBERS = f"{PREFIX}/lists/{{list_id}}/members"
MEMBER = f"{PREFIX}/lists/{{list_id}}/members/{{subscriber_hash}}"
DELETE_PERMANENT = f"{MEMBER}/actions/delete-permanent"
PING = f"{PREFIX}/ping"

STATUSES = frozenset({"subscribed", "unsubscribed", "cleaned", "pending", "transactional"})
EMAIL_TYPES = frozenset({"html", "text"})
MAX_BATCH_MEMBERS = 500
MAX_CONNECTIONS = 10
MAX_PAGE = 1000
ERROR_DOC = "https://mailchimp.com/developer/marketing/docs/errors/"
PROBLEM_JSON = "application/problem+json; charset=utf-8"
MERGE_TAG = re.compile(r"^[A-Z0-9_]{1,10}$")
# Keys a member object may carry (batch item, PUT, PATCH). Unknown keys are a 400: Mailchimp's own validation
# is looser here, but a misspelt "status_if_nwe" silently ignored would make a new member's status undefined.
MEMBER_KEYS = frozenset(
    {
        "email_address",
        "email_type",
        "status",
        "status_if_new",
        "merge_fields",
        "interests",
        "language",
        "vip",
        "location",
        "marketing_permissions",
        "ip_signup",
        "timestamp_signup",
        "ip_opt",
        "timestamp_opt",
        "tags",
    }
)
BATCH_KEYS = frozenset({"members", "update_existing", "sync_tags"})
# Merge tags already seen to be well formed: the same ~15 tags repeat on every member of every batch, and a
# regex match per tag per member was the largest single cost of a batch.
_VALID_TAGS: set[str] = set()


@dataclass(slots=True)  # slots: one GC-tracked object per record, not two, at 1M records
class Member:
    list_id: str
    email_address: str
    id: str  # subscriber hash
    status: str  # the underlying status; GET shows "archived" while `archived` is true
    merge_fields: dict[str, Any]
    tags: tuple[str, ...]  # a tuple of strings is not tracked by the cyclic GC; a list would be, per member
    email_type: str
    language: str
    vip: bool
    archived: bool
    created_at: str
    last_changed: str
    web_id: int

    @property
    def visible_status(self) -> str:
        return "archived" if self.archived else self.status

    def copy(self) -> Member:
        return replace(self, merge_fields=dict(self.merge_fields))

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "email_address": self.email_address,
            "unique_email_id": self.id[:10],
            "contact_id": self.id,
            "web_id": self.web_id,
            "email_type": self.email_type,
            "status": self.visible_status,
            "merge_fields": self.merge_fields,
            "language": self.language,
            "vip": self.vip,
            "timestamp_signup": self.created_at,
            "last_changed": self.last_changed,
            "tags_count": len(self.tags),
            "tags": [{"id": i + 1, "name": name} for i, name in enumerate(self.tags)] if self.tags else (),
            "list_id": self.list_id,
        }


@dataclass(frozen=True)
class StatusChange:
    """A change of an existing member's visible status.

    kind: "status" (subscribed -> unsubscribed etc.: a consent change), "archive" (DELETE) or "unarchive" (an
    archived contact re-added; its underlying status is kept unless `status` is sent).
    """

    list_id: str
    email: str
    old_status: str
    new_status: str
    kind: str
    via: str  # "METHOD template" of the request that made the change
    at: float


@dataclass
class MailchimpState:
    lists: dict[str, dict[str, Member]] = field(default_factory=dict)  # list_id -> subscriber hash -> member
    forgotten: dict[str, set[str]] = field(default_factory=dict)  # list_id -> hashes permanently deleted
    creates: Counter[tuple[str, str]] = field(default_factory=Counter)  # (list_id, lower email) -> creates
    status_changes: list[StatusChange] = field(default_factory=list)
    erasures: list[Erasure] = field(default_factory=list)


def problem(status: int, title: str, detail: str, errors: list[dict[str, str]] | None = None) -> Response:
    """Mailchimp's RFC 7807 problem document."""
    doc: dict[str, Any] = {
        "type": ERROR_DOC,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": str(uuid.uuid4()),
    }
    if errors is not None:
        doc["errors"] = errors
    return Response(status, dumps(doc), PROBLEM_JSON)


def _ok(payload: Any, status: int = 200) -> Response:
    return Response(status, dumps(payload))


def _invalid(errors: list[dict[str, str]]) -> Response:
    return problem(
        400,
        "Invalid Resource",
        "The resource submitted could not be validated. For field-specific details, see the 'errors' array.",
        errors,
    )


# -- partial responses ---------------------------------------------------------------------------------------
# Mailchimp's `fields` / `exclude_fields` query parameters (comma-separated, dot notation for sub-objects,
# mutually exclusive) trim a response. A batch answer repeats every member in full (~1 KB each); a sync that
# reads only `errors` asks for less, and the emulator then skips building the member objects at all.
Paths = list[list[str]]


def partial_paths(req: Request) -> tuple[Paths | None, Paths] | Response:
    """(include paths or None, exclude paths) from the query, or a 400 when both are given."""
    fields, exclude = req.query_one("fields"), req.query_one("exclude_fields")
    if fields is not None and exclude is not None:
        return _invalid([{"field": "fields", "message": "fields and exclude_fields are mutually exclusive."}])

    def split(raw: str | None) -> Paths:
        return [name.strip().split(".") for name in (raw or "").split(",") if name.strip()]

    return (split(fields) if fields is not None else None), split(exclude)


def wanted(include: Paths | None, exclude: Paths, key: str) -> bool:
    """Whether any part of top-level `key` survives the trimming."""
    if [key] in exclude:
        return False
    return include is None or any(path[0] == key for path in include)


def trim(value: Any, include: Paths | None, exclude: Paths) -> Any:
    if include is not None:
        value = _keep(value, include)
    return _drop(value, exclude) if exclude else value


def _keep(value: Any, paths: Paths) -> Any:
    if any(not path for path in paths):
        return value  # the whole object was asked for
    if isinstance(value, list):
        return [_keep(item, paths) for item in value]
    if not isinstance(value, dict):
        return value
    kept: dict[str, Any] = {}
    for key, sub in value.items():
        rest = [path[1:] for path in paths if path[0] == key]
        if rest:
            kept[key] = _keep(sub, rest)
    return kept


def _drop(value: Any, paths: Paths) -> Any:
    if isinstance(value, list):
        return [_drop(item, paths) for item in value]
    if not isinstance(value, dict):
        return value
    kept: dict[str, Any] = {}
    for key, sub in value.items():
        rest = [path[1:] for path in paths if path[0] == key]
        if any(not path for path in rest):
            continue
        kept[key] = _drop(sub, rest) if rest else sub
    return kept


# Members that carry only these keys can be checked by the allocation-free fast path below.
_COMMON_KEYS = frozenset({"email_address", "status", "status_if_new", "merge_fields", "email_type"})


def _common_member_ok(member: Any) -> bool:
    """True for the typical well-formed member; False means "run the full check" (not "invalid")."""
    if type(member) is not dict or not _COMMON_KEYS.issuperset(member):
        return False
    if type(member.get("email_address")) is not str:
        return False
    if (
        member.get("status", "subscribed") not in STATUSES
        or member.get("status_if_new", "subscribed") not in STATUSES
    ):
        return False
    if member.get("email_type", "html") not in EMAIL_TYPES:
        return False
    merge = member.get("merge_fields")
    if merge is None:
        return True
    if type(merge) is not dict:
        return False
    for tag, value in merge.items():
        kind = type(value)
        if tag not in _VALID_TAGS or (kind is not str and kind is not int and kind is not float):
            return False
    return True


def member_shape_errors(member: Any, where: str, *, email_required: bool) -> list[dict[str, str]]:
    """Schema-level problems of one member object (each makes the whole request a 400)."""
    if _common_member_ok(member):
        return []
    if type(member) is not dict:
        return [{"field": where, "message": "Schema describes object, " + type(member).__name__ + " found"}]
    errors: list[dict[str, str]] = []

    def bad(name: str, message: str) -> None:
        errors.append({"field": f"{where}.{name}" if where else name, "message": message})

    for key in member.keys() - MEMBER_KEYS:
        bad(key, f"Unknown field '{key}'.")
    email = member.get("email_address")
    if email is None:
        if email_required:
            bad("email_address", "This value should not be blank.")
    elif type(email) is not str:
        bad("email_address", "Schema describes string.")
    for key in ("status", "status_if_new"):
        if key in member and member[key] not in STATUSES:
            choices = ", ".join(sorted(STATUSES))
            bad(key, f"The value you selected is not a valid choice. Choose one of: {choices}.")
    if "email_type" in member and member["email_type"] not in EMAIL_TYPES:
        bad("email_type", "The value you selected is not a valid choice. Choose html or text.")
    merge = member.get("merge_fields")
    if merge is not None:
        if type(merge) is not dict:
            bad("merge_fields", "Schema describes object.")
        else:
            for tag, value in merge.items():
                if tag not in _VALID_TAGS:
                    if not (type(tag) is str and MERGE_TAG.match(tag)):
                        bad(
                            f"merge_fields.{tag}",
                            "Merge tags are upper-case letters, digits or _, at most 10.",
                        )
                        continue
                    if len(_VALID_TAGS) < 10_000:
                        _VALID_TAGS.add(tag)
                kind = type(value)
                if kind is not str and kind is not int and kind is not float:
                    bad(f"merge_fields.{tag}", "Merge field values must be strings or numbers.")
    tags = member.get("tags")
    if tags is not None and not (type(tags) is list and all(type(t) is str for t in tags)):
        bad("tags", "Schema describes array of strings.")
    if "vip" in member and type(member["vip"]) is not bool:
        bad("vip", "Schema describes boolean.")
    if "language" in member and type(member["language"]) is not str:
        bad("language", "Schema describes string.")
    interests = member.get("interests")
    if interests is not None and not (
        type(interests) is dict and all(type(v) is bool for v in interests.values())
    ):
        bad("interests", "Schema describes object of booleans.")
    return errors


class MailchimpApi:
    def __init__(
        self,
        faults: FaultInjector,
        api_key: str,
        max_connections: int = MAX_CONNECTIONS,
        lists: Iterable[str] | None = None,
    ) -> None:
        self.faults = faults
        self.api_key = api_key
        self.max_connections = max_connections
        self._lock = threading.RLock()
        self._state = MailchimpState()
        # None: any list id exists (convenient); a set: other ids are 404, as for a wrong audience id.
        self._known_lists = set(lists) if lists is not None else None
        self._inflight: Counter[str] = Counter()
        self._inflight_lock = threading.Lock()
        self._web_ids = itertools.count(1)  # next() on a count is atomic under the GIL: no lock needed
        self.routes = [
            Route(method, template, self._authenticated(handler))
            for method, template, handler in (
                ("GET", PING, self.ping),
                ("POST", BATCH, self.batch),
                ("GET", MEMBERS, self.list_members),
                ("GET", MEMBER, self.get_member),
                ("PUT", MEMBER, self.put_member),
                ("PATCH", MEMBER, self.patch_member),
                ("DELETE", MEMBER, self.archive_member),
                ("POST", DELETE_PERMANENT, self.delete_permanent),
            )
        ]

    def _authenticated(self, handler: Handler) -> Handler:
        def run(req: Request) -> Response:
            return self.authenticate(req) or handler(req)

        return run

    # -- transport-level rules (called by the server) --------------------------------------------------------
    @staticmethod
    def key_of(req: Request) -> str | None:
        """The API key from HTTP Basic (any username) or an OAuth-style Bearer token."""
        auth = req.header("authorization")
        if not auth:
            return None
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer":
            return value.strip()
        if scheme.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2]

    def authenticate(self, req: Request) -> Response | None:
        key = self.key_of(req)
        if key is None:
            return problem(401, "API Key Missing", "Your request did not include an API key.")
        if key != self.api_key:
            return problem(
                401,
                "API Key Invalid",
                "Your API key may be invalid, or you've attempted to access the wrong datacenter.",
            )
        return None

    def enter(self, req: Request) -> tuple[str, bool]:
        """Count a request in flight for its key; False when it exceeds the simultaneous-connection limit."""
        key = self.key_of(req) or ""
        with self._inflight_lock:
            self._inflight[key] += 1
            return key, self._inflight[key] <= self.max_connections

    def leave(self, key: str) -> None:
        with self._inflight_lock:
            self._inflight[key] -= 1

    def too_many_connections(self) -> Response:
        return problem(
            429,
            "Too Many Requests",
            f"You have exceeded the limit of {self.max_connections} simultaneous connections.",
        )

    def error_response(self, status: int, retry_after: int | None) -> Response:
        """Body of an injected error (the server adds the headers)."""
        titles = {429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}
        title = titles.get(status, "Error")
        return problem(status, title, f"Injected fault: {title}.")

    def not_found(self) -> Response:
        return problem(404, "Resource Not Found", "The requested resource could not be found.")

    def method_not_allowed(self) -> Response:
        return problem(405, "Method Not Allowed", "The requested method and resource are not compatible.")

    # -- state helpers ---------------------------------------------------------------------------------------
    def _list(self, list_id: str) -> dict[str, Member] | None:
        members = self._state.lists.get(list_id)
        if members is None:
            if self._known_lists is not None and list_id not in self._known_lists:
                return None
            members = self._state.lists[list_id] = {}
        return members

    def create_list(self, list_id: str) -> None:
        with self._lock:
            if self._known_lists is not None:
                self._known_lists.add(list_id)
            self._state.lists.setdefault(list_id, {})

    def _audit(self, member: Member, old: str, new: str, kind: str, via: str) -> None:
        self._state.status_changes.append(
            StatusChange(member.list_id, member.email_address.lower(), old, new, kind, via, time.time())
        )

    def _create(
        self,
        list_id: str,
        hash_: str,
        body: dict[str, Any],
        status: str,
        *,
        now: str | None = None,
        by_client: bool = True,
    ) -> Member:
        now = now or iso_now()
        email = body["email_address"]
        member = Member(
            list_id=list_id,
            email_address=email,
            id=hash_,
            status=status,
            merge_fields=dict(body.get("merge_fields") or {}),
            tags=tuple(dict.fromkeys(body.get("tags") or ())),
            email_type=body.get("email_type", "html"),
            language=body.get("language", ""),
            vip=body.get("vip", False),
            archived=False,
            created_at=now,
            last_changed=now,
            web_id=next(self._web_ids),
        )
        self._state.lists[list_id][hash_] = member
        if by_client:
            self._state.creates[(list_id, email.lower())] += 1
        return member

    def _update(
        self,
        member: Member,
        body: dict[str, Any],
        via: str,
        *,
        sync_tags: bool = False,
        now: str | None = None,
    ) -> None:
        """Apply an update to an existing member. Only an explicit `status` may change its consent."""
        if member.archived:
            member.archived = False
            self._audit(member, "archived", member.status, "unarchive", via)
        status = body.get("status")
        if status is not None and status != member.status:
            self._audit(member, member.status, status, "status", via)
            member.status = status
        merge = body.get("merge_fields")
        if merge:
            member.merge_fields.update(merge)
        for key in ("email_type", "language", "vip"):
            if key in body:
                setattr(member, key, body[key])
        tags = body.get("tags")
        if tags is not None:
            member.tags = tuple(dict.fromkeys(tags if sync_tags else [*member.tags, *tags]))
        member.last_changed = now or iso_now()

    @staticmethod
    def _forgotten_message(email: str) -> str:
        return (
            f"{email} was permanently deleted and cannot be re-imported. "
            "The contact must re-subscribe to get back on the list."
        )

    # -- endpoints -------------------------------------------------------------------------------------------
    def ping(self, req: Request) -> Response:
        return _ok({"health_status": "Everything's Chimpy!"})

    def batch(self, req: Request) -> Response:
        """POST /3.0/lists/{list_id}: batch subscribe/update up to 500 members."""
        try:
            body = loads(req.body)
        except ValueError:
            return problem(400, "JSON Parse Error", "We encountered an unspecified JSON parsing error.")
        if type(body) is not dict:
            return _invalid([{"field": "", "message": "Schema describes object."}])
        errors = [{"field": k, "message": f"Unknown field '{k}'."} for k in body.keys() - BATCH_KEYS]
        members = body.get("members")
        if type(members) is not list:
            errors.append({"field": "members", "message": "Schema describes array; members is required."})
            members = []
        elif len(members) > MAX_BATCH_MEMBERS:
            errors.append(
                {
                    "field": "members",
                    "message": f"At most {MAX_BATCH_MEMBERS} members per batch; got {len(members)}.",
                }
            )
        for key in ("update_existing", "sync_tags"):
            if key in body and type(body[key]) is not bool:
                errors.append({"field": key, "message": "Schema describes boolean."})
        if not errors:
            for i, member in enumerate(members):
                errors.extend(member_shape_errors(member, f"members.item:{i}", email_required=True))
        if errors:
            return _invalid(errors)
        partial = partial_paths(req)
        if isinstance(partial, Response):
            return partial
        include, exclude = partial
        want_new, want_updated = (
            wanted(include, exclude, "new_members"),
            wanted(include, exclude, "updated_members"),
        )
        update_existing = body.get("update_existing", False)
        sync_tags = body.get("sync_tags", False)
        via = f"POST {BATCH}"
        list_id = req.params["list_id"]
        new: list[dict[str, Any] | None] = []  # None: counted, but trimmed from the answer
        updated: list[dict[str, Any] | None] = []
        failures: list[dict[str, str]] = []
        now = iso_now()  # one timestamp per batch: formatting it per member cost more than the upsert
        with self._lock:
            existing = self._list(list_id)
            if existing is None:
                return self.not_found()
            forgotten = self._state.forgotten.get(list_id, ())
            for item in members:
                email: str = item["email_address"]
                if not is_valid_email(email):
                    failures.append(
                        _batch_error(email, "Please provide a valid email address.", "email_address")
                    )
                    continue
                rule = self.faults.rejection(VENDOR, email)
                if rule is not None:
                    failures.append(
                        _batch_error(
                            email,
                            rule.message or f"{email} was rejected by the list's compliance review.",
                            None,
                            rule.code or "ERROR_GENERIC",
                        )
                    )
                    continue
                hash_ = subscriber_hash(email)
                member = existing.get(hash_)
                if member is None:
                    if hash_ in forgotten:
                        failures.append(_batch_error(email, self._forgotten_message(email), "email_address"))
                        continue
                    # status_if_new wins for a new member; `status` is the fallback (Mailchimp needs one).
                    status = item.get("status_if_new") or item.get("status")
                    if status is None:
                        failures.append(
                            _batch_error(email, "A new member needs status or status_if_new.", "status")
                        )
                        continue
                    created = self._create(list_id, hash_, item, status, now=now)
                    new.append(created.to_json() if want_new else None)
                elif member.archived or update_existing:
                    # Re-adding an archived contact is allowed without update_existing: it is not a list
                    # member any more. Its previous status is kept unless `status` says otherwise.
                    self._update(member, item, via, sync_tags=sync_tags, now=now)
                    updated.append(member.to_json() if want_updated else None)
                else:
                    failures.append(
                        _batch_error(
                            email,
                            f"{email} is already a list member, do you want to update? "
                            "please provide update_existing:true in the request body",
                            None,
                            "ERROR_CONTACT_EXISTS",
                        )
                    )
        answer = {
            "new_members": new if want_new else [],
            "updated_members": updated if want_updated else [],
            "errors": failures,
            "total_created": len(new),
            "total_updated": len(updated),
            "error_count": len(failures),
        }
        return _ok(trim(answer, include, exclude) if include is not None or exclude else answer)

    def list_members(self, req: Request) -> Response:
        try:
            count = int(req.query_one("count") or 10)
            offset = int(req.query_one("offset") or 0)
        except ValueError:
            return _invalid([{"field": "count", "message": "count and offset must be integers."}])
        if not 1 <= count <= MAX_PAGE or offset < 0:
            return _invalid([{"field": "count", "message": f"count must be 1..{MAX_PAGE}, offset >= 0."}])
        status = req.query_one("status")
        with self._lock:
            members = self._list(req.params["list_id"])
            if members is None:
                return self.not_found()
            chosen = [m for m in members.values() if status is None or m.visible_status == status]
            page = [m.to_json() for m in chosen[offset : offset + count]]
        return _ok({"members": page, "list_id": req.params["list_id"], "total_items": len(chosen)})

    def _member_or_404(self, req: Request) -> tuple[dict[str, Member] | None, Member | None]:
        members = self._list(req.params["list_id"])
        if members is None:
            return None, None
        return members, members.get(req.params["subscriber_hash"].lower())

    def get_member(self, req: Request) -> Response:
        with self._lock:
            _, member = self._member_or_404(req)
            if member is None:
                return self.not_found()
            return _ok(member.to_json())

    @staticmethod
    def _member_body(req: Request, *, email_required: bool) -> dict[str, Any] | Response:
        """The parsed PUT/PATCH body, or the 400 to send instead."""
        try:
            body = loads(req.body)
        except ValueError:
            return problem(400, "JSON Parse Error", "We encountered an unspecified JSON parsing error.")
        errors = member_shape_errors(body, "", email_required=email_required)
        if errors:
            return _invalid(errors)
        email = body.get("email_address")
        if email is not None and subscriber_hash(email) != req.params["subscriber_hash"].lower():
            # The hash names the member; an address hashing elsewhere is a client bug, not an email change.
            return _invalid(
                [{"field": "email_address", "message": "email_address does not match the subscriber hash."}]
            )
        return body

    def put_member(self, req: Request) -> Response:
        """Upsert one member: `status_if_new` for a new member, `status` (only) changes an existing one."""
        body = self._member_body(req, email_required=True)
        if isinstance(body, Response):
            return body
        email: str = body["email_address"]
        if not is_valid_email(email):
            return _invalid([{"field": "email_address", "message": "Please provide a valid email address."}])
        rule = self.faults.rejection(VENDOR, email)
        if rule is not None:
            return problem(400, "Invalid Resource", rule.message or f"{email} was rejected (injected).")
        with self._lock:
            members, member = self._member_or_404(req)
            if members is None:
                return self.not_found()
            if member is None:
                hash_ = subscriber_hash(email)
                if hash_ in self._state.forgotten.get(req.params["list_id"], ()):
                    return problem(400, "Forgotten Email Not Subscribed", self._forgotten_message(email))
                status = body.get("status_if_new") or body.get("status")
                if status is None:
                    return _invalid([{"field": "status_if_new", "message": "Required for a new member."}])
                return _ok(self._create(req.params["list_id"], hash_, body, status).to_json())
            self._update(member, body, f"PUT {MEMBER}")
            return _ok(member.to_json())

    def patch_member(self, req: Request) -> Response:
        body = self._member_body(req, email_required=False)
        if isinstance(body, Response):
            return body
        with self._lock:
            _, member = self._member_or_404(req)
            if member is None:
                return self.not_found()
            self._update(member, body, f"PATCH {MEMBER}")
            return _ok(member.to_json())

    def archive_member(self, req: Request) -> Response:
        """DELETE: archive (the contact stays, with its status, but is out of the audience)."""
        with self._lock:
            _, member = self._member_or_404(req)
            if member is None:
                return self.not_found()
            if not member.archived:
                member.archived = True
                member.last_changed = iso_now()
                self._audit(member, member.status, "archived", "archive", f"DELETE {MEMBER}")
        return Response(204)

    def delete_permanent(self, req: Request) -> Response:
        """Erase the member and everything about it; the address can never be re-imported."""
        list_id = req.params["list_id"]
        with self._lock:
            members, member = self._member_or_404(req)
            if members is None or member is None:
                return self.not_found()
            del members[member.id]
            self._state.forgotten.setdefault(list_id, set()).add(member.id)
            self._state.erasures.append(
                Erasure(VENDOR, member.email_address.lower(), list_id, member.id, True, time.time())
            )
        return Response(204)

    # -- accessors for tests ---------------------------------------------------------------------------------
    def members(self, list_id: str, include_archived: bool = True) -> dict[str, Member]:
        """Copies of a list's members keyed by lower-cased email."""
        with self._lock:
            return {
                m.email_address.lower(): m.copy()
                for m in self._state.lists.get(list_id, {}).values()
                if include_archived or not m.archived
            }

    def list_ids(self) -> list[str]:
        with self._lock:
            return sorted(self._state.lists)

    def member(self, list_id: str, email: str) -> Member | None:
        with self._lock:
            found = self._state.lists.get(list_id, {}).get(subscriber_hash(email))
            return found.copy() if found else None

    @property
    def creates(self) -> Counter[tuple[str, str]]:
        with self._lock:
            return Counter(self._state.creates)

    @property
    def status_changes(self) -> list[StatusChange]:
        with self._lock:
            return list(self._state.status_changes)

    def consent_changes(self) -> list[StatusChange]:
        """Only real status (consent) changes, not archive/unarchive."""
        return [c for c in self.status_changes if c.kind == "status"]

    @property
    def erasures(self) -> list[Erasure]:
        with self._lock:
            return list(self._state.erasures)

    def seed(
        self, list_id: str, email: str, status: str, merge_fields: dict[str, Any] | None = None
    ) -> Member:
        """Put a member in place directly (e.g. someone who unsubscribed in the ESP); not audited."""
        with self._lock:
            self.create_list(list_id)
            hash_ = subscriber_hash(email)
            body = {"email_address": email, "merge_fields": merge_fields}
            return self._create(list_id, hash_, body, status, by_client=False).copy()

    def reset(self) -> None:
        with self._lock:
            self._state = MailchimpState()
            self._web_ids = itertools.count(1)


def _batch_error(
    email: str, message: str, field_name: str | None, code: str = "ERROR_GENERIC"
) -> dict[str, str]:
    error = {"email_address": email, "error": message, "error_code": code}
    if field_name:
        error["field"] = field_name
        error["field_message"] = message
    return error

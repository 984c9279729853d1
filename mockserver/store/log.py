"""What a shared store's log holds, and the scripts that write it (``redis.py`` uses them).

**The codec.** An operation goes to the log as ``(name, args, cv, token)``: by
:mod:`marshal` when its arguments are plain data (a status poll's, a submit's, a rate-limit
token's: several times faster both ways than a pickle; a submit's job effects go as their
three numbers), else as a pickle (a rule's facts, a config, a failure: :func:`dumps_op`); a
snapshot as a pickle of a tenant's state. Pickles (and marshal): the store must be the
mock's own, as trusted as its memory (a Redis anyone else can write to could run code in the
mock), and every process sharing it runs the same version of the mock (the encoding and the
scripts' arguments are the version's own). No API key in clear goes into either: the
operations' arguments carry fingerprints, fault rules and scenarios are sealed before they
are logged (``faults.rules.sealed_spec``, ``control.api.sealed_scenario``), a request's
facts travel as ``rules.portable`` makes them, and a :class:`~..config.MockConfig` is
pickled with its accepted keys sealed and without its control token (each process keeps its
own, from its start-up settings).

**The scripts** (Lua, run by EVALSHA, loaded again on NOSCRIPT): :data:`STEP` appends an
operation to a tenant's log and reads every entry after the caller's cursor, in one round
trip (all but the caller's own when that is the only one new: ``'o'``); :data:`JOURNAL`
appends finished requests to a tenant's capped journal stream, and :data:`READ` reads it
once no entry is pending (a request answered whose entry is on its way: its mark, which STEP
set, is still there).
"""

from __future__ import annotations

import dataclasses
import io
import marshal
import pickle
import time
from typing import Any

from ..config import MockConfig
from ..engine.keys import sealed
from ..faults.effects import JobEffects

__all__ = [
    "DEFAULT_TAG",
    "JOURNAL",
    "PENDING_SECONDS",
    "READ",
    "STEP",
    "TOUCH_SECONDS",
    "Pin",
    "dumps",
    "dumps_op",
    "keys_of",
    "loads",
    "loads_op",
]


class Pin:
    """The wall clock of a tenant's copy: epoch seconds (``time.time``, the same on every
    process of a host), or, while an operation of the log is applied, the time the log
    stamped on it, so every copy computes the same ``now`` for it."""

    __slots__ = ("t",)

    def __init__(self) -> None:
        self.t: float | None = None

    def __call__(self) -> float:
        t = self.t
        return time.time() if t is None else t


def _config(fields: dict[str, Any]) -> MockConfig:
    """A config back from the log (unchecked: it was checked where it was made); the
    control token is set by the unpickler from the process's own start-up settings."""
    config = object.__new__(MockConfig)
    for field in dataclasses.fields(MockConfig):
        if field.name in fields:
            object.__setattr__(config, field.name, fields[field.name])
    return config


def _config_fields(config: MockConfig) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if field.name == "api_keys":
            value = frozenset(sealed(key) for key in value)
        elif field.name == "control_token":
            value = None
        elif isinstance(value, dict) or type(value).__name__ == "mappingproxy":
            value = dict(value)
        out[field.name] = value
    return out


class _Pickler(pickle.Pickler):
    def reducer_override(self, obj: Any) -> Any:
        if type(obj) is MockConfig:
            return _config, (_config_fields(obj),)
        return NotImplemented


class _Unpickler(pickle.Unpickler):
    def __init__(self, data: bytes, token: str | None) -> None:
        super().__init__(io.BytesIO(data))
        self._token = token

    def find_class(self, module: str, name: str) -> Any:
        if module == __name__ and name == "_config":
            return self._restore
        return super().find_class(module, name)

    def _restore(self, fields: dict[str, Any]) -> MockConfig:
        config = _config(fields)
        object.__setattr__(config, "control_token", self._token)
        return config


def dumps(value: Any) -> bytes:
    """``value`` pickled, any :class:`MockConfig` in it sealed. The C pickler first (most
    operations hold no config: much faster than a Python ``reducer_override`` called for
    every object); if what it wrote names the class (or it could not), again with the
    sealing one."""
    try:
        data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except (TypeError, pickle.PicklingError):  # (a config's mappingproxy, say)
        data = b"MockConfig"
    if b"MockConfig" not in data:
        return data
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(value)
    return buffer.getvalue()


def loads(data: bytes, control_token: str | None = None) -> Any:
    """Back from :func:`dumps`: a sealed config gets this process's control token (only a
    pickle that names ``_config`` can hold one: the others, by the C unpickler)."""
    if b"_config" not in data:
        return pickle.loads(data)
    return _Unpickler(data, control_token).load()


MARSHALLED = b"M"  # the first byte of an operation by marshal (a pickle's is 0x80)

Op = tuple[str, tuple[Any, ...], int | None, str]  # name, args, control version, token


def dumps_op(name: str, args: tuple[Any, ...], cv: int | None, token: str) -> bytes:
    """An operation for the log: by marshal when it takes its arguments (plain data, exact
    types: a str subclass, a config or a rule's facts it refuses), a submit's job effects
    (the last argument, no failure) as their three numbers; else by :func:`dumps`."""
    try:
        last = args[-1] if args else None
        if type(last) is JobEffects and last.failure is None:
            shape = (last.extra_queue, last.extra_processing, last.image_scale)
            return MARSHALLED + marshal.dumps((name, args[:-1], cv, token, shape))
        return MARSHALLED + marshal.dumps((name, args, cv, token, None))
    except ValueError:  # (not marshallable)
        return dumps((name, args, cv, token))


def loads_op(data: bytes, control_token: str | None = None) -> Op:
    """Back from :func:`dumps_op`."""
    if data[:1] != MARSHALLED:
        op: Op = loads(data, control_token)
        return op
    name, args, cv, token, shape = marshal.loads(memoryview(data)[1:])
    if shape is not None:
        args = (*args, JobEffects(None, *shape))
    return name, args, cv, token


def keys_of(tenant: str) -> dict[str, str]:
    """A tenant's keys, its name in a hash tag (Redis Cluster would keep a tenant on one
    shard). A name is at most a few dozen safe characters (tenants.py checks them); the
    default tenant's tag is ``{=}`` (an empty tag would hash the whole key)."""
    tag = "{" + (tenant or DEFAULT_TAG) + "}"
    return {
        "log": f"nb:{tag}:log",
        "n": f"nb:{tag}:n",
        "epoch": f"nb:{tag}:epoch",
        "snap": f"nb:{tag}:snap",
        "journal": f"nb:{tag}:journal",
        "jseq": f"nb:{tag}:jseq",
        "changed": f"nb:{tag}:changed",
        "pending": f"nb:{tag}:pending",
        "seen": f"nb:{tag}:seen",  # and ":<process>": how far a process's steps read
    }


DEFAULT_TAG = "="  # the default tenant's name in its keys: no tenant name has an "="
TENANTS_KEY = "nb:tenants"  # a sorted set: each tenant's last use (server time)

# KEYS: log, n, epoch, journal, jseq, snap, tenants, pending, seen (this process's)
# ARGV: first those the same for every step of a tenant (``redis.py`` packs them once):
#       count, tenant name, changed channel, idle seconds (a named tenant's keys expire
#       after them unused: it starts afresh; 0: never); then the cursor and its entry's
#       number n, payload ('' for a sync), flags ('c': a control operation, 'r': a reset,
#       which empties the journal, 'o': the caller applies its own operation itself, so
#       when it is the only entry new to the caller, it is not read back), the request's
#       mark ('' none): its journal entry is pending until JOURNAL removes the mark, and a
#       journal read waits for the pending entries (read-your-writes); and '1' when a step
#       of this process on this tenant is ahead of this one on its connection (its reply,
#       applied first, holds the log up to where it read: KEYS[9], this process's mark of
#       it, "<id> <n>"), so this one reads after that, not after the cursor; and '1' to
#       touch the tenant (its last use, its keys' expiry: each process does at most every
#       TOUCH_SECONDS, and whenever the tenant's keys are made anew)
# Returns: {own id or false, n, epoch, entries after the cursor or the mark (at most count),
#           the time stamped on the own entry}. Nothing new to the caller (n is the
#           cursor's), or only its own entry with 'o': no entries (no XRANGE).
STEP = """
local t = redis.call('TIME')
local now = t[1] .. '.' .. string.format('%06d', tonumber(t[2]))
local touch = ARGV[11] == '1'
local epoch = redis.call('GET', KEYS[3])
if not epoch then
  epoch = now
  redis.call('SET', KEYS[3], epoch)
  touch = true
end
local own = false
local n
if ARGV[7] ~= '' then
  n = redis.call('INCR', KEYS[2])
  if n == 1 then touch = true end
  own = redis.call('XADD', KEYS[1], '*', 'n', n, 't', now, 'op', ARGV[7])
  if string.find(ARGV[8], 'r', 1, true) then
    redis.call('DEL', KEYS[4], KEYS[5])
  end
  if string.find(ARGV[8], 'c', 1, true) then
    redis.call('PUBLISH', ARGV[3], own)
  end
else
  n = tonumber(redis.call('GET', KEYS[2]) or '0')
end
local idle = tonumber(ARGV[4])
if ARGV[9] ~= '' then
  redis.call('ZADD', KEYS[8], now, ARGV[9])
  if idle > 0 then redis.call('EXPIRE', KEYS[8], idle) end
end
if touch then
  if idle > 0 then
    for i = 1, 6 do redis.call('EXPIRE', KEYS[i], idle) end
    redis.call('ZREMRANGEBYSCORE', KEYS[7], '-inf', '(' .. (tonumber(t[1]) - idle))
  end
  redis.call('ZADD', KEYS[7], t[1], ARGV[2])
end
local from, from_n = ARGV[5], tonumber(ARGV[6])
if ARGV[10] == '1' then
  local seen = redis.call('GET', KEYS[9])
  if seen then
    local space = string.find(seen, ' ', 1, true)
    from, from_n = string.sub(seen, 1, space - 1), tonumber(string.sub(seen, space + 1))
  end
end
local mine = own and string.find(ARGV[8], 'o', 1, true)
if (not own and n == from_n) or (mine and n == from_n + 1) then
  if own then redis.call('SET', KEYS[9], own .. ' ' .. n, 'EX', 60)
  elseif ARGV[10] ~= '1' then redis.call('SET', KEYS[9], from .. ' ' .. from_n, 'EX', 60) end
  return {own, n, epoch, {}, now}
end
local entries = redis.call('XRANGE', KEYS[1], '(' .. from, '+', 'COUNT', ARGV[1])
if #entries > 0 then
  local last = entries[#entries]
  redis.call('SET', KEYS[9], last[1] .. ' ' .. last[2][2], 'EX', 60)
elseif ARGV[10] ~= '1' then
  redis.call('SET', KEYS[9], from .. ' ' .. from_n, 'EX', 60)
end
return {own, n, epoch, entries, now}
"""

TOUCH_SECONDS = 2.0  # a process touches a tenant (last use, keys' expiry) this often at most
PENDING_SECONDS = 5  # a mark older than this is a lost entry (its process died), not pending

# KEYS: journal, jseq, pending.  ARGV: max length, idle seconds (as STEP's), the number of
# marks k, k marks (each request's, which STEP set: its entry is no longer pending), then one
# JSON record per entry. Each entry gets the next sequence number (the journal's seq, counted
# across processes). Marks older than PENDING_SECONDS (a process that died before writing its
# entries) are dropped.
JOURNAL = """
local marks = tonumber(ARGV[3])
for i = 4 + marks, #ARGV do
  local seq = redis.call('INCR', KEYS[2])
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 's', seq, 'e', ARGV[i])
end
if marks > 0 then
  redis.call('ZREM', KEYS[3], unpack(ARGV, 4, 3 + marks))
  local t = redis.call('TIME')
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. (tonumber(t[1]) - PENDING_SECONDS))
end
local idle = tonumber(ARGV[2])
if idle > 0 then
  redis.call('EXPIRE', KEYS[1], idle)
  redis.call('EXPIRE', KEYS[2], idle)
  redis.call('EXPIRE', KEYS[3], idle)
end
return #ARGV - 3 - marks
""".replace("PENDING_SECONDS", str(PENDING_SECONDS))

# KEYS: journal, jseq, pending.  ARGV: count, wait ('1': wait for pending entries, '0': read
# anyway). Returns false while an entry is pending (a mark younger than PENDING_SECONDS, the
# older ones dropped), else {the last count entries, newest first; the seq counter}.
READ = """
if ARGV[2] == '1' then
  local t = redis.call('TIME')
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. (tonumber(t[1]) - PENDING_SECONDS))
  if redis.call('ZCARD', KEYS[3]) > 0 then return false end
end
return {redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', ARGV[1]),
        redis.call('GET', KEYS[2]) or '0'}
""".replace("PENDING_SECONDS", str(PENDING_SECONDS))

"""The distribution: TOML (or command-line flags) to a typed, validated, frozen config.

The file is checked with the JSON Schema in ``schemas/config.json`` first, then for what a schema cannot say
(a behavior naming an origin that does not exist, a directory that is missing). Every problem becomes one
:class:`~edgeproxy.errors.ConfigError` naming the file, the key path and what is wrong. Handler references are
resolved later, when the runtime loads them, and reported the same way.
"""

from __future__ import annotations

import ipaddress
import json
import math
import os
import re
import shutil
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal, overload

import jsonschema
from yarl import URL

from edgeproxy import policies, viewer
from edgeproxy.errors import ConfigError
from edgeproxy.headers import forbidden_in_field
from edgeproxy.policies import LEGACY, Policies
from edgeproxy.triggers import FACTS
from edgeproxy.triggers import TRIGGERS as TRIGGERS  # re-exported: the config API names its triggers
from edgeproxy.triggers import Trigger as Trigger


def check_limits(trigger: Trigger, *, timeout: float | None, memory: int, source: str, keys: tuple[str, str]) -> None:
    """Raise :class:`ConfigError` for a ``timeout`` or ``memory`` over what Lambda@Edge allows at ``trigger``
    (§2.4; CloudFront refuses such an association when the distribution is deployed), naming the key it was given
    under (``keys``: the timeout's, the memory's) and the limit."""
    facts, origin = FACTS[trigger], FACTS["origin-request"]
    side = facts.location
    viewer_note = " (origin triggers: {})" if side == "viewer" else ""
    if timeout is not None and timeout > facts.max_timeout:
        note = viewer_note.format(f"{origin.max_timeout:g} s")
        problem = f"{timeout:g} s is over Lambda@Edge's limit for {side} triggers, {facts.max_timeout:g} s{note}"
        raise ConfigError(source, keys[0], problem)
    if memory > facts.max_memory:
        note = viewer_note.format(f"{origin.max_memory:,} MB")
        problem = f"{memory:,} MB is over Lambda@Edge's limit for {side} triggers, {facts.max_memory:,} MB{note}"
        raise ConfigError(source, keys[1], problem)


DEFAULT_DOMAIN_NAME = "d111111abcdef8.cloudfront.net"
DEFAULT_DISTRIBUTION_ID = "EDFDVBD6EXAMPLE"
DEFAULT_POP = "IAD89-C1"
DEFAULT_METHODS = frozenset({"GET", "HEAD"})
ALLOWED_METHOD_SETS = (
    DEFAULT_METHODS,
    frozenset({"GET", "HEAD", "OPTIONS"}),
    frozenset({"GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"}),
)
# Which of CloudFront's documented read-only lists applies at viewer-response (reference §3.4, §10.5).
ViewerResponseReadOnly = Literal["current", "2021"]
CLOUDFRONT_TABLES = (
    "distribution",
    "origins",
    "behaviors",
    "default_behavior",
    "resolve",
    "viewer",
    "custom_error_responses",
)
DEFAULT_CACHE_SIZE = 256 * 1024 * 1024  # [distribution] cache_size: the edge cache's memory bound, in bytes
SIZE_UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}
# §5.6: the error caching minimum TTL when no custom error response sets one.
ERROR_CACHING_MIN_TTL = 10


@dataclass(frozen=True)
class CustomOrigin:
    """An HTTP origin. ``path`` is the origin path, prefixed to every forwarded uri (§5.2)."""

    name: str
    protocol: str
    domain_name: str
    port: int
    path: str = ""
    read_timeout: float = 30.0
    keepalive_timeout: float = 5.0
    custom_headers: tuple[tuple[str, str], ...] = ()
    connection_attempts: int = 3  # §5.2: 1-3
    connection_timeout: float = 10.0  # §5.2: 1-10 s, for each attempt


S3_REGION = "us-east-1"  # the region a folder origin's bucket is in, as origin.s3 tells a function (§1.6)


@dataclass(frozen=True)
class DirectoryOrigin:
    """An S3-style origin served from a local folder. It stands for the S3 bucket ``bucket`` (by default the
    origin's name, lower-cased as bucket names are): a function that switches to that bucket by any of its host
    names (:func:`bucket_of`) gets this folder."""

    name: str
    directory: Path
    custom_headers: tuple[tuple[str, str], ...] = ()
    bucket: str = ""

    def __post_init__(self) -> None:
        if not self.bucket:
            object.__setattr__(self, "bucket", self.name.lower())

    @property
    def domain_name(self) -> str:
        """The bucket's regional REST endpoint, the form the CloudFront console fills in for an S3 origin."""
        return f"{self.bucket}.s3.{S3_REGION}.amazonaws.com"


Origin = CustomOrigin | DirectoryOrigin

_REGION = r"[a-z]{2}(?:-[a-z]+)+-[0-9]+"
# The host names of S3's virtual-hosted-style endpoints (S3 user guide, "Virtual hosting of buckets" and "Amazon S3
# endpoints"): regional (<bucket>.s3.<region>), the legacy global endpoint (<bucket>.s3) and dash-region form
# (<bucket>.s3-<region>, s3-external-1), dual-stack, FIPS and Transfer Acceleration, in aws and China partitions.
# Website endpoints (s3-website-<region>) are not here: CloudFront treats them as custom origins (§5.2).
S3_HOST = re.compile(
    rf"(?P<bucket>.+?)\.(?:s3|s3-external-1|s3-{_REGION}|s3(?:-fips)?(?:\.dualstack)?\.{_REGION}"
    r"|s3-accelerate(?:\.dualstack)?)\.amazonaws\.com(?:\.cn)?"
)


def bucket_of(host: str) -> str | None:
    """The bucket an S3 host name addresses (``my-bucket.s3.eu-west-1.amazonaws.com`` -> ``my-bucket``), or None."""
    match = S3_HOST.fullmatch(host.lower())
    return None if match is None else match["bucket"]


BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
IP_ADDRESS_FORM = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+")
RESERVED_BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
RESERVED_BUCKET_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def bucket_name_problem(name: str) -> str | None:
    """What is wrong with ``name`` as a general purpose bucket name (S3 user guide, "Bucket naming rules")."""
    if not BUCKET_NAME.fullmatch(name):
        return (
            "a bucket name is 3-63 lower-case letters, digits, '.' and '-', starting and ending with a letter or digit"
        )
    if ".." in name:
        return "a bucket name has no two adjacent periods"
    if IP_ADDRESS_FORM.fullmatch(name):
        return "a bucket name is not an IP address"
    if name.startswith(RESERVED_BUCKET_PREFIXES) or name.endswith(RESERVED_BUCKET_SUFFIXES):
        return "a bucket name does not start with xn--, sthree- or amzn-s3-demo-, nor end with an S3 reserved suffix"
    return None


# A handler reference (``file.py:function``, ``file.mjs:handler`` or ``module.function``), or the function itself
# (the Python API).
HandlerRef = str | Callable[..., Any]
# Where a function runs: "process", in execution environments of its own (child processes, as Lambda runs each
# environment), or "thread", on a worker thread of the proxy's own process (Python only).
Isolation = Literal["thread", "process"]
DEFAULT_CONCURRENCY = 32  # per function: environments that may run at once, beyond which invocations are throttled
# Seconds an idle environment is kept before it is reclaimed. Lambda documents no figure; environments are observed
# to last about 10 minutes idle (lambda-runtime-facts §11).
DEFAULT_IDLE_RECLAIM = 600.0


@dataclass(frozen=True)
class Association:
    """One function associated with one trigger of one behavior.

    ``source`` and ``key`` say where it was configured, so that a handler that cannot be loaded is reported
    against the config line that named it.
    """

    handler: HandlerRef
    base_dir: Path
    source: str
    key: str
    include_body: bool = False
    timeout: float | None = None
    memory: int = 128
    # Handler references run in environments of their own by default; a Python callable always runs on a thread.
    isolation: Isolation = "process"
    python: str | None = None  # the interpreter of a Python function's environments (None: the proxy's own)
    node: str | None = None  # the node of a Node.js function's environments (None: "node" on PATH)
    concurrency: int = DEFAULT_CONCURRENCY


@dataclass(frozen=True)
class Behavior:
    """A cache behavior: a path pattern, the origin it routes to, its methods, its functions, and its cache and
    origin request policies (:data:`~edgeproxy.policies.LEGACY` when it names neither). ``cached_methods``: GET and
    HEAD, and OPTIONS if named (§5.3)."""

    path_pattern: str
    origin: Origin
    allowed_methods: frozenset[str] = DEFAULT_METHODS
    functions: Mapping[Trigger, Association] = field(default_factory=dict)
    policies: Policies = LEGACY
    cached_methods: frozenset[str] = DEFAULT_METHODS

    def matches(self, path: str) -> bool:
        return _pattern_regex(self.path_pattern).fullmatch(path.removeprefix("/")) is not None


@dataclass(frozen=True)
class CustomErrorResponse:
    """One ``[[custom_error_responses]]`` entry (§5.6): for origin status ``error_code``, the page at
    ``response_page_path`` (fetched through the behavior its path matches) is sent with ``response_code`` (a config
    file gives both or neither, as CloudFront's API requires; the origin's status when not given), and the error is
    cached for at least ``error_caching_min_ttl`` seconds."""

    error_code: int
    response_page_path: str | None = None
    response_code: int | None = None
    error_caching_min_ttl: int = ERROR_CACHING_MIN_TTL


@dataclass(frozen=True)
class Distribution:
    """Everything the proxy serves: ordered behaviors, then the default behavior (§5.1)."""

    default_behavior: Behavior
    behaviors: tuple[Behavior, ...] = ()
    domain_name: str = DEFAULT_DOMAIN_NAME
    id: str = DEFAULT_DISTRIBUTION_ID
    pop: str = DEFAULT_POP
    origins: Mapping[str, Origin] = field(default_factory=dict)
    # "current": Warning and Via are read-only at viewer-response; "2021": also Content-Encoding, Content-Length and
    # Transfer-Encoding, as the guide said until 2021.
    viewer_response_read_only: ViewerResponseReadOnly = "current"
    # [resolve]: where to connect for an origin host name ("host" or "host:port", lower case), see `resolve_table`.
    resolve: Mapping[str, URL] = field(default_factory=dict)
    cache_size: int = DEFAULT_CACHE_SIZE  # bytes
    viewer: viewer.Location = viewer.DEFAULT_LOCATION  # [viewer]: the simulated viewer's location
    custom_error_responses: Mapping[int, CustomErrorResponse] = field(default_factory=dict)  # by error code
    idle_reclaim: float = DEFAULT_IDLE_RECLAIM  # seconds an idle execution environment is kept

    def behavior_for(self, path: str) -> Behavior:
        """The first behavior whose pattern matches the viewer's original path; the default one otherwise."""
        for behavior in self.behaviors:
            if behavior.matches(path):
                return behavior
        return self.default_behavior

    def all_behaviors(self) -> tuple[Behavior, ...]:
        return (*self.behaviors, self.default_behavior)


@cache
def _pattern_regex(pattern: str) -> re.Pattern[str]:
    # §5.1: '*' is any run of characters including '/', '?' exactly one; case-sensitive; leading '/' optional.
    body = "".join(
        ".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern.removeprefix("/")
    )
    return re.compile(body, re.DOTALL)


@cache
def _schema_validator() -> jsonschema.protocols.Validator:
    schema = json.loads(resources.files("edgeproxy").joinpath("schemas/config.json").read_text())
    validator_class = jsonschema.validators.validator_for(schema)
    validator: jsonschema.protocols.Validator = validator_class(schema)
    return validator


def _key_path(path: Sequence[Any]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _describe(error: jsonschema.ValidationError) -> tuple[str, str]:
    """The key path and a plain-words problem for the most relevant schema error."""
    key = _key_path(error.absolute_path)
    if error.validator == "additionalProperties":
        schema: Any = error.schema
        known = set(schema.get("properties", {}))
        instance: Any = error.instance
        unknown = sorted(set(instance) - known)
        allowed = ", ".join(sorted(known)) or "none"
        name = unknown[0] if unknown else "?"
        return _key_path([*error.absolute_path, name]), f"unknown key (allowed here: {allowed})"
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return _key_path([*error.absolute_path, missing]), "required key is missing"
    if error.validator == "oneOf" and key.startswith("origins."):
        return key, "an origin needs exactly one of 'url' (an HTTP origin) or 'directory' (an S3-style folder)"
    if error.validator == "oneOf" and ".functions." in key:
        return key, (
            "a function association is either a handler reference string or a table with 'handler' "
            "and optional 'include_body', 'timeout', 'memory', 'isolation', 'python', 'node', 'concurrency'"
        )
    if error.validator == "oneOf" and key.endswith(("_policy.cookies", "_policy.query_strings", "_policy.headers")):
        if key.endswith("cache_policy.headers"):
            return key, 'a cache policy\'s headers are a list of header names (or "none")'
        return key, f'{error.instance!r} is not "none", "all", {{ include = [...] }} or {{ exclude = [...] }}'
    if error.validator == "oneOf" and key.endswith(("cache_policy", "origin_request_policy")):
        return key, (
            "a policy is a managed policy's name or id, or an inline table (see the README's Cache and policies); "
            f"{error.instance!r} is neither"
        )
    if error.validator == "enum" and key.endswith("isolation"):
        problem = f"{error.instance!r} is not 'process' (environments of their own) or 'thread' (in the proxy)"
        return key, problem
    if error.validator == "pattern" and key.endswith("path_pattern"):
        return key, (
            f"{error.instance!r} is not a valid path pattern (allowed characters: "
            "A-Z a-z 0-9 _ - . * $ / ~ \" ' @ : + & ?)"
        )
    if error.validator == "enum" and key.endswith("viewer_response_read_only"):
        return key, (
            f'{error.instance!r} is not "current" (Warning, Via read-only at viewer-response) or "2021" '
            "(also Content-Encoding, Content-Length, Transfer-Encoding)"
        )
    if error.validator == "pattern" and key.endswith(".url"):
        return key, f"{error.instance!r} is not an http:// or https:// URL without query or fragment"
    expected: Any = error.validator_value
    given: Any = error.instance
    if error.validator == "type":  # in TOML's words: true, not Python's True
        wanted = [str(each) for each in (expected if isinstance(expected, list) else [expected])]
        return key, f"{_toml(given)} is not {' or '.join(_TYPE_WORDS.get(each, each) for each in wanted)}"
    if error.validator == "maxProperties":
        return key, f"at most {expected} entries (CloudFront's quota); there are {len(given)}"
    if error.validator == "minLength" and error.validator_value == 1:
        return key, "must not be empty"
    return key, error.message


_TYPE_WORDS = {
    "number": "a number",
    "integer": "a whole number",
    "string": "a string",
    "boolean": "true or false",
    "object": "a table",
    "array": "a list",
}


def _toml(value: Any) -> str:
    """``value`` as a TOML file spells it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def load(path: str | Path) -> Distribution:
    """Read, validate and build the distribution described by a TOML file."""
    return from_mapping(_read(path), source=str(path), base_dir=Path(path).resolve().parent)


def load_any(path: str | Path) -> Distribution | TargetGroup:
    """Read a TOML file that describes either a CloudFront distribution or, with an ``[alb]`` table, an ALB target
    group in front of one Lambda function (what ``edgeproxy serve --config`` accepts)."""
    raw = _read(path)
    base_dir = Path(path).resolve().parent
    if "alb" in raw:
        return target_group_from_mapping(raw, source=str(path), base_dir=base_dir)
    return from_mapping(raw, source=str(path), base_dir=base_dir)


def _read(path: str | Path) -> dict[str, Any]:
    source = str(path)
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(source, "", "file not found") from None
    except OSError as exc:
        raise ConfigError(source, "", f"cannot be read: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(source, "", f"not valid TOML: {exc}") from None


def _validate(raw: Mapping[str, Any], source: str) -> None:
    """Schema validation, after the one check whose schema message would be unreadable: ``[alb]`` is a file of its
    own, never mixed with the CloudFront tables."""
    if "alb" in raw:
        mixed = [name for name in CLOUDFRONT_TABLES if name in raw]
        if mixed:
            raise ConfigError(
                source,
                mixed[0],
                "an [alb] config describes an ALB target group and cannot also have the CloudFront tables "
                f"({', '.join(CLOUDFRONT_TABLES)}); use one file for each",
            )
    if (where := _not_finite(raw, [])) is not None:  # TOML has nan and inf, which pass any schema bound
        raise ConfigError(source, _key_path(where), "nan and inf are not numbers edgeproxy or CloudFront accept")
    error = jsonschema.exceptions.best_match(_schema_validator().iter_errors(raw))
    if error is not None:
        key, problem = _describe(error)
        raise ConfigError(source, key, problem)


def _not_finite(value: Any, where: list[str | int]) -> list[str | int] | None:
    """Where in a parsed TOML document a float is nan or infinite, or ``None``."""
    if isinstance(value, float) and not math.isfinite(value):
        return where
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        if (found := _not_finite(item, [*where, key])) is not None:
            return found
    return None


def from_mapping(raw: Mapping[str, Any], *, source: str, base_dir: Path) -> Distribution:
    """Build a distribution from an already-parsed config mapping (a TOML document's contents)."""
    _validate(raw, source)
    if "alb" in raw:
        raise ConfigError(source, "alb", "this file describes an ALB target group, not a CloudFront distribution")
    if "origins" not in raw:
        raise ConfigError(source, "origins", "at least one origin is required")
    if "default_behavior" not in raw:
        raise ConfigError(source, "default_behavior", "required key is missing")

    origins = {
        name: _build_origin(name, spec, source=source, base_dir=base_dir) for name, spec in raw["origins"].items()
    }
    buckets: dict[str, str] = {}
    for name, origin in origins.items():
        if isinstance(origin, DirectoryOrigin):
            if origin.bucket in buckets:
                problem = f"bucket {origin.bucket!r} is also the bucket of folder origin {buckets[origin.bucket]!r}"
                raise ConfigError(source, f"origins.{name}", problem)
            buckets[origin.bucket] = name
    resolve = resolve_table(raw.get("resolve", {}), source=source, buckets=buckets)
    distribution = raw.get("distribution", {})
    defaults = environment_settings(distribution, source=source, key="distribution", base_dir=base_dir)

    def behavior(spec: Mapping[str, Any], key: str) -> Behavior:
        origin_name = spec["origin"]
        if origin_name not in origins:
            known = ", ".join(sorted(origins))
            raise ConfigError(source, f"{key}.origin", f"no origin named {origin_name!r} (origins: {known})")
        functions = {
            trigger: _build_association(
                trigger, value, source=source, key=f"{key}.functions.{trigger}", base_dir=base_dir, defaults=defaults
            )
            for trigger, value in spec.get("functions", {}).items()
        }
        allowed_methods = frozenset(spec.get("allowed_methods", DEFAULT_METHODS))
        cached_methods = frozenset(spec.get("cached_methods", DEFAULT_METHODS))
        # AllowedMethods and CachedMethods are sets (Quantity 2, 3 or 7; 2 or 3): any order, as AWS's own examples.
        if allowed_methods not in ALLOWED_METHOD_SETS:
            problem = "CloudFront allows only GET, HEAD; GET, HEAD, OPTIONS; or those with PUT, POST, PATCH, DELETE"
            raise ConfigError(source, f"{key}.allowed_methods", f"{sorted(allowed_methods)}: {problem}")
        if cached_methods not in ALLOWED_METHOD_SETS[:2]:
            problem = "CloudFront caches only GET, HEAD; or GET, HEAD, OPTIONS"
            raise ConfigError(source, f"{key}.cached_methods", f"{sorted(cached_methods)}: {problem}")
        if not cached_methods <= allowed_methods:
            problem = "OPTIONS can be cached only where it is allowed (allowed_methods)"
            raise ConfigError(source, f"{key}.cached_methods", problem)
        return Behavior(
            path_pattern=spec.get("path_pattern", "*"),
            origin=origins[origin_name],
            allowed_methods=allowed_methods,
            functions=functions,
            policies=policies.for_behavior(
                spec.get("cache_policy"), spec.get("origin_request_policy"), source=source, key=key
            ),
            cached_methods=cached_methods,
        )

    return Distribution(
        default_behavior=behavior(raw["default_behavior"], "default_behavior"),
        behaviors=tuple(behavior(spec, f"behaviors[{i}]") for i, spec in enumerate(raw.get("behaviors", []))),
        domain_name=distribution.get("domain_name", DEFAULT_DOMAIN_NAME),
        id=distribution.get("id", DEFAULT_DISTRIBUTION_ID),
        pop=distribution.get("pop", DEFAULT_POP),
        origins=origins,
        viewer_response_read_only=distribution.get("viewer_response_read_only", "current"),
        resolve=resolve,
        cache_size=_size(distribution.get("cache_size", DEFAULT_CACHE_SIZE), source=source),
        viewer=_viewer(raw.get("viewer", {}), source=source),
        custom_error_responses=_custom_error_responses(raw.get("custom_error_responses", []), source=source),
        idle_reclaim=float(distribution.get("idle_reclaim", DEFAULT_IDLE_RECLAIM)),
    )


def _size(value: int | str, *, source: str) -> int:
    """``cache_size``: bytes, or ``"256MB"`` (KB, MB and GB of 1,024)."""
    if isinstance(value, int):
        return value
    number, unit = re.fullmatch(r"([0-9.]+) ?([KMG]?B)", value).groups()  # type: ignore[union-attr]  # the schema
    return int(float(number) * SIZE_UNITS[unit])


def _viewer(raw: Mapping[str, Any], *, source: str) -> viewer.Location:
    try:
        return viewer.location(raw)
    except viewer.LocationError as error:
        raise ConfigError(source, f"viewer.{error.field}", error.problem) from None


def _custom_error_responses(raw: Sequence[Mapping[str, Any]], *, source: str) -> dict[int, CustomErrorResponse]:
    responses: dict[int, CustomErrorResponse] = {}
    for index, spec in enumerate(raw):
        key = f"custom_error_responses[{index}]"
        code = spec["error_code"]
        if code in responses:
            raise ConfigError(source, f"{key}.error_code", f"error code {code} already has a custom error response")
        # CustomErrorResponse: "If you specify a value for ResponsePagePath, you must also specify a value for
        # ResponseCode" (CloudFront's API reference; CloudFront refuses one without the other).
        if "response_code" in spec and "response_page_path" not in spec:
            raise ConfigError(source, f"{key}.response_code", "a response_code goes with a response_page_path")
        if "response_page_path" in spec and "response_code" not in spec:
            problem = "a response_page_path goes with a response_code (the status sent with the page)"
            raise ConfigError(source, f"{key}.response_code", problem)
        responses[code] = CustomErrorResponse(
            error_code=code,
            response_page_path=spec.get("response_page_path"),
            response_code=spec.get("response_code"),
            error_caching_min_ttl=spec.get("error_caching_min_ttl", ERROR_CACHING_MIN_TTL),
        )
    return responses


# "Custom headers that CloudFront can't add to origin requests" (add-origin-custom-headers), and its prefixes.
CUSTOM_HEADER_DENIED = frozenset(
    name.lower()
    for name in (
        "Cache-Control", "Connection", "Content-Length", "Cookie", "Host", "If-Match", "If-Modified-Since",
        "If-None-Match", "If-Range", "If-Unmodified-Since", "Max-Forwards", "Pragma", "Proxy-Authorization",
        "Proxy-Connection", "Range", "Request-Range", "TE", "Trailer", "Transfer-Encoding", "Upgrade", "Via",
        "X-Real-Ip",
    )
)  # fmt: skip
CUSTOM_HEADER_DENIED_PREFIXES = ("x-amz-", "x-edge-")
CUSTOM_HEADERS_TOTAL = 10_240  # characters of all names and values together (CloudFront's quota)


def custom_header_problem(name: str, value: str) -> str | None:
    """Why CloudFront would refuse an origin custom header, or ``None``."""
    lower = name.lower()
    if lower in CUSTOM_HEADER_DENIED or lower.startswith(CUSTOM_HEADER_DENIED_PREFIXES):
        return f"CloudFront cannot add {name!r} to origin requests (add-origin-custom-headers, the denylist)"
    if (character := forbidden_in_field(value)) is not None:
        return f"the value {value!r} holds {character}, which no header value may"
    return None


def _custom_headers(raw: Mapping[str, str], *, source: str, key: str) -> tuple[tuple[str, str], ...]:
    for name, value in raw.items():
        if problem := custom_header_problem(name, value):
            raise ConfigError(source, f"{key}.{name}", problem)
    if (total := sum(len(name) + len(value) for name, value in raw.items())) > CUSTOM_HEADERS_TOTAL:
        problem = f"the names and values add up to {total} characters; CloudFront allows {CUSTOM_HEADERS_TOTAL}"
        raise ConfigError(source, key, problem)
    return tuple(raw.items())


def _build_origin(name: str, spec: Mapping[str, Any], *, source: str, base_dir: Path) -> Origin:
    custom_headers = _custom_headers(
        spec.get("custom_headers", {}), source=source, key=f"origins.{name}.custom_headers"
    )
    if "directory" in spec:
        directory = (base_dir / spec["directory"]).resolve()
        if not directory.is_dir():
            raise ConfigError(source, f"origins.{name}.directory", f"{str(directory)!r} is not a directory")
        bucket = spec.get("bucket", name.lower())
        if problem := bucket_name_problem(bucket):
            if "bucket" in spec:
                raise ConfigError(source, f"origins.{name}.bucket", f"{bucket!r} is not an S3 bucket name: {problem}")
            problem = f"the bucket name defaults to the origin's name lower-cased, {bucket!r}, but {problem}"
            raise ConfigError(source, f"origins.{name}", f'{problem}; set bucket = "..."')
        return DirectoryOrigin(name=name, directory=directory, custom_headers=custom_headers, bucket=bucket)
    if "bucket" in spec:
        problem = "bucket names the S3 bucket a folder origin (directory = ...) stands for; an HTTP origin has a url"
        raise ConfigError(source, f"origins.{name}.bucket", problem)
    try:
        return custom_origin_from_url(
            name,
            spec["url"],
            read_timeout=spec.get("read_timeout", 30.0),
            keepalive_timeout=spec.get("keepalive_timeout", 5.0),
            custom_headers=custom_headers,
            connection_attempts=spec.get("connection_attempts", 3),
            connection_timeout=spec.get("connection_timeout", 10.0),
        )
    except ValueError as exc:
        raise ConfigError(source, f"origins.{name}.url", str(exc)) from None


HOST_NAME = re.compile(r"(?=.{1,253}$)[A-Za-z0-9_-]{1,63}(?:\.[A-Za-z0-9_-]{1,63})*")


def resolve_table(raw: Mapping[str, str], *, source: str, buckets: Mapping[str, str]) -> dict[str, URL]:
    """The ``[resolve]`` table, checked: ``"host"`` or ``"host:port"`` -> an ``http(s)://host[:port]`` URL that every
    connection to that origin host name (and port) goes to instead, whether the origin is configured or a function
    switched to it. The event and the ``Host`` header keep the name; only the connection changes, as with curl's
    ``--connect-to``. ``buckets`` (bucket -> folder origin) may not be resolved too: a folder serves them."""
    table: dict[str, URL] = {}
    for key, value in raw.items():
        where = f'resolve."{key}"'
        host, colon, port = key.lower().partition(":")
        if not HOST_NAME.fullmatch(host) or (colon and not (port.isdigit() and 0 < int(port) < 65536)):
            raise ConfigError(source, where, "a key is an origin host name, optionally with ':port' (1-65535)")
        bucket = bucket_of(host)
        if bucket is not None and bucket in buckets:
            problem = f"bucket {bucket!r} is the folder origin {buckets[bucket]!r}'s: a folder or [resolve], not both"
            raise ConfigError(source, where, problem)
        url = _local_url(value)
        if url is None:
            problem = f"{value!r} is not an http:// or https:// URL with only a host and port (no path or query)"
            if "://" not in value:
                problem += "; a folder is a folder origin (directory = ...) with the bucket it stands for"
            raise ConfigError(source, where, problem)
        normal = host + colon + port
        if normal in table:
            raise ConfigError(source, where, f"{normal!r} is resolved twice (host names are case-insensitive)")
        table[normal] = url
    return table


def _local_url(value: str) -> URL | None:
    """``value`` as an ``http(s)://host[:port]`` URL, or None if it is anything else."""
    try:
        url = URL(value)
    except ValueError:
        return None
    if url.scheme not in ("http", "https") or not url.host or url.raw_path not in ("", "/"):
        return None
    if url.raw_query_string or url.raw_fragment or url.raw_user is not None:
        return None
    return URL.build(scheme=url.scheme, host=url.host, port=url.port)


def custom_origin_from_url(
    name: str,
    url: str,
    *,
    read_timeout: float = 30.0,
    keepalive_timeout: float = 5.0,
    custom_headers: tuple[tuple[str, str], ...] = (),
    connection_attempts: int = 3,
    connection_timeout: float = 10.0,
) -> CustomOrigin:
    """An HTTP origin from a URL whose path is the origin path (``http://127.0.0.1:3000/prod``). Raises
    ``ValueError`` saying what CloudFront would refuse in it."""
    try:
        parsed = URL(url)
        port = parsed.explicit_port
    except ValueError as exc:
        raise ValueError(f"{url!r} is not a URL: {exc}") from None
    if parsed.scheme not in ("http", "https") or not parsed.raw_host:
        raise ValueError(f"{url!r} is not an http:// or https:// URL")
    if problem := _origin_url_problem(url, parsed, port):
        raise ValueError(f"{url!r}: {problem}")
    return CustomOrigin(
        name=name,
        protocol=parsed.scheme,
        # The DNS name, as CloudFront holds an origin's domain name (and sends it as the Host header): an
        # internationalised name in its IDNA (xn--) form, not decoded (yarl's URL.host decodes it).
        domain_name=parsed.raw_host,
        port=port if port is not None else 443 if parsed.scheme == "https" else 80,
        path="" if parsed.raw_path == "/" else parsed.raw_path,
        read_timeout=float(read_timeout),
        keepalive_timeout=float(keepalive_timeout),
        custom_headers=custom_headers,
        connection_attempts=connection_attempts,
        connection_timeout=float(connection_timeout),
    )


def _origin_url_problem(url: str, parsed: URL, port: int | None) -> str | None:
    """What CloudFront would refuse in an origin given as a URL: its domain name, port and origin path."""
    host = parsed.raw_host or ""
    try:
        ipaddress.ip_address(host)  # CloudFront wants a domain name; an address is allowed here, for local origins
    except ValueError:
        if not HOST_NAME.fullmatch(host) or any(
            label.startswith("-") or label.endswith("-") for label in host.split(".")
        ):
            return f"{host!r} is not a domain name (labels of letters, digits and hyphens, at most 63 each)"
    # CloudFront's origin ports are 80, 443 and 1024-65535; any other is allowed here, for local origins (and the
    # ports that are known to have nothing listening, which tests use).
    if port == 0:
        return "port 0 is no port"
    if parsed.raw_user is not None or parsed.raw_password is not None:
        return "an origin URL holds no user or password (CloudFront sends none; use custom_headers)"
    if parsed.raw_query_string or parsed.raw_fragment or "?" in url or "#" in url:
        return "an origin URL holds no query or fragment (only a path: the origin path)"
    if parsed.raw_path not in ("", "/") and parsed.raw_path.endswith("/"):
        return f"the origin path {parsed.raw_path!r} ends with '/' (CloudFront: begin with '/', do not end with one)"
    return None


def interpreter(value: str, *, source: str, key: str, base_dir: Path) -> str:
    """A ``python = "..."`` or ``node = "..."`` setting as the path of an executable: a path (relative to the config
    file's folder) or a bare name looked up on PATH. Raises :class:`ConfigError` naming the key if there is none."""
    if os.sep not in value and "/" not in value:
        found = shutil.which(value)
        if found is None:
            raise ConfigError(source, key, f"{value!r} is not on PATH")
        return found
    path = (base_dir / value).expanduser()
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise ConfigError(source, key, f"{str(path)!r} is not an executable file")
    return str(path.absolute())  # not resolved: a virtualenv's python is a symlink that must stay one


def environment_settings(spec: Mapping[str, Any], *, source: str, key: str, base_dir: Path) -> dict[str, Any]:
    """The execution-environment keys of a table (``isolation``, ``python``, ``node``, ``concurrency``), checked,
    as :class:`Association` fields; keys not given are left out (the defaults apply)."""
    settings: dict[str, Any] = {}
    if "isolation" in spec:
        settings["isolation"] = spec["isolation"]
    for name in ("python", "node"):
        if name in spec:
            settings[name] = interpreter(spec[name], source=source, key=f"{key}.{name}", base_dir=base_dir)
    if "concurrency" in spec:
        settings["concurrency"] = int(spec["concurrency"])
    return settings


def _build_association(
    trigger: Trigger,
    value: str | Mapping[str, Any],
    *,
    source: str,
    key: str,
    base_dir: Path,
    defaults: Mapping[str, Any] | None = None,
) -> Association:
    spec: Mapping[str, Any] = {"handler": value} if isinstance(value, str) else value
    if spec.get("include_body") and not FACTS[trigger].include_body:
        raise ConfigError(
            source, f"{key}.include_body", "include_body applies to viewer-request and origin-request only"
        )
    memory = int(spec.get("memory", 128))
    keys = (f"{key}.timeout", f"{key}.memory")
    check_limits(trigger, timeout=spec.get("timeout"), memory=memory, source=source, keys=keys)
    return Association(
        handler=spec["handler"],
        base_dir=base_dir,
        source=source,
        key=key,
        include_body=bool(spec.get("include_body", False)),
        timeout=spec.get("timeout"),
        memory=memory,
        **(dict(defaults or {}) | environment_settings(spec, source=source, key=key, base_dir=base_dir)),
    )


def from_flags(
    origin: str,
    functions: Mapping[Trigger, HandlerRef],
    *,
    include_body: bool = False,
    timeouts: Mapping[Trigger, float] | None = None,
    base_dir: Path | None = None,
    cache_policy: str | Mapping[str, Any] | None = None,
    origin_request_policy: str | Mapping[str, Any] | None = None,
    source: str = "command line",
) -> Distribution:
    """The distribution ``edgeproxy serve --origin URL --viewer-request REF ...`` describes: one origin, one
    default behavior allowing every method, with the policies given (as a config names them: see
    :func:`edgeproxy.policies.for_behavior`). ``origin`` is an http(s) URL or a local folder (S3-style). An error
    names a flag (``--viewer-request``) from the ``"command line"``, or else an argument (``viewer_request``) of
    ``source`` (the testing API's ``start()``)."""
    base = (base_dir or Path.cwd()).resolve()
    flags = source == "command line"

    def named(argument: str) -> str:
        return f"--{argument.replace('_', '-')}" if flags else argument.replace("-", "_")

    if origin.startswith(("http://", "https://")):
        try:
            built: Origin = custom_origin_from_url("origin", origin)
        except ValueError as exc:
            raise ConfigError(source, named("origin"), str(exc)) from None
    else:
        directory = (base / origin).resolve()
        if not directory.is_dir():
            raise ConfigError(source, named("origin"), f"{origin!r} is neither an http(s) URL nor a directory")
        built = DirectoryOrigin(name="origin", directory=directory)
    if cache_policy is not None or origin_request_policy is not None:
        # The policies as a config file would give them, checked by the same schema (a name, or an inline table).
        given = {
            key: value
            for key, value in (("cache_policy", cache_policy), ("origin_request_policy", origin_request_policy))
            if value is not None
        }
        _validate(
            {"origins": {"origin": {"url": "http://origin"}}, "default_behavior": {"origin": "origin", **given}}, source
        )
    associations: dict[Trigger, Association] = {}
    for trigger, ref in functions.items():
        timeout = (timeouts or {}).get(trigger)
        check_limits(trigger, timeout=timeout, memory=128, source=source, keys=(f"timeouts[{trigger!r}]", "memory"))
        associations[trigger] = Association(
            handler=ref,
            base_dir=base,
            source=source,
            key=named(trigger),
            include_body=include_body and FACTS[trigger].include_body,
            timeout=timeout,
        )
    return Distribution(
        default_behavior=Behavior(
            path_pattern="*",
            origin=built,
            allowed_methods=frozenset({"GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"}),
            functions=associations,
            policies=policies.for_behavior(cache_policy, origin_request_policy, source=source, key="default_behavior"),
        ),
        origins={"origin": built},
    )


# ALB target groups (reference/aws-behaviour.md §7)

DEFAULT_TARGET_GROUP_ARN = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/edgeproxy/6d0ecf831eec9f09"


@dataclass(frozen=True)
class HealthCheck:
    """A target group's health check (§7.6). Off by default for Lambda targets; the other defaults are ALB's own
    for Lambda target groups. ``interval`` and ``timeout`` are seconds."""

    enabled: bool = False
    interval: float = 35.0
    timeout: float = 30.0
    healthy_threshold: int = 5
    unhealthy_threshold: int = 2
    matcher: str = "200"
    path: str = "/"

    def matches(self, status: int) -> bool:
        """Whether a response status counts as a pass: ``"200"``, ``"200,202"`` or ``"200-299"`` (ALB's syntax)."""
        return any(low <= status <= high for low, high in parse_matcher(self.matcher))


def parse_matcher(matcher: str) -> list[tuple[int, int]]:
    """``"200,300-399"`` -> ``[(200, 200), (300, 399)]``."""
    ranges = []
    for part in matcher.split(","):
        low, _, high = part.partition("-")
        ranges.append((int(low), int(high or low)))
    return ranges


@dataclass(frozen=True)
class TargetGroup:
    """An ALB target group with one Lambda function as its target (§7). ``target`` is the function's association:
    its ``timeout`` (``None``: Lambda's default) and ``memory`` are the function's settings."""

    target: Association
    multi_value_headers: bool = False
    arn: str = DEFAULT_TARGET_GROUP_ARN
    health_check: HealthCheck = HealthCheck()
    idle_reclaim: float = DEFAULT_IDLE_RECLAIM  # seconds an idle execution environment is kept


def target_group_from_mapping(raw: Mapping[str, Any], *, source: str, base_dir: Path) -> TargetGroup:
    """Build a target group from a parsed config whose ``[alb]`` table describes it."""
    _validate(raw, source)
    spec = raw["alb"]
    checks = spec.get("health_check", {})
    health_check = HealthCheck(
        enabled=checks.get("enabled", False),
        interval=float(checks.get("interval", 35)),
        timeout=float(checks.get("timeout", 30)),
        healthy_threshold=checks.get("healthy_threshold", 5),
        unhealthy_threshold=checks.get("unhealthy_threshold", 2),
        matcher=checks.get("matcher", "200"),
        path=checks.get("path", "/"),
    )
    if any(not 200 <= code <= 499 for pair in parse_matcher(health_check.matcher) for code in pair):
        raise ConfigError(source, "alb.health_check.matcher", "Lambda targets accept success codes from 200 to 499")
    if any(low > high for low, high in parse_matcher(health_check.matcher)):
        problem = f"{health_check.matcher!r}: a range of success codes goes from low to high (200-299)"
        raise ConfigError(source, "alb.health_check.matcher", problem)
    # The ELB API refuses a timeout that is not shorter than the interval (hence the Lambda defaults, 30 s and 35 s).
    if health_check.timeout >= health_check.interval:
        problem = "the health check timeout must be smaller than the interval"
        raise ConfigError(source, "alb.health_check.timeout", problem)
    target = Association(
        handler=spec["target"],
        base_dir=base_dir,
        source=source,
        key="alb.target",
        timeout=spec.get("timeout"),
        memory=int(spec.get("memory", 128)),
        **environment_settings(spec, source=source, key="alb", base_dir=base_dir),
    )
    return TargetGroup(
        target=target,
        multi_value_headers=spec.get("multi_value_headers", False),
        arn=spec.get("target_group_arn", DEFAULT_TARGET_GROUP_ARN),
        health_check=health_check,
        idle_reclaim=float(spec.get("idle_reclaim", DEFAULT_IDLE_RECLAIM)),
    )


def target_group_from_flags(
    target: str,
    *,
    multi_value_headers: bool = False,
    target_group_arn: str | None = None,
    timeout: float | None = None,
    memory: int = 128,
    base_dir: Path | None = None,
) -> TargetGroup:
    """The target group ``edgeproxy alb --target REF ...`` describes (health checks off, as on AWS by default)."""
    source = "command line"
    arn = target_group_arn or DEFAULT_TARGET_GROUP_ARN
    schema: Any = _schema_validator().schema
    if not re.fullmatch(schema["$defs"]["alb"]["properties"]["target_group_arn"]["pattern"], arn):
        raise ConfigError(source, "--target-group-arn", f"{arn!r} is not a target group ARN")
    return TargetGroup(
        target=Association(
            handler=target,
            base_dir=(base_dir or Path.cwd()).resolve(),
            source=source,
            key="--target",
            timeout=timeout,
            memory=memory,
        ),
        multi_value_headers=multi_value_headers,
        arn=arn,
    )


@overload
def with_environments(
    served: Distribution, *, isolation: Isolation | None = None, idle_reclaim: float | None = None
) -> Distribution: ...
@overload
def with_environments(
    served: TargetGroup, *, isolation: Isolation | None = None, idle_reclaim: float | None = None
) -> TargetGroup: ...
@overload
def with_environments(
    served: Distribution | TargetGroup, *, isolation: Isolation | None = None, idle_reclaim: float | None = None
) -> Distribution | TargetGroup: ...
def with_environments(
    served: Distribution | TargetGroup, *, isolation: Isolation | None = None, idle_reclaim: float | None = None
) -> Distribution | TargetGroup:
    """``served`` with every function's ``isolation`` and the idle reclaim time overridden where given (what
    ``serve --isolation thread`` and ``--idle-reclaim`` do to a config file's settings)."""

    def association(one: Association) -> Association:
        return one if isolation is None else replace(one, isolation=isolation)

    if isinstance(served, TargetGroup):
        served = replace(served, target=association(served.target))
    else:

        def behavior(one: Behavior) -> Behavior:
            functions = {trigger: association(each) for trigger, each in one.functions.items()}
            return replace(one, functions=functions)

        served = replace(
            served,
            default_behavior=behavior(served.default_behavior),
            behaviors=tuple(behavior(each) for each in served.behaviors),
        )
    return served if idle_reclaim is None else replace(served, idle_reclaim=idle_reclaim)

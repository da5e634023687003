"""config.py: TOML to a validated distribution; every error names the file, the key path and the problem."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from edgeproxy import alb, config
from edgeproxy.config import Behavior, CustomOrigin, DirectoryOrigin, Distribution, HealthCheck, TargetGroup
from edgeproxy.errors import ConfigError
from edgeproxy.server import create_app

VALID = """
[distribution]
domain_name = "d123.cloudfront.net"
id = "E123"

[origins.app]
url = "http://127.0.0.1:3000/prod"
read_timeout = 10
custom_headers = { x-origin-secret = "s3cr3t" }
[origins.site]
directory = "public"

[[behaviors]]
path_pattern = "/api/*"
origin = "app"
allowed_methods = ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]
[behaviors.functions]
viewer-request = "functions/auth.py:handler"
origin-request = { handler = "functions/route.py:handler", include_body = true, timeout = 3 }

[default_behavior]
origin = "site"
[default_behavior.functions]
viewer-response = "functions.headers.handler"
"""


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "public").mkdir(exist_ok=True)
    path = tmp_path / "edgeproxy.toml"
    path.write_text(text)
    return path


def test_valid_config_builds_typed_distribution(tmp_path: Path) -> None:
    distribution = config.load(write(tmp_path, VALID))
    assert (distribution.domain_name, distribution.id) == ("d123.cloudfront.net", "E123")
    api = distribution.behaviors[0]
    assert api.origin == CustomOrigin(
        name="app",
        protocol="http",
        domain_name="127.0.0.1",
        port=3000,
        path="/prod",
        read_timeout=10.0,
        custom_headers=(("x-origin-secret", "s3cr3t"),),
    )
    assert "POST" in api.allowed_methods
    route = api.functions["origin-request"]
    assert (route.handler, route.include_body, route.timeout) == ("functions/route.py:handler", True, 3)
    assert route.base_dir == tmp_path.resolve()
    assert isinstance(distribution.default_behavior.origin, DirectoryOrigin)
    assert distribution.default_behavior.allowed_methods == frozenset({"GET", "HEAD"})


@pytest.mark.parametrize(
    ("edit", "key", "problem"),
    [
        (lambda t: t.replace('id = "E123"', 'id = "E123"\ncolour = "red"'), "distribution.colour", "unknown key"),
        (
            lambda t: t.replace('origin = "site"', 'origin = "nope"'),
            "default_behavior.origin",
            "no origin named 'nope'",
        ),
        (
            lambda t: t.replace('path_pattern = "/api/*"', 'path_pattern = "/api/<x>"'),
            "behaviors[0].path_pattern",
            "not a valid path pattern",
        ),
        (
            lambda t: t.replace('directory = "public"', 'directory = "missing"'),
            "origins.site.directory",
            "is not a directory",
        ),
        (
            lambda t: t.replace('directory = "public"', 'directory = "public"\nurl = "http://x"'),
            "origins.site",
            "exactly one of 'url'",
        ),
        (
            lambda t: t.replace('url = "http://127.0.0.1:3000/prod"', 'url = "ftp://x"'),
            "origins.app.url",
            "not an http:// or https:// URL",
        ),
        (
            lambda t: t.replace(
                'allowed_methods = ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]',
                'allowed_methods = ["GET", "POST"]',
            ),
            "behaviors[0].allowed_methods",
            "CloudFront allows only",
        ),
        (
            lambda t: t.replace('[default_behavior]\norigin = "site"', "[default_behavior]"),
            "default_behavior.origin",
            "required key is missing",
        ),
        (
            lambda t: t.replace("viewer-response =", "viewer-responze ="),
            "default_behavior.functions.viewer-responze",
            "unknown key",
        ),
        (
            lambda t: t.replace("timeout = 3", 'timeout = "3"'),
            "behaviors[0].functions.origin-request.timeout",
            "is not a number",
        ),
        (
            lambda t: t.replace('viewer-response = "functions.headers.handler"', "viewer-response = 3"),
            "default_behavior.functions.viewer-response",
            "a function association is either",
        ),
        (
            lambda t: t.replace('id = "E123"', 'id = "E123"\nviewer_response_read_only = 2021'),
            "distribution.viewer_response_read_only",
            '2021 is not "current" (Warning, Via read-only at viewer-response) or "2021"',
        ),
        (lambda t: t + "\n[oops", "", "not valid TOML"),
    ],
)
def test_config_errors_name_file_key_and_problem(tmp_path: Path, edit: object, key: str, problem: str) -> None:
    path = write(tmp_path, edit(VALID))  # type: ignore[operator]
    with pytest.raises(ConfigError) as caught:
        config.load(path)
    assert caught.value.source == str(path)
    assert caught.value.key == key
    assert problem in caught.value.problem
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ("", (3, 10.0)),
        ("connection_attempts = 1\nconnection_timeout = 2", (1, 2.0)),
        ("connection_attempts = 0", None),
        ("connection_attempts = 4", None),
        ("connection_timeout = 11", None),
        ("connection_timeout = 0.5", None),
    ],
)
def test_origin_connection_attempts_and_timeout(tmp_path: Path, lines: str, expected: tuple[int, float] | None) -> None:
    # §5.2: connection attempts 1-3 (default 3), connection timeout 1-10 s (default 10).
    path = write(tmp_path, VALID.replace("read_timeout = 10", f"read_timeout = 10\n{lines}"))
    if expected is None:
        with pytest.raises(ConfigError) as caught:
            config.load(path)
        assert caught.value.key.startswith("origins.app.connection_")
        return
    origin = config.load(path).behaviors[0].origin
    assert isinstance(origin, CustomOrigin)
    assert (origin.connection_attempts, origin.connection_timeout) == expected


@pytest.mark.parametrize(("line", "expected"), [("", "current"), ('viewer_response_read_only = "2021"', "2021")])
def test_viewer_response_read_only_list(tmp_path: Path, line: str, expected: str) -> None:
    distribution = config.load(write(tmp_path, VALID.replace('id = "E123"', f'id = "E123"\n{line}')))
    assert distribution.viewer_response_read_only == expected


ASSOCIATION = """
[origins.app]
url = "http://127.0.0.1:3000"
[default_behavior]
origin = "app"
[default_behavior.functions]
{trigger} = {{ handler = "h.py:handler", {setting} }}
"""


@pytest.mark.parametrize(
    ("trigger", "setting", "problem"),
    [
        # §2.4: viewer triggers 5 s and 128 MB, origin triggers 30 s and 10,240 MB.
        ("viewer-request", "timeout = 5", None),
        ("viewer-request", "timeout = 5.5", "5.5 s is over Lambda@Edge's limit for viewer triggers, 5 s (origin"),
        ("viewer-response", "timeout = 30", "30 s is over Lambda@Edge's limit for viewer triggers, 5 s"),
        ("viewer-request", "memory = 128", None),
        ("viewer-response", "memory = 3008", "3,008 MB is over Lambda@Edge's limit for viewer triggers, 128 MB"),
        ("origin-request", "timeout = 30", None),
        ("origin-response", "timeout = 31", "31 s is over Lambda@Edge's limit for origin triggers, 30 s"),
        ("origin-request", "memory = 10240", None),
        ("origin-response", "memory = 10241", "10,241 MB is over Lambda@Edge's limit for origin triggers, 10,240 MB"),
    ],
)
def test_function_timeout_and_memory_are_within_the_trigger_limits(
    tmp_path: Path, trigger: str, setting: str, problem: str | None
) -> None:
    path = write(tmp_path, ASSOCIATION.format(trigger=trigger, setting=setting))
    if problem is None:
        association = config.load(path).default_behavior.functions[trigger]  # type: ignore[index]
        assert setting == f"timeout = {association.timeout}" or setting == f"memory = {association.memory}"
        return
    with pytest.raises(ConfigError) as caught:
        config.load(path)
    assert caught.value.key == f"default_behavior.functions.{trigger}.{setting.split()[0]}"
    assert problem in caught.value.problem


def test_flag_timeouts_are_within_the_trigger_limits(tmp_path: Path) -> None:
    assert config.from_flags(str(tmp_path), {"origin-request": "h.py:handler"}, timeouts={"origin-request": 30})
    with pytest.raises(ConfigError) as caught:
        config.from_flags(str(tmp_path), {"viewer-request": "h.py:handler"}, timeouts={"viewer-request": 7})
    assert (caught.value.key, caught.value.problem) == (
        "timeouts['viewer-request']",
        "7 s is over Lambda@Edge's limit for viewer triggers, 5 s (origin triggers: 30 s)",
    )


FOLDER = """
[origins.{name}]
directory = "public"
{setting}
[default_behavior]
origin = "{name}"
"""


@pytest.mark.parametrize(
    ("name", "setting", "bucket"),
    [
        ("Site", "", "site"),
        ("site", 'bucket = "my-bucket"', "my-bucket"),
        ("S", 'bucket = "a.b.example"', "a.b.example"),
    ],
)
def test_a_folder_origin_stands_for_a_bucket(tmp_path: Path, name: str, setting: str, bucket: str) -> None:
    origin = config.load(write(tmp_path, FOLDER.format(name=name, setting=setting))).default_behavior.origin
    assert isinstance(origin, DirectoryOrigin)
    assert origin.bucket == bucket
    assert origin.domain_name == f"{origin.bucket}.s3.us-east-1.amazonaws.com"


@pytest.mark.parametrize(
    ("name", "setting", "key", "problem"),
    [
        ("site", 'bucket = "My-Bucket"', "origins.site.bucket", "'My-Bucket' is not an S3 bucket name: a bucket"),
        ("site", 'bucket = "ab"', "origins.site.bucket", "3-63 lower-case letters, digits, '.' and '-'"),
        ("site", 'bucket = "a..b"', "origins.site.bucket", "no two adjacent periods"),
        ("site", 'bucket = "192.168.5.4"', "origins.site.bucket", "not an IP address"),
        ("site", 'bucket = "xn--bucket"', "origins.site.bucket", "does not start with xn--"),
        ("site", "bucket = 3", "origins.site.bucket", "3 is not a string"),
        ("my_site", "", "origins.my_site", "defaults to the origin's name lower-cased, 'my_site', but a bucket name"),
        ("my_site", "", "origins.my_site", 'set bucket = "..."'),
    ],
)
def test_bad_bucket_names_are_config_errors(tmp_path: Path, name: str, setting: str, key: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config.load(write(tmp_path, FOLDER.format(name=name, setting=setting)))
    assert caught.value.key == key
    assert problem in caught.value.problem


def test_bucket_belongs_to_folder_origins_and_to_one_of_them(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        config.load(write(tmp_path, VALID.replace("read_timeout = 10", 'read_timeout = 10\nbucket = "app"')))
    assert (caught.value.key, caught.value.problem) == (
        "origins.app.bucket",
        "bucket names the S3 bucket a folder origin (directory = ...) stands for; an HTTP origin has a url",
    )
    twice = VALID.replace("[origins.site]", '[origins.other]\ndirectory = "public"\nbucket = "site"\n[origins.site]')
    with pytest.raises(ConfigError) as caught:
        config.load(write(tmp_path, twice))
    assert (caught.value.key, caught.value.problem) == (
        "origins.site",
        "bucket 'site' is also the bucket of folder origin 'other'",
    )


def test_resolve_table_maps_host_names_to_local_urls(tmp_path: Path) -> None:
    text = (
        VALID
        + '[resolve]\n"WWW.example.com" = "http://127.0.0.1:9000"\n"api.example.com:8443" = "https://localhost/"\n'
    )
    distribution = config.load(write(tmp_path, text))
    assert {key: str(url) for key, url in distribution.resolve.items()} == {
        "www.example.com": "http://127.0.0.1:9000",
        "api.example.com:8443": "https://localhost",
    }


@pytest.mark.parametrize(
    ("line", "key", "problem"),
    [
        ('"www.example.com:0" = "http://127.0.0.1:9000"', 'resolve."www.example.com:0"', "optionally with ':port'"),
        ('"www.example.com:x" = "http://127.0.0.1:9000"', 'resolve."www.example.com:x"', "optionally with ':port'"),
        ('"http://www.example.com" = "http://127.0.0.1:9000"', 'resolve."http://www.example.com"', "a key is an"),
        ('"a b" = "http://127.0.0.1:9000"', 'resolve."a b"', "a key is an origin host name"),
        ('"x.example" = "127.0.0.1:9000"', 'resolve."x.example"', "'127.0.0.1:9000' is not an http:// or https://"),
        ('"x.example" = "http://127.0.0.1:9000/prod"', 'resolve."x.example"', "only a host and port (no path"),
        ('"x.example" = "http://127.0.0.1:9000?a=1"', 'resolve."x.example"', "only a host and port (no path"),
        ('"x.example" = "ftp://127.0.0.1"', 'resolve."x.example"', "is not an http:// or https:// URL"),
        ('"x.example" = "public"', 'resolve."x.example"', "a folder is a folder origin (directory = ...)"),
        ('"x.example" = 9000', "resolve.x.example", "9000 is not a string"),
        (
            '"site.s3.amazonaws.com" = "http://127.0.0.1:9000"',
            'resolve."site.s3.amazonaws.com"',
            "bucket 'site' is the folder origin 'site''s: a folder or [resolve], not both",
        ),
        (
            '"x.example" = "http://127.0.0.1:1"\n"X.example" = "http://127.0.0.1:2"',
            'resolve."X.example"',
            "'x.example' is resolved twice (host names are case-insensitive)",
        ),
    ],
)
def test_bad_resolve_entries_name_the_key(tmp_path: Path, line: str, key: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config.load(write(tmp_path, VALID + f"[resolve]\n{line}\n"))
    assert caught.value.key == key
    assert problem in caught.value.problem


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        config.load(tmp_path / "nope.toml")


def test_missing_handler_file_and_function_are_config_errors(tmp_path: Path) -> None:
    path = write(tmp_path, VALID)
    distribution = config.load(path)
    with pytest.raises(ConfigError) as caught:
        create_app(distribution)
    assert caught.value.key == "behaviors[0].functions.viewer-request"
    assert "auth.py' does not exist" in caught.value.problem

    functions = tmp_path / "functions"
    functions.mkdir()
    (functions / "auth.py").write_text("def other(event, context):\n    return None\n")
    with pytest.raises(ConfigError) as caught:
        create_app(distribution)
    assert caught.value.key == "behaviors[0].functions.viewer-request"
    assert "has no function 'handler'" in caught.value.problem


def behaviors(*patterns: str) -> Distribution:
    origin = CustomOrigin(name="o", protocol="http", domain_name="x", port=80)
    return Distribution(
        default_behavior=Behavior(path_pattern="*", origin=origin),
        behaviors=tuple(Behavior(path_pattern=pattern, origin=origin) for pattern in patterns),
    )


@pytest.mark.parametrize(
    ("path", "chosen"),
    [
        ("/images/sample.gif", "images/*"),
        ("/images/a/b.jpg", "images/*.jpg"),
        ("/LOGO.JPG", "*"),
        ("/logo.gif", "*.gif"),
    ],
)
def test_path_patterns_first_match_wins(path: str, chosen: str) -> None:
    # reference §8 item 40
    distribution = behaviors("images/*.jpg", "images/*", "*.gif")
    assert distribution.behavior_for(path).path_pattern == chosen


def test_path_pattern_wildcards() -> None:
    assert Behavior(path_pattern="*.doc*", origin=DirectoryOrigin("s", Path("."))).matches("/x.doc")
    assert not Behavior(path_pattern="*.doc?", origin=DirectoryOrigin("s", Path("."))).matches("/x.doc")
    assert Behavior(path_pattern="*.doc?", origin=DirectoryOrigin("s", Path("."))).matches("/x.docx")
    assert Behavior(path_pattern="/images/*", origin=DirectoryOrigin("s", Path("."))).matches("/images/a")
    assert Behavior(path_pattern="images/*", origin=DirectoryOrigin("s", Path("."))).matches("/images/a")


def test_an_origins_domain_name_is_its_dns_name() -> None:
    for url in ("https://xn--bcher-kva.example/shop", "https://Bücher.example/shop"):
        origin = config.custom_origin_from_url("shop", url)
        assert (origin.domain_name, origin.port, origin.path) == ("xn--bcher-kva.example", 443, "/shop")


def test_flags_distribution_accepts_url_or_folder(tmp_path: Path) -> None:
    assert isinstance(config.from_flags("http://127.0.0.1:9/p", {}).default_behavior.origin, CustomOrigin)
    assert isinstance(config.from_flags(str(tmp_path), {}).default_behavior.origin, DirectoryOrigin)
    with pytest.raises(ConfigError, match="--origin"):
        config.from_flags(str(tmp_path / "missing"), {})


# [alb]: an ALB target group instead of a distribution

ALB = """
[alb]
target = "app.handler"
multi_value_headers = true
target_group_arn = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/notes/0123456789abcdef"
timeout = 10
memory = 512

[alb.health_check]
enabled = true
interval = 10
timeout = 5
healthy_threshold = 3
matcher = "200-299"
path = "/ping"
"""


def test_alb_config_builds_a_target_group(tmp_path: Path) -> None:
    group = config.load_any(write(tmp_path, ALB))
    assert isinstance(group, TargetGroup)
    assert group.multi_value_headers is True
    assert group.arn == "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/notes/0123456789abcdef"
    assert (group.target.handler, group.target.timeout, group.target.memory) == ("app.handler", 10, 512)
    assert (group.target.key, group.target.base_dir) == ("alb.target", tmp_path.resolve())
    assert group.health_check == HealthCheck(
        enabled=True,
        interval=10,
        timeout=5,
        healthy_threshold=3,
        unhealthy_threshold=2,
        matcher="200-299",
        path="/ping",
    )
    assert group.health_check.matches(204)
    assert not group.health_check.matches(302)


def test_alb_defaults_are_alb_defaults(tmp_path: Path) -> None:
    group = config.load_any(write(tmp_path, '[alb]\ntarget = "app.handler"\n'))
    assert isinstance(group, TargetGroup)
    assert group.multi_value_headers is False  # lambda.multi_value_headers.enabled defaults to false (§7.2)
    assert group.target.timeout is None  # the runtime's default for "alb": Lambda's 3 s
    # §7.6: off for Lambda targets; 35 s, 30 s, 5, 2, "200", "/" when enabled.
    assert group.health_check == HealthCheck(enabled=False, interval=35, timeout=30, healthy_threshold=5)
    assert (group.health_check.unhealthy_threshold, group.health_check.matcher, group.health_check.path) == (
        2,
        "200",
        "/",
    )


def test_cloudfront_config_still_loads_through_load_any(tmp_path: Path) -> None:
    assert isinstance(config.load_any(write(tmp_path, VALID)), Distribution)


def test_alb_config_is_not_a_distribution(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        config.load(write(tmp_path, ALB))
    assert caught.value.key == "alb"


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        (ALB + '[default_behavior]\norigin = "x"\n', "default_behavior", "cannot also have the CloudFront tables"),
        ("[alb]\nmulti_value_headers = true\n", "alb.target", "required key is missing"),
        ('[alb]\ntarget = "a.h"\nport = 1\n', "alb.port", "unknown key"),
        ('[alb]\ntarget = "a.h"\ntarget_group_arn = "arn:nope"\n', "alb.target_group_arn", "does not match"),
        ('[alb]\ntarget = "a.h"\nhealth_check = { interval = 4 }\n', "alb.health_check.interval", "less than"),
        ('[alb]\ntarget = "a.h"\nhealth_check = { timeout = 121 }\n', "alb.health_check.timeout", "greater than"),
        (
            '[alb]\ntarget = "a.h"\nhealth_check = { healthy_threshold = 11 }\n',
            "alb.health_check.healthy_threshold",
            "",
        ),
        ('[alb]\ntarget = "a.h"\nhealth_check = { matcher = "200-599" }\n', "alb.health_check.matcher", "200 to 499"),
        ('[alb]\ntarget = "a.h"\nhealth_check = { matcher = "ok" }\n', "alb.health_check.matcher", "does not match"),
        ('[alb]\ntarget = "a.h"\nhealth_check = { matcher = "299-200" }\n', "alb.health_check.matcher", "low to high"),
        ('[alb]\ntarget = "a.h"\nhealth_check = { path = "ping" }\n', "alb.health_check.path", "does not match"),
        ('[alb]\ntarget = "a.h"\nhealth_check = { timeout = 40 }\n', "alb.health_check.timeout", "smaller than"),
        ('[alb]\ntarget = "a.h"\ntimeout = 901\n', "alb.timeout", "greater than"),
    ],
)
def test_alb_config_errors_name_file_key_and_problem(tmp_path: Path, text: str, key: str, problem: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        config.load_any(path)
    assert (caught.value.source, caught.value.key) == (str(path), key)
    assert problem in caught.value.problem


def test_alb_target_that_does_not_exist_is_a_config_error(tmp_path: Path) -> None:
    group = config.load_any(write(tmp_path, '[alb]\ntarget = "missing.handler"\n'))
    assert isinstance(group, TargetGroup)
    with pytest.raises(ConfigError) as caught:
        alb.create_app(group)
    assert (caught.value.key, "does not exist" in caught.value.problem) == ("alb.target", True)


def test_alb_flags(tmp_path: Path) -> None:
    group = config.target_group_from_flags("app.py:handler", multi_value_headers=True, timeout=2, base_dir=tmp_path)
    assert (group.multi_value_headers, group.target.timeout, group.arn) == (True, 2, config.DEFAULT_TARGET_GROUP_ARN)
    assert group.health_check.enabled is False
    with pytest.raises(ConfigError, match="--target-group-arn"):
        config.target_group_from_flags("app.py:handler", target_group_arn="arn:aws:elasticloadbalancing:bad")


def _one_origin(tmp_path: Path, origin: str, behavior: str = "") -> Path:
    return write(tmp_path, f'[origins.app]\n{origin}\n[default_behavior]\norigin = "app"\n{behavior}')


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://127.0.0.1:abc", "is not a URL"),
        ("http://127.0.0.1:99999", "is not a URL"),
        ("http://[::1:3000", "is not a URL"),
        ("http://127.0.0.1:0", "port 0 is no port"),
        ("http://exa mple.com", "is not a domain name"),
        ("http://-bad-.example.com", "is not a domain name"),
        ("http://" + "a" * 64 + ".example", "is not a domain name"),
        ("http://user:pw@127.0.0.1:3000", "no user or password"),
        ("http://127.0.0.1:3000/prod/", "ends with '/'"),
    ],
)
def test_an_origin_url_cloudfront_would_refuse_is_named(tmp_path: Path, url: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=r"edgeproxy\.toml: origins\.app\.url: .*" + re.escape(problem)):
        config.load(_one_origin(tmp_path, f'url = "{url}"'))


def test_origin_urls_cloudfront_takes(tmp_path: Path) -> None:
    for url, port, path in [
        ("http://127.0.0.1:3000/", 3000, ""),
        ("https://[::1]:8443/prod", 8443, "/prod"),
        ("http://xn--bcher-kva.example", 80, ""),
        ("https://api.example.com/v1/stage", 443, "/v1/stage"),
    ]:
        origin = config.load(_one_origin(tmp_path, f'url = "{url}"')).default_behavior.origin
        assert isinstance(origin, CustomOrigin)
        assert (origin.port, origin.path) == (port, path)


def test_an_origin_flag_with_a_query_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"--origin: .*no query or fragment"):
        config.from_flags("http://127.0.0.1:3000?x=1#f", {})


@pytest.mark.parametrize(
    ("headers", "key", "problem"),
    [
        ('{ Host = "evil.example" }', "custom_headers.Host", "CloudFront cannot add 'Host'"),
        ('{ Cache-Control = "no-cache" }', "custom_headers.Cache-Control", "cannot add"),
        ('{ X-Amz-Date = "x" }', "custom_headers.X-Amz-Date", "cannot add"),
        ('{ x-edge-thing = "x" }', "custom_headers.x-edge-thing", "cannot add"),
        ('{ x-a = "a\\r\\nInjected: yes" }', "custom_headers.x-a", "holds '\\r'"),
    ],
)
def test_origin_custom_headers_cloudfront_cannot_add_are_named(
    tmp_path: Path, headers: str, key: str, problem: str
) -> None:
    text = f'url = "http://127.0.0.1:3000"\ncustom_headers = {headers}'
    with pytest.raises(ConfigError, match=re.escape(f"origins.app.{key}: ") + ".*" + re.escape(problem)):
        config.load(_one_origin(tmp_path, text))


def test_allowed_and_cached_methods_are_sets_in_any_order(tmp_path: Path) -> None:
    methods = 'allowed_methods = ["HEAD", "GET", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"]\n'
    methods += 'cached_methods = ["HEAD", "GET"]\n'
    behavior = config.load(_one_origin(tmp_path, 'url = "http://127.0.0.1:3000"', methods)).default_behavior
    assert behavior.allowed_methods == frozenset({"GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"})
    assert behavior.cached_methods == frozenset({"GET", "HEAD"})
    for line, key in [
        ('allowed_methods = ["GET", "POST"]', "allowed_methods"),
        ('cached_methods = ["GET", "HEAD", "PUT"]', "cached_methods"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(f"default_behavior.{key}: ")):
            config.load(_one_origin(tmp_path, 'url = "http://127.0.0.1:3000"', line))


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_nan_and_inf_are_named_wherever_they_are(tmp_path: Path, value: str) -> None:
    path = write(tmp_path, VALID.replace('id = "E123"', f'id = "E123"\nidle_reclaim = {value}'))
    with pytest.raises(ConfigError, match=r"distribution\.idle_reclaim: nan and inf are not numbers"):
        config.load(path)
    path.write_text('[alb]\ntarget = "app.handler"\nidle_reclaim = nan\n')
    with pytest.raises(ConfigError, match=r"alb\.idle_reclaim: nan and inf"):
        config.load_any(path)

"""edgeproxy's Python runtime: the program an execution environment runs, in a process of its own.

It plays the part of Lambda's Python runtime interface client (awslambdaric): it loads the function once (the init
phase), then takes one invocation at a time from the proxy, calls the handler with the event and a Lambda
``context``, and sends back the result as JSON, or the error as Lambda's runtime reports it. The handler's prints and
the runtime's own error lines go to standard output and error, which the proxy puts in the invocation's log; the
protocol has a pipe pair of its own (file descriptors named on the command line), modelled on Lambda's Runtime API.

It is run by path, by any Python 3.8 or later (the function's own virtualenv's, say), so it imports nothing but the
standard library, and as little of it as it can: its start is part of every cold start.

The wire: frames of a 4-byte big-endian length (of what follows), a 1-byte kind and a payload.

* proxy -> runtime: ``I`` an invocation (JSON: ``id``, ``deadline`` in epoch ms, ``arn``, ``part``, ``event``).
* runtime -> proxy: ``S`` started (JSON: the runtime's version); ``N`` init done, ready for the next invocation
  (Runtime API ``/next``): the peak RSS in kB; ``X`` the init failed (``/init/error``, Lambda's error JSON; the
  process then exits); ``R`` the result (``/response``): the peak RSS in kB, a newline, the JSON; ``U`` the result
  is the event's ``part`` (request or response) unchanged: the peak RSS; ``E`` the handler failed (``/error``): the
  peak RSS, a newline, Lambda's error JSON.

Usage: ``python bootstrap.py REQUEST_FD RESPONSE_FD HANDLER_FILE HANDLER_NAME [MODULE]``: ``MODULE`` is the
handler's module as Lambda would import it from its task root (``pkg.app`` for a file in a package ``pkg``; the
file's name by default). The proxy runs it through
:data:`LAUNCHER` instead (``python -c LAUNCHER bootstrap.py REQUEST_FD ...``), which imports this file as a module:
its compiled form is then cached (``__pycache__``, per interpreter version) instead of compiled at every cold start,
as a script would be.
"""

from __future__ import annotations

import json
import marshal
import os
import resource
import sys
import time

# Every import here is part of every cold start: typing and traceback (with linecache and tokenize) are imported
# only by the type checker, and when an error is to be reported.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from traceback import FrameSummary
    from typing import Any

# What ``python -c`` runs: this file loaded as the module ``edgeproxy_bootstrap`` (from its cached bytecode), then
# its main() on the arguments after its path.
LAUNCHER = (
    "import sys;from importlib.machinery import SourceFileLoader as L;n='edgeproxy_bootstrap';"
    "m=type(sys)(n);m.__file__=sys.argv[1];sys.modules[n]=m;L(n,sys.argv[1]).exec_module(m);m.main(sys.argv[2:])"
)
BOOTSTRAP = os.path.abspath(__file__)
REQUEST_FD = RESPONSE_FD = -1
HANDLER_FILE = HANDLER_NAME = MODULE = ""
MAXRSS_UNIT = 1024 if sys.platform == "darwin" else 1  # ru_maxrss: kB on Linux, bytes on macOS


def send(kind: bytes, payload: bytes = b"") -> None:
    data = (len(payload) + 1).to_bytes(4, "big") + kind + payload
    view = memoryview(data)
    while view:
        view = view[os.write(RESPONSE_FD, view) :]


def receive() -> tuple[bytes, bytes] | None:
    """The next frame (kind, payload), or ``None`` when the proxy has gone (end of file)."""
    header = read_exactly(4)
    if header is None:
        return None
    body = read_exactly(int.from_bytes(header, "big"))
    if body is None:
        return None
    return body[:1], body[1:]


def read_exactly(size: int) -> bytes | None:
    chunks = []
    while size:
        chunk = os.read(REQUEST_FD, min(size, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _status_file() -> int:
    try:
        return os.open("/proc/self/status", os.O_RDONLY)
    except OSError:
        return -1


STATUS_FD = _status_file()


def peak_rss() -> bytes:
    """The process's peak resident size in kB: ``VmHWM``, which starts afresh with this program (not
    ``ru_maxrss``, which keeps the proxy's own peak from before the exec); ``ru_maxrss`` where there is no /proc."""
    if STATUS_FD >= 0:
        status = os.pread(STATUS_FD, 8192, 0)
        start = status.find(b"VmHWM:")
        if start >= 0:
            return status[start + 6 : status.index(b"kB", start)].strip()
    return str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // MAXRSS_UNIT).encode()


def _decimal_digits(value: Any) -> Any:
    # As Lambda's runtime (simplejson) writes a Decimal, which DynamoDB hands out: its digits.
    if type(value).__name__ == "Decimal":
        return json.loads(str(value))
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def to_json(result: Any) -> str:
    return json.dumps(result, default=_decimal_digits)


def snapshot(value: Any) -> bytes | None:
    """``value``'s exact form, to tell whether a handler changed it: marshal (version 2, which never shares
    objects) keeps types apart that compare equal (True and 1, 1 and 1.0, a tuple and a list) and costs a tenth of
    a JSON dump. ``None`` for what marshal cannot hold."""
    try:
        return marshal.dumps(value, 2)
    except ValueError:
        return None


def user_frames(tb: Any) -> list[FrameSummary]:
    """The traceback's frames without this runtime's own, as Lambda's runtime trims its frames."""
    import traceback

    return [frame for frame in traceback.extract_tb(tb) if frame.filename != BOOTSTRAP]


def error_record(error_type: str, message: str, frames: list[FrameSummary], request_id: str) -> dict[str, Any]:
    """Lambda's error JSON, keys in the Python runtime's order (lambda-runtime-facts §1)."""
    import traceback

    stack = traceback.format_list(frames)
    return {"errorMessage": message, "errorType": error_type, "requestId": request_id, "stackTrace": stack}


def log_error(record: dict[str, Any]) -> None:
    """The runtime's log of an error, in Lambda's text format: ``[ERROR] Type: message`` and the traceback."""
    message = record["errorMessage"]
    head = f"{record['errorType']}: {message}" if message else record["errorType"]
    lines = ["[ERROR] " + head, "Traceback (most recent call last):"]
    lines += [line.rstrip("\n") for line in record["stackTrace"]]
    flush()
    sys.stdout.write("\n".join(lines) + "\n")
    flush()


def flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a handler closed it
            continue


class CognitoIdentity:
    def __init__(self) -> None:
        self.cognito_identity_id: str | None = None
        self.cognito_identity_pool_id: str | None = None


# The environment's own settings, the same for each invocation (read once: os.environ lookups are not free).
SETTINGS = {
    name: os.environ.get(variable)
    for name, variable in (
        ("log_group_name", "AWS_LAMBDA_LOG_GROUP_NAME"),
        ("log_stream_name", "AWS_LAMBDA_LOG_STREAM_NAME"),
        ("function_name", "AWS_LAMBDA_FUNCTION_NAME"),
        ("memory_limit_in_mb", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"),
        ("function_version", "AWS_LAMBDA_FUNCTION_VERSION"),
    )
}


class LambdaContext:
    """The ``context`` argument, with the fields of Lambda's Python runtime (``memory_limit_in_mb`` is a string,
    as there; the remaining time never goes below 0)."""

    def __init__(self, invocation: dict[str, Any]) -> None:
        self.aws_request_id: str = invocation["id"]
        self.invoked_function_arn: str = invocation["arn"]
        self.log_group_name = SETTINGS["log_group_name"]
        self.log_stream_name = SETTINGS["log_stream_name"]
        self.function_name = SETTINGS["function_name"]
        self.memory_limit_in_mb = SETTINGS["memory_limit_in_mb"]
        self.function_version = SETTINGS["function_version"]
        self.identity = CognitoIdentity()
        self.client_context = None
        self._deadline: int = invocation["deadline"]

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline - int(time.time() * 1000))

    def log(self, message: object) -> None:
        sys.stdout.write(str(message))

    def __repr__(self) -> str:
        fields = ["aws_request_id", "log_group_name", "log_stream_name", "function_name", "memory_limit_in_mb"]
        fields += ["function_version", "invoked_function_arn", "client_context", "identity"]
        return "LambdaContext([" + ",".join(f"{name}={getattr(self, name)}" for name in fields) + "])"


current_request_id = ""


def install_logging() -> None:
    """Lambda's logging set-up (awslambdaric bootstrap.py ``_setup_logging``, text format): UTC timestamps for every
    formatter, a handler on the root logger writing ``[LEVEL]\\ttimestamp\\trequest id\\tmessage`` to standard
    output, and the root level from ``AWS_LAMBDA_LOG_LEVEL`` when it names one (the root logger stays at WARNING
    otherwise). Installed before the function's own code can see ``logging``: see :class:`LoggingImport`."""
    import logging

    class LambdaLoggerHandler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            sys.stdout.write(self.format(record))  # no handleError, as there: a failed format reaches the caller

    class LambdaLoggerFilter(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            record.aws_request_id = current_request_id
            return True

    logging.Formatter.converter = time.gmtime
    handler = LambdaLoggerHandler()
    handler.setFormatter(
        logging.Formatter(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n", "%Y-%m-%dT%H:%M:%S"
        )
    )
    handler.addFilter(LambdaLoggerFilter())
    root = logging.getLogger()
    setting = os.environ.get("AWS_LAMBDA_LOG_LEVEL")
    level = {"TRACE": "DEBUG"}.get(setting, setting).upper() if setting else ""  # as _get_log_level_from_env_var
    if level in logging._nameToLevel:
        root.setLevel(level)
    root.addHandler(handler)


class LoggingImport:
    """Lambda's runtime sets up logging before it imports the function, so that a ``logging.basicConfig()`` of the
    function's is a no-op there; importing logging here would cost every cold start some 10 ms (it brings traceback,
    tokenize, threading, string...). Instead this finder, first on ``sys.meta_path``, lets the first import of
    ``logging`` (by the function, a library or asyncio) run, then installs Lambda's set-up before that import
    returns: no code sees ``logging`` without it."""

    @staticmethod
    def find_spec(name: str, path: Any = None, target: Any = None) -> Any:
        if name != "logging":
            return None
        sys.meta_path.remove(LoggingImport)
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            spec = find(name, path, target) if find is not None else None
            if spec is not None and spec.loader is not None:
                break
        else:
            return None
        loader: Any = spec.loader
        exec_module = loader.exec_module

        def exec_then_install(module: Any) -> None:
            exec_module(module)
            install_logging()

        loader.exec_module = exec_then_install
        return spec


def load_handler() -> Any:
    """The init phase: import the handler's module; the handler, or ``None`` after reporting why not (Lambda's
    errors: lambda-runtime-facts §2.7)."""
    module_name = MODULE
    if module_name in sys.builtin_module_names:
        init_error("Runtime.BuiltInModuleConflict", f"Cannot use built-in module {module_name} as a handler module")
        return None
    try:
        module = import_module(module_name)
    except SyntaxError as exc:
        init_error("Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {exc}", exc)
        return None
    except ImportError as exc:
        init_error("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}", exc)
        return None
    except Exception as exc:
        init_error(type(exc).__name__, str(exc), exc)
        return None
    return _handler_of(module, module_name)


def import_module(module_name: str) -> Any:
    """The handler's module: in a package, imported by its name from the task root, as Lambda's runtime imports it
    (so that its relative imports work); else loaded from its file, whatever a module of that name already loaded
    here (this file's own json, say)."""
    if "." in module_name:
        __import__(module_name)
        return sys.modules[module_name]
    # What importlib.util.spec_from_file_location and module_from_spec do, without importlib.util's own imports.
    from importlib.machinery import ModuleSpec, SourceFileLoader

    loader = SourceFileLoader(module_name, HANDLER_FILE)
    module = type(sys)(module_name)
    module.__spec__ = ModuleSpec(module_name, loader, origin=HANDLER_FILE)
    module.__spec__.has_location = True
    module.__loader__ = loader
    module.__file__ = HANDLER_FILE
    module.__package__ = ""
    sys.modules[module_name] = module
    loader.exec_module(module)
    return module


def _handler_of(module: Any, module_name: str) -> Any:
    handler = getattr(module, HANDLER_NAME, None)
    if handler is None:
        init_error("Runtime.HandlerNotFound", f"Handler '{HANDLER_NAME}' missing on module '{module_name}'")
        return None
    if not callable(handler):  # Lambda would fail each invocation; said at start-up instead
        init_error("Runtime.HandlerNotFound", f"Handler '{HANDLER_NAME}' on module '{module_name}' is not callable")
        return None
    return handler


def init_error(error_type: str, message: str, exc: BaseException | None = None) -> None:
    frames = user_frames(exc.__traceback__) if exc is not None else []
    record = error_record(error_type, message, frames, "")
    log_error(record)
    send(b"X", json.dumps(record).encode())


class Invoker:
    """Calls the handler, with an event loop of its own for an ``async def`` one (edgeproxy runs those; Lambda's
    Python runtime does not)."""

    def __init__(self, handler: Any) -> None:
        self.handler = handler
        self.loop: Any = None

    def __call__(self, event: Any, context: LambdaContext) -> Any:
        result = self.handler(event, context)
        if type(result).__name__ == "coroutine" and hasattr(result, "__await__"):
            if self.loop is None:
                import asyncio

                self.loop = asyncio.new_event_loop()
                asyncio.set_event_loop(self.loop)
            result = self.loop.run_until_complete(result)
        return result


def invoke(call: Invoker, payload: bytes) -> None:
    global current_request_id
    invocation = json.loads(payload)
    event, part = invocation["event"], invocation.get("part")
    current_request_id = invocation["id"]
    before = None
    if part is not None:  # the request (or response) as it came, to tell whether the handler returned it unchanged
        before = snapshot(event["Records"][0]["cf"].get(part))
    try:
        result = call(event, LambdaContext(invocation))
    except Exception as exc:
        record = error_record(type(exc).__name__, str(exc), user_frames(exc.__traceback__), current_request_id)
        log_error(record)
        send(b"E", peak_rss() + b"\n" + json.dumps(record).encode())
        return
    if before is not None and snapshot(result) == before:
        flush()
        send(b"U", peak_rss())
        return
    try:
        body = to_json(result)
    except (TypeError, ValueError, RecursionError) as exc:
        record = error_record("Runtime.MarshalError", f"Unable to marshal response: {exc}", [], current_request_id)
        log_error(record)
        send(b"E", peak_rss() + b"\n" + json.dumps(record).encode())
        return
    flush()
    send(b"R", peak_rss() + b"\n" + body.encode("utf-8", "surrogatepass"))


def main(argv: list[str]) -> None:
    global REQUEST_FD, RESPONSE_FD, HANDLER_FILE, HANDLER_NAME, MODULE
    REQUEST_FD, RESPONSE_FD, HANDLER_FILE, HANDLER_NAME = int(argv[0]), int(argv[1]), argv[2], argv[3]
    MODULE = argv[4] if len(argv) > 4 else os.path.splitext(os.path.basename(HANDLER_FILE))[0]
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    os.environ.setdefault("AWS_EXECUTION_ENV", "AWS_Lambda_python" + version)
    send(b"S", json.dumps({"runtime": "python:" + version, "version": sys.version.split()[0]}).encode())
    # Like /var/task: the function's folder is first on the import path (not this file's, which Python put there).
    task_root = os.path.dirname(HANDLER_FILE)
    for _ in range(MODULE.count(".")):  # above the module's packages
        task_root = os.path.dirname(task_root)
    sys.path[0] = task_root
    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # each line reaches the log as printed
    if "logging" in sys.modules:  # imported already (by a sitecustomize, say)
        install_logging()
    else:
        sys.meta_path.insert(0, LoggingImport)
    handler = load_handler()
    if handler is None:
        sys.exit(1)
    call = Invoker(handler)
    flush()
    send(b"N", peak_rss())
    while True:
        frame = receive()
        if frame is None:  # the proxy has gone
            return
        invoke(call, frame[1])


if __name__ == "__main__":
    main(sys.argv[1:])

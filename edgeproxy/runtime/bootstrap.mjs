// edgeproxy's Node.js runtime: the program an execution environment runs, in a process of its own.
//
// It plays the part of Lambda's Node.js runtime interface client (aws-lambda-nodejs-runtime-interface-client v3,
// the runtime of nodejs18.x to nodejs22.x): it loads the function once (the init phase: index.mjs as an ES module,
// index.js / index.cjs as CommonJS, or ESM under a "type": "module" package.json), then takes one invocation at a
// time from the proxy and calls the handler with the event, a Lambda context and a callback. It sends back the
// result as JSON, or the error as Lambda's runtime reports it, and logs console calls as that runtime does
// (timestamp, request id, level, message). The protocol has a pipe pair of its own (file descriptors named on the
// command line), modelled on Lambda's Runtime API; see bootstrap.py for the frames. Node.js's standard library
// only: nothing is installed.
//
// Between invocations it waits for the next one in a blocking read, as the runtime's native client does, so that
// work a handler left behind (callbackWaitsForEmptyEventLoop = false) does not run until the next invocation, as
// on Lambda, where the environment is frozen meanwhile.
//
// Usage: node bootstrap.mjs REQUEST_FD RESPONSE_FD HANDLER_FILE HANDLER_PROPERTY

import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { format } from 'node:util';

const [requestFd, responseFd] = [Number(process.argv[2]), Number(process.argv[3])];
const handlerFile = process.argv[4];
const handlerProperty = process.argv[5];
const moduleName = path.basename(handlerFile).replace(/\.(c|m)?js$/, '');
const sleeper = new Int32Array(new SharedArrayBuffer(4));

// --- the wire -------------------------------------------------------------------------------------------------

function send(kind, payload = '') {
  const body = Buffer.isBuffer(payload) ? payload : Buffer.from(payload, 'utf8');
  const header = Buffer.allocUnsafe(5);
  header.writeUInt32BE(body.length + 1, 0);
  header[4] = kind.charCodeAt(0);
  writeAll(header.length + body.length < 65536 ? Buffer.concat([header, body]) : header);
  if (header.length + body.length >= 65536) writeAll(body);
}

function writeAll(buffer, fd = responseFd) {
  let offset = 0;
  while (offset < buffer.length) {
    try {
      offset += fs.writeSync(fd, buffer, offset);
    } catch (error) {
      if (error.code !== 'EAGAIN') throw error;
      Atomics.wait(sleeper, 0, 0, 1);
    }
  }
}

function readExactly(size) {
  const buffer = Buffer.allocUnsafe(size);
  let offset = 0;
  while (offset < size) {
    let read;
    try {
      read = fs.readSync(requestFd, buffer, offset, size - offset, null);
    } catch (error) {
      if (error.code === 'EAGAIN') {
        Atomics.wait(sleeper, 0, 0, 1);
        continue;
      }
      if (error.code === 'EOF') return null;
      throw error;
    }
    if (read === 0) return null;
    offset += read;
  }
  return buffer;
}

function receive() {
  const header = readExactly(4);
  if (header === null) return null;
  const body = readExactly(header.readUInt32BE(0));
  if (body === null) return null;
  return { kind: String.fromCharCode(body[0]), payload: body.subarray(1) };
}

// The peak resident size in kB: VmHWM, which starts afresh with this program (not maxRSS, which keeps the proxy's
// own peak from before the exec); maxRSS where there is no /proc.
let statusFd = -1;
try {
  statusFd = fs.openSync('/proc/self/status', 'r');
} catch {}
const statusBuffer = Buffer.allocUnsafe(8192);

const VM_HWM = Buffer.from('VmHWM:');

function peakRss() {
  if (statusFd >= 0) {
    const read = fs.readSync(statusFd, statusBuffer, 0, statusBuffer.length, 0);
    const at = statusBuffer.subarray(0, read).indexOf(VM_HWM);
    if (at >= 0) {
      let kb = 0;
      for (let i = at + VM_HWM.length; i < read; i++) {
        const digit = statusBuffer[i] - 48;
        if (digit >= 0 && digit <= 9) kb = kb * 10 + digit;
        else if (kb > 0) break;
      }
      return String(kb);
    }
  }
  return String(process.resourceUsage().maxRSS);
}

// --- logging, as the runtime patches console (text format; lambda-runtime-facts §4.1) ---------------------------

let currentRequestId = undefined;
const LEVELS = { TRACE: 0, DEBUG: 1, INFO: 2, WARN: 3, ERROR: 4, FATAL: 5 };
const minimum = LEVELS[(process.env.AWS_LAMBDA_LOG_LEVEL || '').toUpperCase()] ?? 0;

function patchConsole() {
  const methods = { log: 'INFO', info: 'INFO', warn: 'WARN', error: 'ERROR', debug: 'DEBUG', trace: 'TRACE' };
  const make = (level) => (message, ...params) => {
    if (LEVELS[level] < minimum && level !== 'FATAL') return;
    const line = `${new Date().toISOString()}\t${currentRequestId}\t${level}\t${format(message, ...params)}\n`;
    // Written at once, as Lambda's runtime writes its log lines (fs.writeSync): through process.stdout a chatty
    // handler queues its lines in memory faster than the pipe drains, and runs out of its memory size.
    try {
      writeAll(Buffer.from(line, 'utf8'), 1);
    } catch {
      // its standard output is closed: the line goes nowhere, as a write to a closed stream does
    }
  };
  for (const [method, level] of Object.entries(methods)) console[method] = make(level);
  console.fatal = make('FATAL');
}

// Every line written so far has left the process: a response is posted after its invocation's logs.
function whenDrained(then) {
  const pending = [process.stdout, process.stderr].find((stream) => stream.writableLength > 0);
  if (pending === undefined) then();
  else pending.once('drain', () => whenDrained(then));
}

function enumerableReplacer(key, value) {
  if (value instanceof Error) {
    const record = { errorType: value.name, errorMessage: value.message };
    if (value.code !== undefined) record.code = value.code;
    for (const own of Object.keys(value)) if (!(own in record)) record[own] = value[own];
    record.stack = String(value.stack || '').split('\n');
    return record;
  }
  return value;
}

function logError(prefix, error) {
  const logged = error instanceof Error ? error : new Error(String(error));
  console.error(prefix, '\t' + JSON.stringify(logged, enumerableReplacer));
}

// What the runtime posts to the Runtime API for an error (note "trace", not "stack").
function errorPayload(error) {
  if (error instanceof Error) {
    return JSON.stringify({ errorType: error.name, errorMessage: error.message, trace: String(error.stack || '').split('\n') });
  }
  return JSON.stringify({ errorType: typeof error, errorMessage: String(error), trace: [] });
}

// --- the init phase ---------------------------------------------------------------------------------------------

class UserCodeError extends Error {}

function isEsmPackage(directory) {
  // The nearest package.json decides what a .js file is (UserFunction.js _isModule).
  for (let dir = directory; ; dir = path.dirname(dir)) {
    if (path.basename(dir) === 'node_modules') return false;
    const candidate = path.join(dir, 'package.json');
    if (fs.existsSync(candidate)) {
      try {
        return JSON.parse(fs.readFileSync(candidate, 'utf8')).type === 'module';
      } catch (error) {
        console.warn(`${candidate} cannot be parsed: ${error}`);
        return false;
      }
    }
    if (path.dirname(dir) === dir) return false;
  }
}

function namedError(name, message) {
  const error = new UserCodeError(message);
  error.name = name;
  return error;
}

// As UserFunction.js tells an async handler (the constructor's name; a function returning a promise is not one).
function isAsync(fn) {
  return fn.constructor !== undefined && fn.constructor.name === 'AsyncFunction';
}

async function loadHandler() {
  const extension = path.extname(handlerFile);
  const esm = extension === '.mjs' || (extension === '.js' && isEsmPackage(path.dirname(handlerFile)));
  let module;
  try {
    module = esm ? await import(pathToFileURL(handlerFile).href) : createRequire(import.meta.url)(handlerFile);
  } catch (error) {
    if (error instanceof SyntaxError) throw namedError('Runtime.UserCodeSyntaxError', String(error));
    if (error && (error.code === 'MODULE_NOT_FOUND' || error.code === 'ERR_MODULE_NOT_FOUND')) {
      throw namedError('Runtime.ImportModuleError', String(error));
    }
    throw error;
  }
  const handler = handlerProperty.split('.').reduce((value, key) => (value == null ? undefined : value[key]), module);
  if (handler === undefined) {
    throw namedError('Runtime.HandlerNotFound', `${moduleName}.${handlerProperty} is undefined or not exported`);
  }
  if (typeof handler !== 'function') {
    throw namedError('Runtime.HandlerNotFound', `${moduleName}.${handlerProperty} is not a function`);
  }
  if (handler.length >= 3 && !isAsync(handler) && !process.env.AWS_LAMBDA_NODEJS_DISABLE_CALLBACK_WARNING) {
    console.warn(
      'AWS Lambda plans to remove support for callback-based function handlers starting with Node.js 24. You will ' +
        'need to update this function to use an async handler to use Node.js 24 or later. For more information and ' +
        'to provide feedback on this change, see https://github.com/aws/aws-lambda-nodejs-runtime-interface-client/' +
        'issues/137. To disable this warning, set the AWS_LAMBDA_NODEJS_DISABLE_CALLBACK_WARNING environment variable.',
    );
  }
  return handler;
}

// --- invocations ------------------------------------------------------------------------------------------------

let handler = null;
let handlerIsAsync = false;
let current = null; // the invocation running: { id, before, finished, answered, onEmpty }

function next() {
  const frame = receive();
  if (frame === null) process.exit(0); // the proxy has gone
  invoke(JSON.parse(frame.payload.toString('utf8')));
}

function post(invocation, kind, payload) {
  invocation.answered = true;
  whenDrained(() => {
    send(kind, payload);
    if (current === invocation) current = null;
    setImmediate(next);
  });
}

function succeed(invocation, result) {
  let body;
  try {
    body = JSON.stringify(result === undefined ? null : result);
  } catch {
    // The runtime's serializer throws outside the handler: an uncaught exception, which ends the environment.
    setImmediate(() => {
      throw new Error('Unable to stringify response body');
    });
    return;
  }
  if (body === invocation.before) post(invocation, 'U', peakRss());
  else post(invocation, 'R', Buffer.concat([Buffer.from(peakRss() + '\n'), Buffer.from(body === undefined ? 'null' : body)]));
}

function fail(invocation, error) {
  logError('Invoke Error', error);
  post(invocation, 'E', peakRss() + '\n' + errorPayload(error));
}

// What the runtime posts for an async handler whose promise is still pending when the event loop empties
// (Errors.js NodeJsExit, Runtime.js _setDefaultExitListener).
function nodeJsExit() {
  const error = new Error(
    'The Lambda runtime client detected an unexpected Node.js exit code. This is most commonly caused by a Promise ' +
      'that was never settled. For more information, see https://nodejs.org/docs/latest/api/process.html#exit-codes',
  );
  error.name = 'Runtime.NodeJsExit';
  return error;
}

// The context's data (InvokeContext.js attachEnvironmentData).
function environmentData(invocation) {
  const env = process.env;
  return {
    functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION,
    functionName: env.AWS_LAMBDA_FUNCTION_NAME,
    memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME,
    clientContext: undefined,
    identity: undefined,
    invokedFunctionArn: invocation.arn,
    awsRequestId: invocation.id,
    getRemainingTimeInMillis: () => invocation.deadline - Date.now(),
  };
}

function invoke(message) {
  const { event, part } = message;
  const invocation = { id: message.id, finished: false, answered: false };
  invocation.before = part ? JSON.stringify(event.Records[0].cf[part]) : undefined;
  // When the event loop empties before an answer: an async handler fails, any other answers null (Runtime.js
  // _setDefaultExitListener); a callback that waits for the empty loop replaces it with its result.
  invocation.onEmpty = handlerIsAsync ? () => fail(invocation, nodeJsExit()) : () => succeed(invocation, null);
  current = invocation;
  currentRequestId = message.id;
  // callback, succeed, fail and done share one "finished" flag: the first call to any of them counts, the others
  // are ignored, and a returned promise settles through the same succeed and fail (CallbackContext.js
  // onlyAllowFirstCall, Runtime.js).
  const firstCallOnly = (complete) => (...args) => {
    if (invocation.finished) return;
    invocation.finished = true;
    complete(...args);
  };
  let waits = true;
  const done = (error, result) => {
    invocation.onEmpty = null;
    if (error !== null && error !== undefined) fail(invocation, error);
    else succeed(invocation, result);
  };
  const callback = firstCallOnly((error, result) => {
    if (error !== null && error !== undefined) done(error);
    else if (!waits) done(null, result);
    else invocation.onEmpty = () => done(null, result); // posted when the event loop is empty (beforeExit)
  });
  const context = {
    get callbackWaitsForEmptyEventLoop() {
      return waits;
    },
    set callbackWaitsForEmptyEventLoop(value) {
      waits = value;
    },
    succeed: firstCallOnly((result) => done(null, result)),
    fail: firstCallOnly((error) => done(error === undefined || error === null ? 'handled' : error)),
    done: firstCallOnly(done),
    ...environmentData(message),
  };
  let returned;
  try {
    returned = handler(event, context, callback);
  } catch (error) {
    callback(error);
    return;
  }
  if (returned && typeof returned.then === 'function') {
    returned.then(context.succeed, context.fail);
  }
}

// The event loop is empty: the invocation's answer for that case goes out (see invoke).
process.on('beforeExit', () => {
  const invocation = current;
  if (invocation === null) {
    next();
    return;
  }
  const onEmpty = invocation.onEmpty;
  invocation.onEmpty = null;
  if (onEmpty) onEmpty();
});

function dieWith(prefix, error, initPhase) {
  logError(prefix, error);
  whenDrained(() => {
    if (initPhase) send('X', errorPayload(error));
    else if (current !== null && !current.answered) send('E', peakRss() + '\n' + errorPayload(error));
    process.exit(prefix === 'Unhandled Promise Rejection' ? 128 : 129);
  });
}

let initPhase = true;
process.on('uncaughtException', (error) => dieWith('Uncaught Exception', error, initPhase));
process.on('unhandledRejection', (reason, promise) => {
  const error = new Error(String(reason));
  error.name = 'Runtime.UnhandledPromiseRejection';
  error.reason = reason;
  error.promise = promise;
  dieWith('Unhandled Promise Rejection', error, initPhase);
});

const nodeMajor = process.versions.node.split('.')[0];
process.env.AWS_EXECUTION_ENV ??= `AWS_Lambda_nodejs${nodeMajor}.x`;
send('S', JSON.stringify({ runtime: `nodejs:${nodeMajor}`, version: process.versions.node }));
patchConsole();
try {
  handler = await loadHandler();
} catch (error) {
  handler = null;
  dieWith('Uncaught Exception', error, true); // as the runtime's uncaughtException hook reports an init failure
}
if (handler !== null) {
  handlerIsAsync = isAsync(handler);
  initPhase = false;
  whenDrained(() => {
    send('N', peakRss());
    setImmediate(next);
  });
}

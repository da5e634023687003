// Basic authentication: keep a staging site or a preview private with one shared user and password.
//
// Use case: password-protect a whole distribution (staging, previews, internal docs) without touching the origin.
// Trigger: viewer-request (the check runs before the cache, so cached pages are protected too).
// What it does: the Node.js version of basic_auth.py, as an ES module: reads "Authorization: Basic ..."; when it
// is missing, malformed or wrong it returns a generated 401 Unauthorized with WWW-Authenticate, and the origin is
// never contacted. When it is right it removes the Authorization header and passes the request on.
//
// Lambda@Edge has no environment variables, so the credentials live in the code, as a SHA-256 digest of
// "user:password"; the demo credentials are edge / correct-horse-battery-staple.

import { createHash, timingSafeEqual } from 'node:crypto';

const CREDENTIALS_SHA256 = 'c6a2d3509c65b334c5209be79d7d4cf1182cf769ecaa2a9f5efa20731c088fdb';
const REALM = 'Restricted';

function credentials(request) {
  const entries = request.headers.authorization || [];
  if (entries.length === 0) return null;
  const [scheme, token = ''] = entries[0].value.trim().split(/ +/, 2);
  if (scheme.toLowerCase() !== 'basic' || !/^[A-Za-z0-9+/]+={0,2}$/.test(token) || token.length % 4 !== 0) {
    return null;
  }
  return Buffer.from(token, 'base64');
}

function unauthorized() {
  return {
    status: '401',
    statusDescription: 'Unauthorized',
    headers: {
      'www-authenticate': [{ key: 'WWW-Authenticate', value: `Basic realm="${REALM}", charset="UTF-8"` }],
      'content-type': [{ key: 'Content-Type', value: 'text/plain; charset=utf-8' }],
      'cache-control': [{ key: 'Cache-Control', value: 'no-store' }],
    },
    body: 'Authentication required.\n',
  };
}

export const handler = async (event) => {
  const request = event.Records[0].cf.request;
  const given = credentials(request);
  if (given === null) return unauthorized();
  const digest = createHash('sha256').update(given).digest();
  if (!timingSafeEqual(digest, Buffer.from(CREDENTIALS_SHA256, 'hex'))) return unauthorized();
  delete request.headers.authorization;
  return request;
};

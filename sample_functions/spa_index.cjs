'use strict';
// SPA rewriting: serve index.html for client-side routes and directory URLs.
//
// Use case: a single-page app or a static site in an S3 bucket, where /settings/profile is a route handled in the
// browser and /docs/ means /docs/index.html. Without this, S3 answers 403 or 404.
// Trigger: origin-request (runs only on cache misses; the rewritten object is cached under the viewer's URL).
// What it does: the Node.js version of spa_index.py, as CommonJS (.cjs) returning a promise: a uri ending in /
// gets index.html appended; a uri whose last segment has no file extension becomes /index.html; anything else
// (/assets/app.js) is left alone. The query string is kept.

const INDEX = 'index.html';

exports.handler = async (event) => {
  const request = event.Records[0].cf.request;
  const uri = request.uri;
  if (uri.endsWith('/')) {
    request.uri = uri + INDEX;
  } else if (!uri.split('/').pop().includes('.')) {
    request.uri = '/' + INDEX;
  }
  return request;
};

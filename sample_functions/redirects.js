'use strict';
// Redirects: answer old URLs with a permanent redirect at the edge, without contacting the origin.
//
// Use case: a site that moved pages, or that wants one canonical URL per page for caching and SEO.
// Trigger: viewer-request (the redirect is generated before the cache, so the origin never sees the old URL).
// What it does: the Node.js version of redirects.py, in the callback style of AWS's examples (CommonJS): drops
// trailing slashes (/docs/ -> /docs; / is left alone), then looks the path up in REDIRECTS. If either changed the
// path, it calls back with a generated 301 Moved Permanently (308 Permanent Redirect for methods other than GET
// and HEAD) whose Location is the new path with the original query string, raw. Any other request goes on.

// Old path -> new path. Keys have no trailing slash: it is removed before the lookup.
const REDIRECTS = {
  '/old-page': '/new-page',
  '/about-us': '/about',
  '/blog/2019/hello-world': '/posts/hello-world',
};
const CACHE_CONTROL = 'max-age=3600';

function normalise(uri) {
  const path = uri.length > 1 ? uri.replace(/\/+$/, '') : uri;
  // Collapse leading slashes and backslashes: "//evil.example/" must not become the protocol-relative (off-site)
  // Location "//evil.example".
  return '/' + path.replace(/^[/\\]+/, '');
}

exports.handler = (event, context, callback) => {
  const request = event.Records[0].cf.request;
  const path = normalise(request.uri);
  const target = REDIRECTS[path] || path;
  if (target === request.uri) {
    callback(null, request);
    return;
  }
  const location = request.querystring ? `${target}?${request.querystring}` : target;
  const permanent = ['GET', 'HEAD'].includes(request.method)
    ? ['301', 'Moved Permanently']
    : ['308', 'Permanent Redirect'];
  callback(null, {
    status: permanent[0],
    statusDescription: permanent[1],
    headers: {
      location: [{ key: 'Location', value: location }],
      'cache-control': [{ key: 'Cache-Control', value: CACHE_CONTROL }],
    },
  });
};

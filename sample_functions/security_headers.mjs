// Security headers: add HSTS, CSP and the other standard security headers to every response.
//
// Use case: a site behind CloudFront whose origin (often an S3 bucket) cannot set response headers itself.
// Trigger: viewer-response (every response below 400, cached or not) or origin-response (once per origin fetch,
// before caching, and also on origin errors such as 404 and 503).
// What it does: the Node.js version of security_headers.py, as an ES module with an async handler: sets
// Strict-Transport-Security, X-Content-Type-Options, X-Frame-Options, Referrer-Policy and Content-Security-Policy,
// replacing any value the origin sent, and returns the response. The body is not touched.

const SECURITY_HEADERS = {
  'Strict-Transport-Security': 'max-age=63072000; includeSubDomains; preload',
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'strict-origin-when-cross-origin',
  'Content-Security-Policy':
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'self'; frame-ancestors 'none'",
};

export const handler = async (event) => {
  const response = event.Records[0].cf.response;
  response.headers ??= {};
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) {
    response.headers[name.toLowerCase()] = [{ key: name, value }];
  }
  return response;
};

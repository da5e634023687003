'use strict';
// Send viewers without a session to a sign-in page (viewer-request).
//
// A request whose first Cookie header has a session-id goes on to the cache and the origin; any other gets a
// generated 302 to https://www.example.com/signin, with the page it asked for, as an https URL on the request's
// Host, in redirect_url (encodeURIComponent).

const SIGN_IN = 'https://www.example.com/signin';

function cookie(headers, wanted) {
  const line = headers.cookie ? headers.cookie[0].value : '';
  for (const pair of line.split(';')) {
    const equals = pair.indexOf('=');
    if (equals > 0 && pair.slice(0, equals).trim() === wanted) {
      return pair.slice(equals + 1).trim();
    }
  }
  return undefined;
}

exports.handler = (event, context, callback) => {
  const request = event.Records[0].cf.request;
  const headers = request.headers;
  if (cookie(headers, 'session-id')) {
    callback(null, request);
    return;
  }
  const page = `https://${headers.host[0].value}${request.uri}?${request.querystring}`;
  const location = `${SIGN_IN}?redirect_url=${encodeURIComponent(page)}`;
  callback(null, {
    status: '302',
    statusDescription: 'Found',
    headers: { location: [{ key: 'Location', value: location }] },
  });
};

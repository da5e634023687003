'use strict';
// Move a query-string parameter into a request header (viewer-request): ?auth=X reaches the origin as
// Auth-Header: X, for an origin that expects the value in a header.
//
// The query string is parsed and encoded again, without auth, with Node's querystring module, so the header gets
// the decoded value (auth=a%20b gives "a b").

const querystring = require('querystring');

const PARAMETER = 'auth';
const HEADER = 'Auth-Header';

exports.handler = (event, context, callback) => {
  const request = event.Records[0].cf.request;
  const { [PARAMETER]: value, ...others } = querystring.parse(request.querystring);
  if (value !== undefined) {
    request.headers[HEADER.toLowerCase()] = [{ key: HEADER, value }];
    request.querystring = querystring.stringify(others);
  }
  callback(null, request);
};

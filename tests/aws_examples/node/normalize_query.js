'use strict';
// Normalise the query string for a better cache hit ratio (viewer-request): names and values in lower case,
// parameters sorted by name, so that equivalent URLs share one cache entry. The query string as it came is logged.

const querystring = require('querystring');

const byName = ([a], [b]) => (a < b ? -1 : a > b ? 1 : 0);

exports.handler = (event, context, callback) => {
  const request = event.Records[0].cf.request;
  console.log('query string as received:', request.querystring);
  const pairs = Object.entries(querystring.parse(request.querystring.toLowerCase()));
  request.querystring = querystring.stringify(Object.fromEntries(pairs.sort(byName)));
  callback(null, request);
};

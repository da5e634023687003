'use strict';
// Switch from an S3 origin to a custom origin (origin-request) when the query string says useCustomOrigin=true.
//
// The custom origin is https://www.example.com on port 443 (TLSv1 and TLSv1.1, 5-second read and keep-alive
// timeouts, no origin path); the Host header follows it.

const querystring = require('querystring');

const SITE = 'www.example.com';

function customOrigin(domainName) {
  return {
    domainName,
    port: 443,
    protocol: 'https',
    path: '',
    sslProtocols: ['TLSv1', 'TLSv1.1'],
    readTimeout: 5,
    keepaliveTimeout: 5,
    customHeaders: {},
  };
}

exports.handler = (event, context, callback) => {
  const request = event.Records[0].cf.request;
  const { useCustomOrigin } = querystring.parse(request.querystring);
  if (useCustomOrigin === 'true') {
    request.origin = { custom: customOrigin(SITE) };
    request.headers.host = [{ key: 'host', value: SITE }];
  }
  callback(null, request);
};

'use strict';
// Change the origin's domain name based on the viewer's country (origin-request): viewers in Great Britain,
// Germany and Ireland go to eu.example.com, and the Host header follows. CloudFront-Viewer-Country is added by
// CloudFront after viewer-request and reaches the function through the origin request policy.

const EU_DOMAIN = 'eu.example.com';
const EU_COUNTRIES = new Set(['GB', 'DE', 'IE']);

exports.handler = (event, context, callback) => {
  const request = event.Records[0].cf.request;
  const country = request.headers['cloudfront-viewer-country'];
  if (country && EU_COUNTRIES.has(country[0].value)) {
    request.origin.custom.domainName = EU_DOMAIN;
    request.headers.host = [{ key: 'host', value: EU_DOMAIN }];
  }
  callback(null, request);
};

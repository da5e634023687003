'use strict';
// Serve different versions of an object based on the device (origin-request).
//
// CloudFront adds the CloudFront-Is-*-Viewer headers after viewer-request; the cache policy keys on them, so they
// reach origin-request and each device's version is cached apart. The uri gets the prefix of the first device type
// whose header is "true" (/desktop, /mobile, /tablet, /smarttv), and the uri sent on is logged.

const DEVICE_TYPES = ['desktop', 'mobile', 'tablet', 'smarttv'];

exports.handler = (event, context, callback) => {
  const request = event.Records[0].cf.request;
  const isViewer = (type) => {
    const entries = request.headers[`cloudfront-is-${type}-viewer`];
    return Boolean(entries) && entries[0].value === 'true';
  };
  const device = DEVICE_TYPES.find(isViewer);
  if (device) {
    request.uri = `/${device}${request.uri}`;
  }
  console.log(`Request uri set to "${request.uri}"`);
  callback(null, request);
};

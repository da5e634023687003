'use strict';
// Override a response header from another one (origin-response): Last-Modified takes the value of the object's
// x-amz-meta-last-modified metadata header.
//
// The entry S3 sent is reused as it is, its key still "X-Amz-Meta-Last-Modified", under the map name
// "last-modified": CloudFront goes by the map name, so the viewer gets Last-Modified with that value.

const SOURCE = 'x-amz-meta-last-modified';
const TARGET = 'last-modified';

exports.handler = (event, context, callback) => {
  const response = event.Records[0].cf.response;
  const [metadata] = response.headers[SOURCE] || [];
  if (metadata) {
    response.headers[TARGET] = [metadata];
    console.log('%s now carries %s', TARGET, metadata.value);
  }
  callback(null, response);
};

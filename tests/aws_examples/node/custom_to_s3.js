'use strict';
// Switch from a custom origin to an S3 origin (origin-request) when the query string says useS3Origin=true.
//
// The bucket is named by its legacy global host name, my-bucket.s3.amazonaws.com, with no Region, no
// authentication and no origin path; the Host header follows it.

const querystring = require('querystring');

const BUCKET_HOST = 'my-bucket.s3.amazonaws.com';

exports.handler = (event, context, callback) => {
  const request = event.Records[0].cf.request;
  if (querystring.parse(request.querystring).useS3Origin === 'true') {
    const s3 = { domainName: BUCKET_HOST, region: '', authMethod: 'none', path: '', customHeaders: {} };
    request.origin = { s3 };
    request.headers.host = [{ key: 'host', value: BUCKET_HOST }];
  }
  callback(null, request);
};

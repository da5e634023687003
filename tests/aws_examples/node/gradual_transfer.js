'use strict';
// Move traffic from one S3 bucket to another step by step (origin-request).
//
// Each request draws a whole number from 1 to 100 (from Math.random()); one no larger than BLUE_PERCENT goes to
// blue-bucket.s3.amazonaws.com, the S3 origin's domain name changed in place and the Host header following it. The
// rest stay on the bucket the behavior is configured with.

const BLUE_PERCENT = 80;
const BLUE_HOST = 'blue-bucket.s3.amazonaws.com';

const oneToHundred = () => 1 + Math.floor(Math.random() * 100);

exports.handler = (event, context, callback) => {
  const request = event.Records[0].cf.request;
  if (oneToHundred() <= BLUE_PERCENT) {
    request.origin.s3.domainName = BLUE_HOST;
    request.headers.host = [{ key: 'host', value: BLUE_HOST }];
  }
  callback(null, request);
};

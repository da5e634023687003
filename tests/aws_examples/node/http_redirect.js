'use strict';
// Generate an HTTP redirect (viewer-request or origin-request): a 302 Found to the Lambda@Edge guide, answered by
// CloudFront without asking the origin.

const GUIDE = 'http://docs.aws.amazon.com/lambda/latest/dg/lambda-edge.html';

exports.handler = (event, context, callback) => {
  const location = [{ key: 'Location', value: GUIDE }];
  callback(null, { status: '302', statusDescription: 'Found', headers: { location } });
};

'use strict';
// Turn an origin error into a 200 with a body of its own (origin-response).
//
// For an origin status from 400 to 599 the response becomes 200 OK with a short text body. The new status is a
// JSON number, as AWS's example sets it, though CloudFront's field table lists status as a string.

const isError = (status) => status >= 400 && status <= 599;

exports.handler = (event, context, callback) => {
  const response = event.Records[0].cf.response;
  if (isError(Number(response.status))) {
    Object.assign(response, { status: 200, statusDescription: 'OK', body: 'Body generation example' });
  }
  callback(null, response);
};

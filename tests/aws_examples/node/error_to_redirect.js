'use strict';
// Redirect an origin error to a plan-B path (origin-response): a status from 400 to 599 becomes a 302 to
// /plan-b/path with the request's query string, and the body is emptied. The new status is a JSON number, as AWS's
// example sets it.

const PLAN_B = '/plan-b/path';

exports.handler = (event, context, callback) => {
  const { request, response } = event.Records[0].cf;
  const status = Number(response.status);
  if (status >= 400 && status <= 599) {
    response.status = 302;
    response.statusDescription = 'Found';
    response.body = '';
    response.headers.location = [{ key: 'Location', value: `${PLAN_B}?${request.querystring}` }];
  }
  callback(null, response);
};

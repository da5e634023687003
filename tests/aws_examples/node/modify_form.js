'use strict';
// Add a field to an HTML form's body (viewer-request or origin-request, with include body).
//
// The base64 body is decoded and parsed with Node's querystring module, new-param-name=new-param-value is added, and
// the form, encoded again, replaces the body as text (action "replace", encoding "text").

const querystring = require('querystring');

exports.handler = (event, context, callback) => {
  const request = event.Records[0].cf.request;
  if (request.method === 'POST') {
    const body = request.body;
    const fields = querystring.parse(Buffer.from(body.data, 'base64').toString('utf8'));
    fields['new-param-name'] = 'new-param-value';
    Object.assign(body, { action: 'replace', encoding: 'text', data: querystring.stringify(fields) });
  }
  callback(null, request);
};

'use strict';
// Read an HTML form's fields from the request body (viewer-request or origin-request, with include body).
//
// CloudFront hands the body over base64-encoded; the form is decoded with Node's querystring module, each field is
// logged with console.log, and the request goes on unchanged.

const querystring = require('querystring');

function formFields(body) {
  return querystring.parse(Buffer.from(body.data, 'base64').toString('utf8'));
}

exports.handler = (event, context, callback) => {
  const request = event.Records[0].cf.request;
  if (request.method === 'POST') {
    for (const [name, value] of Object.entries(formFields(request.body))) {
      console.log(`For "${name}" user submitted "${value}".`);
    }
  }
  callback(null, request);
};

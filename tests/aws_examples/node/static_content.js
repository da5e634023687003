'use strict';
// Serve a static page from the function (viewer-request or origin-request): a generated 200 with an HTML body,
// cacheable for 100 seconds. CloudFront answers the viewer itself; the origin is never asked.

const PAGE = `
<!DOCTYPE html>
<html lang="en">
  <head><meta charset="utf-8"><title>Generated at the edge</title></head>
  <body><p>Hello from Lambda@Edge!</p></body>
</html>
`;

function header(name, value) {
  return [{ key: name, value }];
}

exports.handler = (event, context, callback) => {
  callback(null, {
    status: '200',
    statusDescription: 'OK',
    headers: {
      'cache-control': header('Cache-Control', 'max-age=100'),
      'content-type': header('Content-Type', 'text/html'),
    },
    body: PAGE,
  });
};

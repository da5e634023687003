'use strict';
// A/B testing an image (viewer-request): /experiment-pixel.jpg is rewritten to the control or the treatment pixel.
//
// A viewer whose Cookie header names X-Experiment-Name=A gets the control pixel, X-Experiment-Name=B the treatment
// pixel; a viewer with neither is put in a group with Math.random(), three in four in the control group. Only the
// uri CloudFront asks the origin for changes: the viewer's URL stays the same. Other paths pass untouched. The new
// uri is logged with console.log.

const PIXEL = '/experiment-pixel.jpg';
const PIXEL_FOR_GROUP = {
  A: '/experiment-group/control-pixel.jpg',
  B: '/experiment-group/treatment-pixel.jpg',
};
const SHARE_IN_CONTROL = 0.75;

// Every Cookie header line the viewer sent is its own entry, its value not split into cookies.
function groupInCookies(cookieEntries) {
  for (const entry of cookieEntries || []) {
    for (const group of Object.keys(PIXEL_FOR_GROUP)) {
      if (entry.value.includes(`X-Experiment-Name=${group}`)) {
        return group;
      }
    }
  }
  return undefined;
}

exports.handler = (event, context, callback) => {
  const request = event.Records[0].cf.request;
  if (request.uri === PIXEL) {
    const group = groupInCookies(request.headers.cookie) || (Math.random() < SHARE_IN_CONTROL ? 'A' : 'B');
    request.uri = PIXEL_FOR_GROUP[group];
    console.log(`Request uri set to "${request.uri}"`);
  }
  callback(null, request);
};

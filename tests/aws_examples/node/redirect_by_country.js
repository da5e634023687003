'use strict';
// Redirect viewer requests to a country-specific URL (origin-request), by CloudFront-Viewer-Country.
//
// CloudFront adds that header after viewer-request; the distribution caches on it (a cache policy naming it), so it
// reaches origin-request and each country's redirect is cached apart. Viewers in Taiwan go to tw.example.com,
// viewers in the United States to us.example.com, everyone else to example.com, with a generated 302.

const URL_FOR_COUNTRY = new Map([
  ['TW', 'https://tw.example.com/'],
  ['US', 'https://us.example.com/'],
]);
const ELSEWHERE = 'https://example.com/';

exports.handler = (event, context, callback) => {
  const country = event.Records[0].cf.request.headers['cloudfront-viewer-country'];
  const url = (country && URL_FOR_COUNTRY.get(country[0].value)) || ELSEWHERE;
  callback(null, {
    status: '302',
    statusDescription: 'Found',
    headers: { location: [{ key: 'Location', value: url }] },
  });
};

'use strict';
// Change the Amazon S3 origin's Region based on the viewer's country (origin-request).
//
// There is a bucket per Region, my-bucket-in-<region>, named by its global host name
// (my-bucket-in-<region>.s3.amazonaws.com). CloudFront-Viewer-Country (added after viewer-request, passed on by the
// origin request policy) picks the Region; the S3 origin's region and domain name and the Host header follow.
// Countries not in the table stay on the configured bucket.

const REGION_FOR_COUNTRY = new Map([
  ['DE', 'eu-central-1'],
  ['IE', 'eu-west-1'],
  ['GB', 'eu-west-2'],
  ['FR', 'eu-west-3'],
  ['JP', 'ap-northeast-1'],
  ['IN', 'ap-south-1'],
]);

exports.handler = (event, context, callback) => {
  const request = event.Records[0].cf.request;
  const country = request.headers['cloudfront-viewer-country'];
  const region = country ? REGION_FOR_COUNTRY.get(country[0].value) : undefined;
  if (region) {
    const bucketHost = `my-bucket-in-${region}.s3.amazonaws.com`;
    Object.assign(request.origin.s3, { region, domainName: bucketHost });
    request.headers.host = [{ key: 'host', value: bucketHost }];
  }
  callback(null, request);
};

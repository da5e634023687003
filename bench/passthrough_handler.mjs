// A pass-through Lambda@Edge handler for every trigger, in Node.js: returns the request or the response unchanged.
export const handler = async (event) => {
  const cf = event.Records[0].cf;
  return cf.response ?? cf.request;
};

// The peer's pass-through handler, as bench/passthrough_handler.mjs is edgeproxy's: the request or the response,
// unchanged, at each of the four triggers.
exports.passthrough = async (event) => {
  const cf = event.Records[0].cf;
  return cf.response || cf.request;
};

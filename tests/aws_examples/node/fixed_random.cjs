// Test support, not an AWS example: preloaded with NODE_OPTIONS="--require .../fixed_random.cjs", it makes
// Math.random() return EDGEPROXY_TEST_RANDOM, so that the examples that pick at random can be tested.
if (process.env.EDGEPROXY_TEST_RANDOM !== undefined) {
  const value = Number(process.env.EDGEPROXY_TEST_RANDOM);
  Math.random = () => value;
}

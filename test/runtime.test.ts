import t from 'tap'

t.test('the tests run on the Node major version the service is deployed on', async (t) => {
  t.equal(process.versions.node.split('.')[0], '24')
})

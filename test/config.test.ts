import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { loadConfig } from '../src/config.ts'
import { DEMO_POLICY } from '../src/sandbox/seed.ts'

const dir = mkdtempSync(join(tmpdir(), 'jit-config-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const policyFile = join(dir, 'policy.json')
writeFileSync(policyFile, JSON.stringify(DEMO_POLICY))
const valid = {
  JIT_POLICY_FILE: policyFile,
  JIT_JWT_SECRET: 'x'.repeat(32),
  JIT_CURSOR_KEY: 'c'.repeat(32),
  JIT_JWT_ISSUER: 'https://issuer.example.com',
  JIT_JWT_AUDIENCE: 'jit-access',
}

t.test('a valid environment gives a typed configuration with defaults', async (t) => {
  const config = loadConfig(valid)
  t.match(config, {
    port: 3000,
    host: '127.0.0.1',
    region: 'us-east-1',
    tables: { grants: 'jit-access-grants', audit: 'jit-access-audit' },
    maxDurationMinutes: 720,
    provisioningWaitMs: 5000,
    requestDeadlineMs: 25_000,
    jwt: { maxLifetimeSeconds: 3600 },
    sandbox: false,
  })
  t.equal(config.policy.rules.length, 2)
})

t.test('a bad setting stops the start with a message that names it', async (t) => {
  const cases: [string, Record<string, string | undefined>, RegExp][] = [
    ['no policy file setting', { ...valid, JIT_POLICY_FILE: undefined }, /JIT_POLICY_FILE/],
    ['policy file missing', { ...valid, JIT_POLICY_FILE: join(dir, 'nope.json') }, /JIT_POLICY_FILE.*cannot be read/],
    ['port not a number', { ...valid, PORT: 'eighty' }, /PORT/],
    ['no JWT key at all', { ...valid, JIT_JWT_SECRET: undefined }, /JIT_JWT_SECRET.*JIT_JWT_PUBLIC_KEY/],
    ['both JWT keys', { ...valid, JIT_JWT_PUBLIC_KEY: '-----BEGIN PUBLIC KEY-----x' }, /exactly one/],
    [
      'a secret and a secret ARN',
      { ...valid, JIT_JWT_SECRET_ARN: 'arn:aws:secretsmanager:us-east-1:111111111111:secret:x' },
      /exactly one/,
    ],
    ['a JWKS URL and a secret', { ...valid, JIT_JWKS_URL: 'https://idp.example.com/jwks' }, /exactly one/],
    [
      'a JWKS URL without an issuer',
      {
        ...valid,
        JIT_JWT_SECRET: undefined,
        JIT_JWKS_URL: 'https://idp.example.com/jwks',
        JIT_JWT_ISSUER: undefined,
        JIT_SANDBOX: 'true',
      },
      /JIT_JWKS_URL needs JIT_JWT_ISSUER/,
    ],
    [
      'a secret ARN that is not one',
      { ...valid, JIT_JWT_SECRET: undefined, JIT_JWT_SECRET_ARN: 'my-secret' },
      /JIT_JWT_SECRET_ARN/,
    ],
    ['short secret', { ...valid, JIT_JWT_SECRET: 'short' }, /JIT_JWT_SECRET/],
    ['no issuer outside the sandbox', { ...valid, JIT_JWT_ISSUER: undefined }, /JIT_JWT_ISSUER/],
    ['no audience outside the sandbox', { ...valid, JIT_JWT_AUDIENCE: undefined }, /JIT_JWT_AUDIENCE/],
    ['bad region', { ...valid, AWS_REGION: 'mars' }, /AWS_REGION/],
    ['bad topic', { ...valid, JIT_SNS_TOPIC_ARN: 'my-topic' }, /JIT_SNS_TOPIC_ARN/],
    ['bad maximum duration', { ...valid, JIT_MAX_DURATION_MINUTES: '0' }, /JIT_MAX_DURATION_MINUTES/],
    ['a lead time over a year', { ...valid, JIT_MAX_LEAD_DAYS: '366' }, /JIT_MAX_LEAD_DAYS/],
    ['bad log level', { ...valid, LOG_LEVEL: 'loud' }, /LOG_LEVEL/],
    [
      'a deadline API Gateway would not wait for',
      { ...valid, JIT_REQUEST_DEADLINE_MS: '30000' },
      /JIT_REQUEST_DEADLINE_MS/,
    ],
    ['no cursor key', { ...valid, JIT_CURSOR_KEY: undefined }, /JIT_CURSOR_KEY.*JIT_CURSOR_KEY_ARN/],
    [
      'no cursor key, even in the sandbox mode (npm start makes one)',
      { ...valid, JIT_CURSOR_KEY: undefined, JIT_SANDBOX: 'true' },
      /JIT_CURSOR_KEY/,
    ],
    ['a short cursor key', { ...valid, JIT_CURSOR_KEY: 'short' }, /JIT_CURSOR_KEY/],
    [
      'a cursor key and a cursor key ARN',
      { ...valid, JIT_CURSOR_KEY_ARN: 'arn:aws:secretsmanager:us-east-1:111111111111:secret:c-AbCdEf' },
      /exactly one of JIT_CURSOR_KEY/,
    ],
    [
      'a cursor key ARN that is not one',
      { ...valid, JIT_CURSOR_KEY: undefined, JIT_CURSOR_KEY_ARN: 'cursor-key' },
      /JIT_CURSOR_KEY_ARN/,
    ],
    [
      'a provisioning wait as long as the deadline',
      { ...valid, JIT_PROVISIONING_WAIT_MS: '10000', JIT_REQUEST_DEADLINE_MS: '10000' },
      /JIT_PROVISIONING_WAIT_MS must be less than JIT_REQUEST_DEADLINE_MS/,
    ],
    ['a token lifetime under a minute', { ...valid, JIT_JWT_MAX_AGE_SECONDS: '59' }, /JIT_JWT_MAX_AGE_SECONDS/],
    ['a token lifetime over a day', { ...valid, JIT_JWT_MAX_AGE_SECONDS: '86401' }, /JIT_JWT_MAX_AGE_SECONDS/],
    ['a token lifetime that is not a number', { ...valid, JIT_JWT_MAX_AGE_SECONDS: '1h' }, /JIT_JWT_MAX_AGE_SECONDS/],
  ]
  for (const [name, env, message] of cases) {
    t.throws(() => loadConfig(env), { name: 'ConfigError', message }, name)
  }
})

t.test('the HS256 secret can be named by its Secrets Manager ARN instead of given in the environment', async (t) => {
  const arn = 'arn:aws:secretsmanager:us-east-1:111111111111:secret:jit-access-jwt-AbCdEf'
  const config = loadConfig({ ...valid, JIT_JWT_SECRET: undefined, JIT_JWT_SECRET_ARN: arn })
  t.equal(config.jwtSecretArn, arn)
  t.equal(config.jwt.secret, undefined, 'the value is read once at start (createService), never from the environment')
})

t.test('the cursor key can be named by its Secrets Manager ARN instead of given in the environment', async (t) => {
  const arn = 'arn:aws:secretsmanager:us-east-1:111111111111:secret:jit-access-cursor-AbCdEf'
  const config = loadConfig({ ...valid, JIT_CURSOR_KEY: undefined, JIT_CURSOR_KEY_ARN: arn })
  t.equal(config.cursorKeyArn, arn)
  t.equal(config.cursorKey, undefined, 'the value is read once at start (createService), never from the environment')
})

t.test('the service fails closed on a policy that is not valid', async (t) => {
  const broken = join(dir, 'broken.json')
  writeFileSync(broken, '{"rules": [')
  t.throws(() => loadConfig({ ...valid, JIT_POLICY_FILE: broken }), { message: /not valid JSON/ })
  const empty = join(dir, 'empty.json')
  writeFileSync(empty, '{"rules": []}')
  t.throws(() => loadConfig({ ...valid, JIT_POLICY_FILE: empty }), { message: /JIT_POLICY_FILE.*rules/ })
})

t.test('issuer and audience are optional only in the sandbox', async (t) => {
  const config = loadConfig({ ...valid, JIT_JWT_ISSUER: undefined, JIT_JWT_AUDIENCE: undefined, JIT_SANDBOX: 'true' })
  t.equal(config.sandbox, true)
})

t.test('the longest token lifetime can be set between a minute and a day', async (t) => {
  t.equal(loadConfig({ ...valid, JIT_JWT_MAX_AGE_SECONDS: '60' }).jwt.maxLifetimeSeconds, 60)
  t.equal(loadConfig({ ...valid, JIT_JWT_MAX_AGE_SECONDS: '86400' }).jwt.maxLifetimeSeconds, 86_400)
})

t.test('the JWKS URL must be https, except on a loopback host', async (t) => {
  const withJwks = (url: string) => ({ ...valid, JIT_JWT_SECRET: undefined, JIT_JWKS_URL: url })
  for (const url of [
    'https://idp.example.com/oauth2/jwks',
    'http://127.0.0.1:8080/jwks',
    'http://127.1.2.3/jwks',
    'http://[::1]:8080/jwks',
    'http://localhost:8080/jwks',
    'http://LOCALHOST/jwks',
  ]) {
    t.equal(loadConfig(withJwks(url)).jwt.jwksUrl, url, url)
  }
  const refused = [
    'http://idp.example.com/oauth2/jwks',
    'http://128.0.0.1/jwks',
    'http://10.0.0.1/jwks',
    'http://localhost.evil.example.com/jwks',
    'http://127.0.0.1.nip.io/jwks',
    'http://[::ffff:10.0.0.1]/jwks',
  ]
  for (const url of refused) {
    t.throws(() => loadConfig(withJwks(url)), { name: 'ConfigError', message: /JIT_JWKS_URL must be https/ }, url)
  }
  t.throws(() => loadConfig(withJwks('https://')), { name: 'ConfigError', message: /JIT_JWKS_URL/ }, 'not a URL')
})

t.test('session cut-off is off by default; with scp it needs one to five distinct policy ids', async (t) => {
  const ids = 'p-abcd1234,p-efgh5678'
  t.equal(loadConfig(valid).cutoffPolicyIds, undefined)
  t.equal(loadConfig({ ...valid, JIT_CUTOFF_POLICY_IDS: ids }).cutoffPolicyIds, undefined, 'ids alone turn nothing on')
  t.same(loadConfig({ ...valid, JIT_SESSION_CUTOFF: 'scp', JIT_CUTOFF_POLICY_IDS: ids }).cutoffPolicyIds, [
    'p-abcd1234',
    'p-efgh5678',
  ])
  const refused: [string, Record<string, string>, RegExp][] = [
    ['an unknown mode', { JIT_SESSION_CUTOFF: 'iam' }, /JIT_SESSION_CUTOFF must be one of off, scp/],
    ['scp without policies', { JIT_SESSION_CUTOFF: 'scp' }, /JIT_SESSION_CUTOFF=scp needs JIT_CUTOFF_POLICY_IDS/],
    [
      'not a policy id',
      { JIT_SESSION_CUTOFF: 'scp', JIT_CUTOFF_POLICY_IDS: 'arn:aws:organizations::1:policy/p-abcd1234' },
      /JIT_CUTOFF_POLICY_IDS/,
    ],
    [
      'spaces between ids',
      { JIT_SESSION_CUTOFF: 'scp', JIT_CUTOFF_POLICY_IDS: 'p-abcd1234, p-efgh5678' },
      /JIT_CUTOFF_POLICY_IDS/,
    ],
    [
      'six policies',
      {
        JIT_SESSION_CUTOFF: 'scp',
        JIT_CUTOFF_POLICY_IDS: Array.from({ length: 6 }, (_, i) => `p-abcd123${i}`).join(','),
      },
      /JIT_CUTOFF_POLICY_IDS/,
    ],
    [
      'one policy twice',
      { JIT_SESSION_CUTOFF: 'scp', JIT_CUTOFF_POLICY_IDS: 'p-abcd1234,p-abcd1234' },
      /names a policy twice/,
    ],
    [
      'a management account that is not an account id',
      { JIT_MANAGEMENT_ACCOUNT_ID: '1234' },
      /JIT_MANAGEMENT_ACCOUNT_ID/,
    ],
  ]
  for (const [name, env, message] of refused) t.throws(() => loadConfig({ ...valid, ...env }), message, name)
  t.equal(loadConfig({ ...valid, JIT_MANAGEMENT_ACCOUNT_ID: '111111111111' }).managementAccountId, '111111111111')
})

t.test('ServiceNow settings: one way to sign in, the secret or its ARN, a plain https base URL', async (t) => {
  const snow = { ...valid, JIT_SERVICENOW_URL: 'https://example.service-now.com' }
  t.match(
    loadConfig({ ...snow, JIT_SERVICENOW_CLIENT_ID: 'client', JIT_SERVICENOW_CLIENT_SECRET: 's3cret' }).serviceNow,
    {
      url: 'https://example.service-now.com',
      identity: { kind: 'oauth', clientId: 'client' },
      secret: 's3cret',
      verify: undefined,
    },
  )
  t.match(
    loadConfig({
      ...snow,
      JIT_SERVICENOW_USERNAME: 'jit.integration',
      JIT_SERVICENOW_SECRET_ARN: 'arn:aws:secretsmanager:us-east-1:111111111111:secret:snow-AbCdEf',
      JIT_SERVICENOW_VERIFY: 'true',
      JIT_SERVICENOW_TABLES: 'CHG=change_request,SCTASK=sc_task',
    }).serviceNow,
    {
      identity: { kind: 'basic', username: 'jit.integration' },
      secret: undefined,
      tables: { CHG: 'change_request', SCTASK: 'sc_task' },
      verify: {
        changeStates: ['-2', '-1'],
        incidentStates: ['1', '2', '3'],
        windowLeadMs: 15 * 60_000,
        retryAfterSeconds: 30,
      },
    },
  )
  t.equal(loadConfig(valid).serviceNow, undefined, 'off unless configured')
  const cases: [string, Record<string, string | undefined>, RegExp][] = [
    [
      'credentials without a URL',
      { ...valid, JIT_SERVICENOW_CLIENT_ID: 'client', JIT_SERVICENOW_CLIENT_SECRET: 's' },
      /JIT_SERVICENOW_CLIENT_ID, JIT_SERVICENOW_CLIENT_SECRET needs JIT_SERVICENOW_URL/,
    ],
    [
      'verification without a URL',
      { ...valid, JIT_SERVICENOW_VERIFY: 'true' },
      /JIT_SERVICENOW_VERIFY needs JIT_SERVICENOW_URL/,
    ],
    ['no way to sign in', snow, /either JIT_SERVICENOW_CLIENT_ID .* or JIT_SERVICENOW_USERNAME/],
    [
      'both ways to sign in',
      { ...snow, JIT_SERVICENOW_CLIENT_ID: 'c', JIT_SERVICENOW_USERNAME: 'u', JIT_SERVICENOW_CLIENT_SECRET: 's' },
      /not both/,
    ],
    [
      'no secret',
      { ...snow, JIT_SERVICENOW_CLIENT_ID: 'c' },
      /either JIT_SERVICENOW_CLIENT_SECRET or JIT_SERVICENOW_SECRET_ARN/,
    ],
    [
      'a secret and its ARN',
      {
        ...snow,
        JIT_SERVICENOW_USERNAME: 'u',
        JIT_SERVICENOW_PASSWORD: 'p',
        JIT_SERVICENOW_SECRET_ARN: 'arn:aws:secretsmanager:us-east-1:111111111111:secret:snow-AbCdEf',
      },
      /not both/,
    ],
    [
      'plain http to a remote host',
      {
        ...snow,
        JIT_SERVICENOW_URL: 'http://example.service-now.com',
        JIT_SERVICENOW_CLIENT_ID: 'c',
        JIT_SERVICENOW_CLIENT_SECRET: 's',
      },
      /must be https/,
    ],
    [
      'credentials in the URL',
      {
        ...snow,
        JIT_SERVICENOW_URL: 'https://u:pw@example.service-now.com',
        JIT_SERVICENOW_CLIENT_ID: 'c',
        JIT_SERVICENOW_CLIENT_SECRET: 's',
      },
      /must not carry a user or password/,
    ],
    [
      'a query in the base URL',
      {
        ...snow,
        JIT_SERVICENOW_URL: 'https://example.service-now.com/?x=1',
        JIT_SERVICENOW_CLIENT_ID: 'c',
        JIT_SERVICENOW_CLIENT_SECRET: 's',
      },
      /no query or fragment/,
    ],
    [
      'a table map that is not one',
      {
        ...snow,
        JIT_SERVICENOW_CLIENT_ID: 'c',
        JIT_SERVICENOW_CLIENT_SECRET: 's',
        JIT_SERVICENOW_TABLES: 'CHG:change_request',
      },
      /JIT_SERVICENOW_TABLES/,
    ],
    [
      'credentials in the JWKS URL',
      { ...valid, JIT_JWT_SECRET: undefined, JIT_JWKS_URL: 'https://u:pw@idp.example.com/jwks' },
      /JIT_JWKS_URL must not carry a user or password/,
    ],
  ]
  for (const [name, env, message] of cases) {
    t.throws(() => loadConfig(env), { name: 'ConfigError', message }, name)
  }
})

t.test('the due queue is off by default, and needs both its URL and its ARN', async (t) => {
  t.equal(loadConfig(valid).dueQueue, undefined)
  const url = 'https://sqs.us-east-1.amazonaws.com/111111111111/jit-due'
  const arn = 'arn:aws:sqs:us-east-1:111111111111:jit-due'
  t.same(loadConfig({ ...valid, JIT_DUE_QUEUE_URL: url, JIT_DUE_QUEUE_ARN: arn }).dueQueue, { url, arn })
  t.throws(() => loadConfig({ ...valid, JIT_DUE_QUEUE_URL: url }), /JIT_DUE_QUEUE_URL .* JIT_DUE_QUEUE_ARN/)
  t.throws(() => loadConfig({ ...valid, JIT_DUE_QUEUE_ARN: arn }), /JIT_DUE_QUEUE_URL .* JIT_DUE_QUEUE_ARN/)
  t.throws(
    () =>
      loadConfig({ ...valid, JIT_DUE_QUEUE_URL: url, JIT_DUE_QUEUE_ARN: 'arn:aws:sns:us-east-1:111111111111:jit-due' }),
    /JIT_DUE_QUEUE_ARN/,
  )
})

import { readFileSync } from 'node:fs'
import { isIPv4 } from 'node:net'
import type { Static, TSchema } from 'typebox'
import { DEFAULT_CHANGE_STATES, DEFAULT_INCIDENT_STATES } from './adapters/servicenow.ts'
import { DEFAULT_MAX_LEAD_DAYS } from './core/grant-service.ts'
import { DEFAULT_GIVE_UP_MS } from './core/outbox.ts'
import { type Policy, parsePolicy } from './core/policy.ts'
import * as Type from './core/schema-builders.ts'
import { compileCheck } from './core/schema-check.ts'

/** An Organizations policy id. */
const POLICY_ID = 'p-[0-9a-zA-Z_]{8,128}'
/** Organizations attaches at most 5 service control policies to one root, OU or account. */
export const MAX_CUTOFF_POLICIES = 5

const EnvSchema = Type.Object({
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3000 }),
  HOST: Type.String({ minLength: 1, default: '127.0.0.1' }),
  LOG_LEVEL: Type.Union(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
    { default: 'info' },
  ),
  AWS_REGION: Type.String({ pattern: '^[a-z]{2}(-[a-z]+)+-[0-9]+$', default: 'us-east-1' }),
  AWS_ENDPOINT_URL: Type.Optional(Type.String({ pattern: '^https?://' })),
  JIT_JWT_SECRET: Type.Optional(Type.String({ minLength: 32 })),
  JIT_JWT_PUBLIC_KEY: Type.Optional(Type.String({ pattern: '-----BEGIN PUBLIC KEY-----' })),
  JIT_JWT_SECRET_ARN: Type.Optional(Type.String({ pattern: '^arn:aws[a-z-]*:secretsmanager:' })),
  JIT_JWKS_URL: Type.Optional(Type.String({ pattern: '^https?://' })),
  JIT_JWT_ISSUER: Type.Optional(Type.String({ minLength: 1 })),
  JIT_JWT_AUDIENCE: Type.Optional(Type.String({ minLength: 1 })),
  // The longest token lifetime (exp - iat) accepted; ServiceNow signs a fresh, short-lived token for each call.
  JIT_JWT_MAX_AGE_SECONDS: Type.Integer({ minimum: 60, maximum: 86_400, default: 3600 }),
  JIT_CURSOR_KEY: Type.Optional(Type.String({ minLength: 32 })),
  JIT_CURSOR_KEY_ARN: Type.Optional(Type.String({ pattern: '^arn:aws[a-z-]*:secretsmanager:' })),
  JIT_POLICY_FILE: Type.String({ minLength: 1 }),
  JIT_GRANTS_TABLE: Type.String({ pattern: '^[A-Za-z0-9_.-]{3,255}$', default: 'jit-access-grants' }),
  JIT_AUDIT_TABLE: Type.String({ pattern: '^[A-Za-z0-9_.-]{3,255}$', default: 'jit-access-audit' }),
  JIT_SNS_TOPIC_ARN: Type.Optional(Type.String({ pattern: '^arn:aws[a-z-]*:sns:' })),
  JIT_DUE_QUEUE_URL: Type.Optional(Type.String({ pattern: '^https?://' })),
  JIT_DUE_QUEUE_ARN: Type.Optional(Type.String({ pattern: '^arn:aws[a-z-]*:sqs:' })),
  // S3's rules for bucket names, in short: 3–63 of lower-case letters, digits, dots and hyphens.
  JIT_AUDIT_ANCHOR_BUCKET: Type.Optional(Type.String({ pattern: '^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$' })),
  JIT_INSTANCE_ARN: Type.Optional(Type.String({ pattern: '^arn:aws[a-z-]*:sso:::instance/' })),
  JIT_IDENTITY_STORE_ID: Type.Optional(Type.String({ pattern: '^d-[0-9a-z]+$' })),
  JIT_MAX_DURATION_MINUTES: Type.Integer({ minimum: 1, maximum: 43_200, default: 720 }),
  JIT_MAX_LEAD_DAYS: Type.Integer({ minimum: 0, maximum: 365, default: DEFAULT_MAX_LEAD_DAYS }),
  JIT_PROVISIONING_WAIT_MS: Type.Integer({ minimum: 0, maximum: 25_000, default: 5000 }),
  // API Gateway ends an integration after about 30 s (29 s by default): answer well before.
  JIT_REQUEST_DEADLINE_MS: Type.Integer({ minimum: 1000, maximum: 28_000, default: 25_000 }),
  JIT_CACHE_TTL_SECONDS: Type.Integer({ minimum: 0, maximum: 86_400, default: 300 }),
  JIT_SWEEP_BUDGET_SECONDS: Type.Integer({ minimum: 1, maximum: 900, default: 55 }),
  JIT_IDENTITY_CENTER_TPS: Type.Number({ exclusiveMinimum: 0, maximum: 20, default: 10 }),
  JIT_SANDBOX: Type.Boolean({ default: false }),
  JIT_OUTBOX_GIVE_UP_MINUTES: Type.Integer({ minimum: 5, maximum: 10_080, default: DEFAULT_GIVE_UP_MS / 60_000 }),
  JIT_SERVICENOW_URL: Type.Optional(Type.String({ minLength: 8, maxLength: 200 })),
  JIT_SERVICENOW_CLIENT_ID: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  JIT_SERVICENOW_CLIENT_SECRET: Type.Optional(Type.String({ minLength: 1, maxLength: 500 })),
  JIT_SERVICENOW_USERNAME: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  JIT_SERVICENOW_PASSWORD: Type.Optional(Type.String({ minLength: 1, maxLength: 500 })),
  JIT_SERVICENOW_SECRET_ARN: Type.Optional(Type.String({ pattern: '^arn:aws[a-z-]*:secretsmanager:' })),
  // 'CHG=change_request,INC=incident,RITM=sc_req_item'
  JIT_SERVICENOW_TABLES: Type.Optional(
    Type.String({ pattern: '^[A-Za-z]{1,10}=[a-z0-9_]{1,80}(,[A-Za-z]{1,10}=[a-z0-9_]{1,80}){0,19}$' }),
  ),
  JIT_SERVICENOW_VERIFY: Type.Boolean({ default: false }),
  JIT_SERVICENOW_CHANGE_STATES: Type.String({
    pattern: '^-?[0-9]{1,3}(,-?[0-9]{1,3}){0,19}$',
    default: DEFAULT_CHANGE_STATES.join(','),
  }),
  JIT_SERVICENOW_INCIDENT_STATES: Type.String({
    pattern: '^-?[0-9]{1,3}(,-?[0-9]{1,3}){0,19}$',
    default: DEFAULT_INCIDENT_STATES.join(','),
  }),
  JIT_SERVICENOW_WINDOW_LEAD_MINUTES: Type.Integer({ minimum: 0, maximum: 1440, default: 15 }),
  JIT_SERVICENOW_RETRY_AFTER_SECONDS: Type.Integer({ minimum: 1, maximum: 3600, default: 30 }),
  // End live role sessions when a grant's access ends: 'scp' writes Deny statements into the owned service control policies.
  JIT_SESSION_CUTOFF: Type.Union([Type.Literal('off'), Type.Literal('scp')], { default: 'off' }),
  // The owned SCPs: 1 to 5 policy ids (Organizations' limit per target), comma-separated, no spaces.
  // The organization's management account: no SCP applies there, so its grants' sessions are never reported cut.
  JIT_MANAGEMENT_ACCOUNT_ID: Type.Optional(Type.String({ pattern: '^[0-9]{12}$' })),
  JIT_CUTOFF_POLICY_IDS: Type.Optional(
    Type.String({ pattern: `^${POLICY_ID}(,${POLICY_ID}){0,${MAX_CUTOFF_POLICIES - 1}}$` }),
  ),
})
type Env = Static<typeof EnvSchema>

export interface Config {
  port: number
  host: string
  logLevel: string
  region: string
  endpoint: string | undefined
  jwt: {
    secret?: string | undefined
    publicKey?: string | undefined
    jwksUrl?: string | undefined
    issuer?: string | undefined
    audience?: string | undefined
    maxLifetimeSeconds: number
  }
  /** The HS256 secret is read from Secrets Manager at start (see resolveJwtSecret) instead of the environment. */
  jwtSecretArn: string | undefined
  /** Seals page cursors; or it is read from Secrets Manager at start (see resolveCursorKey). */
  cursorKey: string | undefined
  cursorKeyArn: string | undefined
  policyFile: string
  policy: Policy
  tables: { grants: string; audit: string }
  snsTopicArn: string | undefined
  /**
   * The SQS queue (Lambda) on which each sweep puts the grants due before its next run, each delayed to its
   * second, and whose messages the function consumes; undefined, only the minute sweep acts.
   */
  dueQueue: { url: string; arn: string } | undefined
  /** The Object Lock bucket where the sweep anchors the audit chain's head; unset, nothing is anchored. */
  auditAnchorBucket: string | undefined
  instanceArn: string | undefined
  identityStoreId: string | undefined
  maxDurationMinutes: number
  /** How long the outbox keeps trying to deliver a message (SNS, a work note) before it gives up, audits and alerts. */
  outboxGiveUpMs: number
  /** Work notes on tickets and approval verification; undefined when ServiceNow is not configured. */
  serviceNow: ServiceNowConfig | undefined
  /** How far ahead a grant may be scheduled (startsAt); 0 turns scheduling off. */
  maxLeadDays: number
  provisioningWaitMs: number
  /** A grant or revocation request answers within this (202 once recorded, 503 before), whatever AWS does. */
  requestDeadlineMs: number
  cacheTtlMs: number
  sweepBudgetMs: number
  identityCenterTps: number
  /** The owned service control policies that cut live sessions (JIT_SESSION_CUTOFF=scp); undefined when off. */
  cutoffPolicyIds: string[] | undefined
  /** The organization's management account (JIT_MANAGEMENT_ACCOUNT_ID), which service control policies never reach. */
  managementAccountId: string | undefined
  sandbox: boolean
}

export class ConfigError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(`Invalid configuration: ${message}`, options)
    this.name = 'ConfigError'
  }
}

/** Reads and checks the whole configuration once; any problem stops the start with a message naming the setting. */
export function loadConfig(source: NodeJS.ProcessEnv = process.env): Config {
  const env = parseEnv(source)
  const keySources = [env.JIT_JWT_SECRET, env.JIT_JWT_SECRET_ARN, env.JIT_JWT_PUBLIC_KEY, env.JIT_JWKS_URL].filter(
    Boolean,
  ).length
  if (keySources !== 1) {
    throw new ConfigError(
      'set exactly one of JIT_JWT_SECRET (HS256), JIT_JWT_SECRET_ARN (HS256, from Secrets Manager), JIT_JWT_PUBLIC_KEY (RS256/ES256 PEM) and JIT_JWKS_URL',
    )
  }
  // Required even in the sandbox (which generates one): a key made up here would differ between instances.
  if ((env.JIT_CURSOR_KEY === undefined) === (env.JIT_CURSOR_KEY_ARN === undefined)) {
    throw new ConfigError(
      'set exactly one of JIT_CURSOR_KEY (≥ 32 characters) and JIT_CURSOR_KEY_ARN (from Secrets Manager): page cursors are sealed with it, the same key on every instance',
    )
  }
  if (env.JIT_PROVISIONING_WAIT_MS >= env.JIT_REQUEST_DEADLINE_MS) {
    throw new ConfigError('JIT_PROVISIONING_WAIT_MS must be less than JIT_REQUEST_DEADLINE_MS')
  }
  if (Boolean(env.JIT_DUE_QUEUE_URL) !== Boolean(env.JIT_DUE_QUEUE_ARN)) {
    throw new ConfigError(
      'set both JIT_DUE_QUEUE_URL (where the sweep sends due grants) and JIT_DUE_QUEUE_ARN (the only queue whose messages are taken), or neither',
    )
  }
  if (env.JIT_JWKS_URL && !env.JIT_JWT_ISSUER) throw new ConfigError('JIT_JWKS_URL needs JIT_JWT_ISSUER')
  if (env.JIT_JWKS_URL) checkJwksUrl(env.JIT_JWKS_URL)
  if (!env.JIT_SANDBOX && (!env.JIT_JWT_ISSUER || !env.JIT_JWT_AUDIENCE)) {
    throw new ConfigError('JIT_JWT_ISSUER and JIT_JWT_AUDIENCE are required outside the sandbox')
  }
  const serviceNow = serviceNowSettings(env)
  const cutoffPolicyIds = cutoffPoliciesOf(env)
  return {
    port: env.PORT,
    host: env.HOST,
    logLevel: env.LOG_LEVEL,
    region: env.AWS_REGION,
    endpoint: env.AWS_ENDPOINT_URL,
    jwt: {
      secret: env.JIT_JWT_SECRET,
      publicKey: env.JIT_JWT_PUBLIC_KEY,
      jwksUrl: env.JIT_JWKS_URL,
      issuer: env.JIT_JWT_ISSUER,
      audience: env.JIT_JWT_AUDIENCE,
      maxLifetimeSeconds: env.JIT_JWT_MAX_AGE_SECONDS,
    },
    jwtSecretArn: env.JIT_JWT_SECRET_ARN,
    cursorKey: env.JIT_CURSOR_KEY,
    cursorKeyArn: env.JIT_CURSOR_KEY_ARN,
    policyFile: env.JIT_POLICY_FILE,
    policy: loadPolicyFile(env.JIT_POLICY_FILE),
    tables: { grants: env.JIT_GRANTS_TABLE, audit: env.JIT_AUDIT_TABLE },
    snsTopicArn: env.JIT_SNS_TOPIC_ARN,
    dueQueue:
      env.JIT_DUE_QUEUE_URL && env.JIT_DUE_QUEUE_ARN
        ? { url: env.JIT_DUE_QUEUE_URL, arn: env.JIT_DUE_QUEUE_ARN }
        : undefined,
    auditAnchorBucket: env.JIT_AUDIT_ANCHOR_BUCKET,
    instanceArn: env.JIT_INSTANCE_ARN,
    identityStoreId: env.JIT_IDENTITY_STORE_ID,
    maxDurationMinutes: env.JIT_MAX_DURATION_MINUTES,
    maxLeadDays: env.JIT_MAX_LEAD_DAYS,
    provisioningWaitMs: env.JIT_PROVISIONING_WAIT_MS,
    requestDeadlineMs: env.JIT_REQUEST_DEADLINE_MS,
    cacheTtlMs: env.JIT_CACHE_TTL_SECONDS * 1000,
    sweepBudgetMs: env.JIT_SWEEP_BUDGET_SECONDS * 1000,
    identityCenterTps: env.JIT_IDENTITY_CENTER_TPS,
    cutoffPolicyIds,
    managementAccountId: env.JIT_MANAGEMENT_ACCOUNT_ID,
    sandbox: env.JIT_SANDBOX,
    outboxGiveUpMs: env.JIT_OUTBOX_GIVE_UP_MINUTES * 60_000,
    serviceNow,
  }
}

/** The policies that cut sessions when the mode is on; with it off, the ids (which a stack may set anyway) are not used. */
function cutoffPoliciesOf(env: Env): string[] | undefined {
  if (env.JIT_SESSION_CUTOFF === 'off') return undefined
  if (!env.JIT_CUTOFF_POLICY_IDS)
    throw new ConfigError(
      'JIT_SESSION_CUTOFF=scp needs JIT_CUTOFF_POLICY_IDS: the ids of the service control policies it writes (p-…, comma-separated)',
    )
  const ids = env.JIT_CUTOFF_POLICY_IDS.split(',')
  if (new Set(ids).size !== ids.length) throw new ConfigError('JIT_CUTOFF_POLICY_IDS names a policy twice')
  return ids
}

/**
 * ServiceNow is optional: without a URL nothing is written to tickets or read from them. With one, exactly one
 * way to sign in: OAuth client credentials or a user's basic auth, the secret half either in the environment or
 * (Lambda) in Secrets Manager.
 */
function serviceNowSettings(env: Env): ServiceNowConfig | undefined {
  const names = [
    'JIT_SERVICENOW_CLIENT_ID',
    'JIT_SERVICENOW_CLIENT_SECRET',
    'JIT_SERVICENOW_USERNAME',
    'JIT_SERVICENOW_PASSWORD',
    'JIT_SERVICENOW_SECRET_ARN',
  ] as const
  if (!env.JIT_SERVICENOW_URL) {
    const stray = names.filter((name) => env[name] !== undefined)
    if (env.JIT_SERVICENOW_VERIFY || stray.length > 0)
      throw new ConfigError(
        `${env.JIT_SERVICENOW_VERIFY ? 'JIT_SERVICENOW_VERIFY' : stray.join(', ')} needs JIT_SERVICENOW_URL`,
      )
    return undefined
  }
  checkServiceUrl('JIT_SERVICENOW_URL', env.JIT_SERVICENOW_URL, true)
  const oauth = env.JIT_SERVICENOW_CLIENT_ID !== undefined
  const basic = env.JIT_SERVICENOW_USERNAME !== undefined
  if (oauth === basic)
    throw new ConfigError(
      'Set either JIT_SERVICENOW_CLIENT_ID (OAuth client credentials) or JIT_SERVICENOW_USERNAME (basic auth), not both',
    )
  const secret = oauth ? env.JIT_SERVICENOW_CLIENT_SECRET : env.JIT_SERVICENOW_PASSWORD
  const secretName = oauth ? 'JIT_SERVICENOW_CLIENT_SECRET' : 'JIT_SERVICENOW_PASSWORD'
  if ((secret === undefined) === (env.JIT_SERVICENOW_SECRET_ARN === undefined)) {
    throw new ConfigError(`Set either ${secretName} or JIT_SERVICENOW_SECRET_ARN, not both`)
  }
  const tables = env.JIT_SERVICENOW_TABLES
    ? Object.fromEntries(env.JIT_SERVICENOW_TABLES.split(',').map((pair) => pair.split('=') as [string, string]))
    : undefined
  return {
    url: env.JIT_SERVICENOW_URL,
    identity: oauth
      ? { kind: 'oauth', clientId: env.JIT_SERVICENOW_CLIENT_ID as string }
      : { kind: 'basic', username: env.JIT_SERVICENOW_USERNAME as string },
    secret,
    secretArn: env.JIT_SERVICENOW_SECRET_ARN,
    tables,
    verify: env.JIT_SERVICENOW_VERIFY
      ? {
          changeStates: env.JIT_SERVICENOW_CHANGE_STATES.split(','),
          incidentStates: env.JIT_SERVICENOW_INCIDENT_STATES.split(','),
          windowLeadMs: env.JIT_SERVICENOW_WINDOW_LEAD_MINUTES * 60_000,
          retryAfterSeconds: env.JIT_SERVICENOW_RETRY_AFTER_SECONDS,
        }
      : undefined,
  }
}

export interface ServiceNowConfig {
  url: string
  /** Who signs in; the secret half is `secret`, or read at start from `secretArn`. */
  identity: { kind: 'oauth'; clientId: string } | { kind: 'basic'; username: string }
  secret: string | undefined
  secretArn: string | undefined
  tables: Record<string, string> | undefined
  verify:
    | { changeStates: string[]; incidentStates: string[]; windowLeadMs: number; retryAfterSeconds: number }
    | undefined
}

/**
 * Whoever can answer for the JWKS URL chooses which tokens we accept: over plain http that is anyone on the path.
 * Loopback is allowed for tests and the sandbox, where there is no path.
 */
function checkJwksUrl(text: string): void {
  checkServiceUrl('JIT_JWKS_URL', text)
}

/** The same for any service we send credentials to or trust answers from (the JWKS, ServiceNow). */
function checkServiceUrl(name: string, text: string, baseOnly = false): void {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw new ConfigError(`${name} '${text}' is not a URL`)
  }
  // Credentials in a URL reach error messages (fetch refuses such a URL, quoting it) and from there the logs.
  if (url.username || url.password)
    throw new ConfigError(`${name} must not carry a user or password: give credentials in their own settings`)
  // A base URL that paths are appended to: a query or fragment there would swallow them.
  if (baseOnly && (url.search || url.hash))
    throw new ConfigError(`${name} must be the instance's base URL: no query or fragment`)
  if (url.protocol === 'https:') return
  // URL has already normalised the host: 127.1 and 0x7f.0.0.1 read as 127.0.0.1, [::1] keeps its brackets.
  const loopback =
    url.hostname === 'localhost' ||
    url.hostname === '[::1]' ||
    (isIPv4(url.hostname) && url.hostname.startsWith('127.'))
  if (url.protocol !== 'http:' || !loopback) {
    throw new ConfigError(
      `${name} must be https (http is accepted only for a loopback host: 127.0.0.0/8, ::1, localhost)`,
    )
  }
}

const checkEnv = compileCheck('environment', EnvSchema)

/** The settings, read from their text, with the defaults of those not set; or every bad setting, each named once. */
function parseEnv(source: NodeJS.ProcessEnv): Env {
  const env: Record<string, unknown> = {}
  for (const [name, schema] of Object.entries(EnvSchema.properties) as [string, TSchema & { type?: string }][]) {
    const text = source[name]
    if (text !== undefined) env[name] = fromText(text, schema.type)
  }
  const checked = checkEnv(env)
  if (checked.valid) return checked.value
  // The first problem of each setting: a union reports each of its branches, then the union.
  const problems = new Map<string, string>()
  for (const { path, message } of checked.problems) {
    const name = path.split('/')[1] ?? ''
    if (problems.has(name)) continue
    const schema = (EnvSchema.properties as Record<string, { anyOf?: { const: unknown }[] }>)[name]
    problems.set(
      name,
      schema?.anyOf && message !== 'is required'
        ? `${name} must be one of ${schema.anyOf.map((choice) => choice.const).join(', ')}`
        : `${name} ${message}`,
    )
  }
  throw new ConfigError([...problems.values()].join(', '))
}

/** Environment variables are text: numbers and booleans are read from their usual spelling, anything else is left for the check to refuse. */
function fromText(text: string, type: string | undefined): unknown {
  if ((type === 'integer' || type === 'number') && text.trim() !== '' && Number.isFinite(Number(text)))
    return Number(text)
  if (type === 'boolean' && (text === 'true' || text === 'false')) return text === 'true'
  return text
}

/** No policy, an unreadable one or an invalid one all stop the start: the service fails closed. */
export function loadPolicyFile(path: string): Policy {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (error) {
    throw new ConfigError(
      `JIT_POLICY_FILE '${path}' cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
    )
  }
  let document: unknown
  try {
    document = JSON.parse(text)
  } catch (error) {
    throw new ConfigError(`JIT_POLICY_FILE '${path}' is not valid JSON: ${(error as Error).message}`)
  }
  try {
    return parsePolicy(document)
  } catch (error) {
    throw new ConfigError(`JIT_POLICY_FILE '${path}': ${(error as Error).message}`)
  }
}

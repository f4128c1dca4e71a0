import { readFileSync } from 'node:fs'
import { isIPv4 } from 'node:net'
import { Type, type Static, type TSchema } from 'typebox'
import { Value } from 'typebox/value'
import { parsePolicy, type Policy } from './core/policy.ts'

/** An Organizations policy id. */
const POLICY_ID = 'p-[0-9a-zA-Z_]{8,128}'
/** Organizations attaches at most 5 service control policies to one root, OU or account. */
export const MAX_CUTOFF_POLICIES = 5

const EnvSchema = Type.Object({
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3000 }),
  HOST: Type.String({ minLength: 1, default: '127.0.0.1' }),
  LOG_LEVEL: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)), { default: 'info' }),
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
  // S3's rules for bucket names, in short: 3–63 of lower-case letters, digits, dots and hyphens.
  JIT_AUDIT_ANCHOR_BUCKET: Type.Optional(Type.String({ pattern: '^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$' })),
  JIT_INSTANCE_ARN: Type.Optional(Type.String({ pattern: '^arn:aws[a-z-]*:sso:::instance/' })),
  JIT_IDENTITY_STORE_ID: Type.Optional(Type.String({ pattern: '^d-[0-9a-z]+$' })),
  JIT_MAX_DURATION_MINUTES: Type.Integer({ minimum: 1, maximum: 43_200, default: 720 }),
  JIT_PROVISIONING_WAIT_MS: Type.Integer({ minimum: 0, maximum: 25_000, default: 5000 }),
  // API Gateway ends an integration after about 30 s (29 s by default): answer well before.
  JIT_REQUEST_DEADLINE_MS: Type.Integer({ minimum: 1000, maximum: 28_000, default: 25_000 }),
  JIT_CACHE_TTL_SECONDS: Type.Integer({ minimum: 0, maximum: 86_400, default: 300 }),
  JIT_SWEEP_BUDGET_SECONDS: Type.Integer({ minimum: 1, maximum: 900, default: 50 }),
  JIT_IDENTITY_CENTER_TPS: Type.Number({ exclusiveMinimum: 0, maximum: 20, default: 10 }),
  JIT_SANDBOX: Type.Boolean({ default: false }),
  // End live role sessions when a grant's access ends: 'scp' writes Deny statements into the owned service control policies.
  JIT_SESSION_CUTOFF: Type.Union([Type.Literal('off'), Type.Literal('scp')], { default: 'off' }),
  // The owned SCPs: 1 to 5 policy ids (Organizations' limit per target), comma-separated, no spaces.
  // The organization's management account: no SCP applies there, so its grants' sessions are never reported cut.
  JIT_MANAGEMENT_ACCOUNT_ID: Type.Optional(Type.String({ pattern: '^[0-9]{12}$' })),
  JIT_CUTOFF_POLICY_IDS: Type.Optional(Type.String({ pattern: `^${POLICY_ID}(,${POLICY_ID}){0,${MAX_CUTOFF_POLICIES - 1}}$` })),
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
  /** The Object Lock bucket where the sweep anchors the audit chain's head; unset, nothing is anchored. */
  auditAnchorBucket: string | undefined
  instanceArn: string | undefined
  identityStoreId: string | undefined
  maxDurationMinutes: number
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
  const keySources = [env.JIT_JWT_SECRET, env.JIT_JWT_SECRET_ARN, env.JIT_JWT_PUBLIC_KEY, env.JIT_JWKS_URL].filter(Boolean).length
  if (keySources !== 1) {
    throw new ConfigError('set exactly one of JIT_JWT_SECRET (HS256), JIT_JWT_SECRET_ARN (HS256, from Secrets Manager), JIT_JWT_PUBLIC_KEY (RS256/ES256 PEM) and JIT_JWKS_URL')
  }
  // Required even in the sandbox (which generates one): a key made up here would differ between instances.
  if ((env.JIT_CURSOR_KEY === undefined) === (env.JIT_CURSOR_KEY_ARN === undefined)) {
    throw new ConfigError('set exactly one of JIT_CURSOR_KEY (≥ 32 characters) and JIT_CURSOR_KEY_ARN (from Secrets Manager): page cursors are sealed with it, the same key on every instance')
  }
  if (env.JIT_PROVISIONING_WAIT_MS >= env.JIT_REQUEST_DEADLINE_MS) {
    throw new ConfigError('JIT_PROVISIONING_WAIT_MS must be less than JIT_REQUEST_DEADLINE_MS')
  }
  if (env.JIT_JWKS_URL && !env.JIT_JWT_ISSUER) throw new ConfigError('JIT_JWKS_URL needs JIT_JWT_ISSUER')
  if (env.JIT_JWKS_URL) checkJwksUrl(env.JIT_JWKS_URL)
  if (!env.JIT_SANDBOX && (!env.JIT_JWT_ISSUER || !env.JIT_JWT_AUDIENCE)) {
    throw new ConfigError('JIT_JWT_ISSUER and JIT_JWT_AUDIENCE are required outside the sandbox')
  }
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
    auditAnchorBucket: env.JIT_AUDIT_ANCHOR_BUCKET,
    instanceArn: env.JIT_INSTANCE_ARN,
    identityStoreId: env.JIT_IDENTITY_STORE_ID,
    maxDurationMinutes: env.JIT_MAX_DURATION_MINUTES,
    provisioningWaitMs: env.JIT_PROVISIONING_WAIT_MS,
    requestDeadlineMs: env.JIT_REQUEST_DEADLINE_MS,
    cacheTtlMs: env.JIT_CACHE_TTL_SECONDS * 1000,
    sweepBudgetMs: env.JIT_SWEEP_BUDGET_SECONDS * 1000,
    identityCenterTps: env.JIT_IDENTITY_CENTER_TPS,
    cutoffPolicyIds,
    managementAccountId: env.JIT_MANAGEMENT_ACCOUNT_ID,
    sandbox: env.JIT_SANDBOX,
  }
}

/** The policies that cut sessions when the mode is on; with it off, the ids (which a stack may set anyway) are not used. */
function cutoffPoliciesOf(env: Env): string[] | undefined {
  if (env.JIT_SESSION_CUTOFF === 'off') return undefined
  if (!env.JIT_CUTOFF_POLICY_IDS) throw new ConfigError('JIT_SESSION_CUTOFF=scp needs JIT_CUTOFF_POLICY_IDS: the ids of the service control policies it writes (p-…, comma-separated)')
  const ids = env.JIT_CUTOFF_POLICY_IDS.split(',')
  if (new Set(ids).size !== ids.length) throw new ConfigError('JIT_CUTOFF_POLICY_IDS names a policy twice')
  return ids
}

/**
 * Whoever can answer for the JWKS URL chooses which tokens we accept: over plain http that is anyone on the path.
 * Loopback is allowed for tests and the sandbox, where there is no path.
 */
function checkJwksUrl(text: string): void {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw new ConfigError(`JIT_JWKS_URL '${text}' is not a URL`)
  }
  if (url.protocol === 'https:') return
  // URL has already normalised the host: 127.1 and 0x7f.0.0.1 read as 127.0.0.1, [::1] keeps its brackets.
  const loopback = url.hostname === 'localhost' || url.hostname === '[::1]' || (isIPv4(url.hostname) && url.hostname.startsWith('127.'))
  if (url.protocol !== 'http:' || !loopback) {
    throw new ConfigError('JIT_JWKS_URL must be https (http is accepted only for a loopback host: 127.0.0.0/8, ::1, localhost)')
  }
}

/**
 * Checked with TypeBox's interpreter rather than a compiled Ajv validator: a cold start would spend longer
 * compiling the validator (and Ajv's meta-schema) than the one check it makes.
 */
function parseEnv(source: NodeJS.ProcessEnv): Env {
  const env: Record<string, unknown> = {}
  for (const [name, schema] of Object.entries(EnvSchema.properties) as [string, TSchema & { type?: string }][]) {
    const text = source[name]
    if (text !== undefined) env[name] = fromText(text, schema.type)
  }
  Value.Default(EnvSchema, env)
  if (Value.Check(EnvSchema, env)) return env as Env
  // Setting by setting, so that every bad one is named once (a union would report each of its branches).
  const problems: string[] = []
  for (const [name, schema] of Object.entries(EnvSchema.properties) as [string, TSchema & { anyOf?: { const: unknown }[] }][]) {
    const value = env[name]
    if (value === undefined) {
      if ((EnvSchema.required as string[]).includes(name)) problems.push(`${name} is required`)
    } else if (!Value.Check(schema, value)) {
      problems.push(schema.anyOf ? `${name} must be one of ${schema.anyOf.map((choice) => choice.const).join(', ')}` : `${name} ${Value.Errors(schema, value)[0]?.message ?? 'is invalid'}`)
    }
  }
  throw new ConfigError(problems.join(', '))
}

/** Environment variables are text: numbers and booleans are read from their usual spelling, anything else is left for the check to refuse. */
function fromText(text: string, type: string | undefined): unknown {
  if ((type === 'integer' || type === 'number') && text.trim() !== '' && Number.isFinite(Number(text))) return Number(text)
  if (type === 'boolean' && (text === 'true' || text === 'false')) return text === 'true'
  return text
}

/** No policy, an unreadable one or an invalid one all stop the start: the service fails closed. */
export function loadPolicyFile(path: string): Policy {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (error) {
    throw new ConfigError(`JIT_POLICY_FILE '${path}' cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`)
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

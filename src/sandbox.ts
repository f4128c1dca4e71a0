/**
 * `npm start`: the whole service on this machine with no AWS account. It starts moto_server on a free
 * loopback port (installing moto into a project-local Python environment if the machine lacks it), creates
 * the tables and the SNS topic, seeds a demo directory and policy, prints a ready-to-paste token, and serves.
 * With AWS_ENDPOINT_URL set it uses that server instead: it creates its tables and topic there if missing
 * and seeds nothing.
 */
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { S3Client } from '@aws-sdk/client-s3'
import { CreateTopicCommand } from '@aws-sdk/client-sns'
import { createSigner } from 'fast-jwt'
import { createAwsClients } from './adapters/aws.ts'
import { ensureTables } from './adapters/dynamodb/tables.ts'
import { resolveInstance } from './adapters/identity-center.ts'
import { loadConfig } from './config.ts'
import { ALL_SCOPES } from './http/auth.ts'
import { ensureAnchorBucket } from './sandbox/anchor-bucket.ts'
import { assertPortFree, STOP_DEADLINE_MS, stopWhenAskedOrOrphaned } from './sandbox/lifetime.ts'
import {
  findMotoPython,
  LOCAL_VENV,
  type MotoServer,
  MotoUnavailableError,
  type RefusedPython,
  SANDBOX_MOTO_SCRIPT,
  startMotoServer,
} from './sandbox/moto-server.ts'
import { type DemoOrganization, seedOrganization } from './sandbox/organization.ts'
import { DEMO_DIRECTORY, SANDBOX_POLICY, seedDirectory, WORKLOADS_RULE, withCurrentUnit } from './sandbox/seed.ts'
import { serve } from './server.ts'

const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const SANDBOX_DIR = join(PROJECT_ROOT, '.sandbox')
const SANDBOX_ISSUER = 'jit-access-sandbox'
const SANDBOX_AUDIENCE = 'jit-access'

export interface SandboxOptions {
  env?: NodeJS.ProcessEnv
  /** Where to print the welcome text. */
  print?: (line: string) => void
  /** Gives up starting (stopping whatever it started) when this is aborted: a stop asked for during start-up. */
  signal?: AbortSignal
  /** Where the sandbox keeps its own files (its policy); `.sandbox` in the project unless a test says otherwise. */
  sandboxDir?: string
}

/** The port and host the service will listen on, as far as they can be known before the configuration is loaded. */
function listenAddress(env: NodeJS.ProcessEnv): { host: string; port: number } | undefined {
  const port = Number(env.PORT ?? 3000)
  return Number.isInteger(port) && port > 0 && port <= 65535 ? { host: env.HOST || '127.0.0.1', port } : undefined
}

export async function startSandbox(options: SandboxOptions = {}) {
  const env = { ...(options.env ?? process.env) }
  const print = options.print ?? ((line: string) => process.stdout.write(`${line}\n`))
  let moto: MotoServer | undefined
  const ownServer = !env.AWS_ENDPOINT_URL
  const stillWanted = () => options.signal?.throwIfAborted()

  // A port in use is found before moto starts and is seeded (seconds), not after.
  const address = listenAddress(env)
  if (address) await assertPortFree(address.host, address.port)

  if (ownServer) {
    // moto as the Python that has it (the project's venv, the one moto_server was installed for, python3) runs
    // it, with the Identity Store patched as AWS behaves (SANDBOX_MOTO_SCRIPT).
    const refused: RefusedPython[] = []
    const python = findMotoPython(PROJECT_ROOT, (candidate) => refused.push(candidate)) ?? installMoto(print, refused)
    moto = await startMotoServer(python, 30_000, [SANDBOX_MOTO_SCRIPT]).catch((error: unknown) => {
      throw error instanceof MotoUnavailableError
        ? new MotoUnavailableError(
            `${error.message}\n${python} ${SANDBOX_MOTO_SCRIPT} needs moto 5 with its server extras: ` +
              `'${python} -m pip install "moto[server]>=5,<6"', or delete ${LOCAL_VENV} for npm start to make it again.`,
          )
        : error
    })
    env.AWS_ENDPOINT_URL = moto.endpoint
    env.AWS_ACCESS_KEY_ID ??= 'testing'
    env.AWS_SECRET_ACCESS_KEY ??= 'testing'
  }
  env.AWS_REGION ??= 'us-east-1'
  env.JIT_SANDBOX = 'true'
  // The token printed for trying the sandbox by hand lives 12 hours; a real deployment keeps the default hour.
  env.JIT_JWT_MAX_AGE_SECONDS ??= String(12 * 3600)
  process.env.AWS_ACCESS_KEY_ID ??= env.AWS_ACCESS_KEY_ID
  process.env.AWS_SECRET_ACCESS_KEY ??= env.AWS_SECRET_ACCESS_KEY

  try {
    stillWanted()
    if (!env.JIT_JWT_SECRET && !env.JIT_JWT_PUBLIC_KEY) {
      // A fresh secret every start: a token printed by an earlier sandbox never works against a later one.
      env.JIT_JWT_SECRET = randomBytes(32).toString('base64url')
      env.JIT_JWT_ISSUER ??= SANDBOX_ISSUER
      env.JIT_JWT_AUDIENCE ??= SANDBOX_AUDIENCE
    }
    if (!env.JIT_CURSOR_KEY && !env.JIT_CURSOR_KEY_ARN) {
      // One process, so a fresh key is shared by all it serves; cursors from an earlier sandbox are refused.
      env.JIT_CURSOR_KEY = randomBytes(32).toString('base64url')
    }
    // Only the sandbox's own policy file is ever rewritten (its OU rule, below); one named by JIT_POLICY_FILE never.
    let ownPolicyFile: string | undefined
    if (!env.JIT_POLICY_FILE) {
      const sandboxDir = options.sandboxDir ?? SANDBOX_DIR
      const policyFile = join(sandboxDir, 'policy.json')
      ownPolicyFile = policyFile
      if (!existsSync(policyFile)) {
        mkdirSync(sandboxDir, { recursive: true })
        writeFileSync(policyFile, `${JSON.stringify(SANDBOX_POLICY, null, 2)}\n`)
      }
      env.JIT_POLICY_FILE = policyFile
    }

    const clients = createAwsClients({ region: env.AWS_REGION, endpoint: env.AWS_ENDPOINT_URL })
    const instance = await resolveInstance(clients.ssoAdmin, {
      instanceArn: env.JIT_INSTANCE_ARN,
      identityStoreId: env.JIT_IDENTITY_STORE_ID,
    })
    env.JIT_INSTANCE_ARN = instance.instanceArn
    env.JIT_IDENTITY_STORE_ID = instance.identityStoreId
    const config = loadConfig(env)
    await ensureTables(clients.dynamo, config.tables)
    const topic = await clients.sns.send(new CreateTopicCommand({ Name: 'jit-access-alerts' }))
    env.JIT_SNS_TOPIC_ARN ??= topic.TopicArn
    // Anchored as in AWS, so that GET /audit/verify answers here as it does there.
    env.JIT_AUDIT_ANCHOR_BUCKET ??= 'jit-access-audit-anchors'
    await ensureAnchorBucket(
      new S3Client({ region: env.AWS_REGION, endpoint: env.AWS_ENDPOINT_URL, forcePathStyle: true }),
      env.JIT_AUDIT_ANCHOR_BUCKET,
    )
    stillWanted()
    let organization: DemoOrganization | undefined
    if (ownServer) {
      await seedDirectory(clients, instance, DEMO_DIRECTORY)
      // For policies that name OUs or account tags: moto picks the ids, printed below.
      organization = await seedOrganization(env.AWS_ENDPOINT_URL as string, env.AWS_REGION)
      if (ownPolicyFile) refreshUnitRule(ownPolicyFile, organization.units.workloads)
    }
    stillWanted()

    const finalConfig = loadConfig(env)
    // The sandbox stops itself (below, and the entry point's stopWhenAskedOrOrphaned): moto goes with the app.
    const app = await serve(finalConfig, { handleSignals: false })
    const stop = async () => {
      await app.close()
      await moto?.stop()
    }
    if (options.signal?.aborted) {
      await stop()
      stillWanted()
    }
    const address = app.server.address()
    const port = typeof address === 'object' && address ? address.port : finalConfig.port
    const baseUrl = `http://${finalConfig.host === '0.0.0.0' ? '127.0.0.1' : finalConfig.host}:${port}`
    const token = env.JIT_JWT_SECRET
      ? createSigner({
          key: env.JIT_JWT_SECRET,
          algorithm: 'HS256',
          expiresIn: 12 * 3600 * 1000,
          ...(finalConfig.jwt.issuer ? { iss: finalConfig.jwt.issuer } : {}),
          ...(finalConfig.jwt.audience ? { aud: finalConfig.jwt.audience } : {}),
        })({ sub: 'sandbox-admin', scope: ALL_SCOPES.join(' ') })
      : undefined

    print('')
    print(
      `jit-access sandbox is up ${ownServer ? `(moto_server at ${env.AWS_ENDPOINT_URL}, demo directory seeded)` : `(AWS endpoint ${env.AWS_ENDPOINT_URL})`}`,
    )
    print(`  base URL : ${baseUrl}`)
    print(`  API docs : ${baseUrl}/docs`)
    print(`  policy   : ${finalConfig.policyFile}`)
    if (organization) {
      const { units, accounts, rootId } = organization
      print(
        `  organization (ids change at every start): root ${rootId}; OU workloads ${units.workloads} > prod ${units.prod} > payments ${units.payments}; OU sandbox ${units.sandbox}`,
      )
      print(
        `    accounts: payments-prod ${accounts.paymentsProd} (environment=production), payments-batch ${accounts.paymentsBatch}, ` +
          `analytics-prod ${accounts.analyticsProd} (environment=production), sandbox-dev ${accounts.sandboxDev} (environment=development)`,
      )
      print(
        `    carol may take AdministratorAccess on sandbox-dev (rule carol-development-admin): try GET /eligibility?userName=carol`,
      )
      print(
        `    bob may take ReadOnlyAccess on any account under workloads (rule ${WORKLOADS_RULE.name}), not on sandbox-dev`,
      )
    }
    if (token) {
      print('  token (all scopes, valid 12 hours):')
      print(`  export TOKEN=${token}`)
      print(`  try: curl -s -H "Authorization: Bearer $TOKEN" ${baseUrl}/grants`)
    }
    print('  Ctrl-C (or SIGTERM to npm alone) stops the service and everything the sandbox started.')
    print('')
    return { app, baseUrl, token, moto, config: finalConfig, stop, organization }
  } catch (error) {
    await moto?.stop()
    throw error
  }
}

/**
 * No Python with moto 5 and its server extras on this machine (`refused`: the ones that lack them, and why):
 * install moto into a project-local venv (answering its Python), or say exactly what to install.
 */
function installMoto(print: (line: string) => void, refused: RefusedPython[] = []): string {
  const python = ['python3', 'python'].find(
    (candidate) => !spawnSync(candidate, ['--version'], { stdio: 'ignore' }).error,
  )
  if (!python) {
    throw new Error(
      'The sandbox needs moto_server (Python moto 5), and this machine has no Python. Install Python 3.9+ ' +
        "(e.g. 'apt-get install python3 python3-venv' or 'brew install python'), then run npm start again; " +
        'or run \'pip install "moto[server]>=5,<6"\' yourself, or point AWS_ENDPOINT_URL at a running AWS-compatible server.',
    )
  }
  const venv = join(PROJECT_ROOT, LOCAL_VENV)
  for (const { python: candidate, reason } of refused)
    print(`${candidate} cannot run the sandbox's moto_server, which needs moto 5 with its server extras: ${reason}`)
  print(`No Python with moto[server] 5 found: installing it into ${LOCAL_VENV} (one time)…`)
  const steps: [string, string[]][] = [
    [python, ['-m', 'venv', venv]],
    [join(venv, 'bin', 'pip'), ['install', '--quiet', 'moto[server]>=5,<6']],
  ]
  for (const [command, args] of steps) {
    const result = spawnSync(command, args, { stdio: 'inherit' })
    if (result.status !== 0) {
      throw new Error(
        `Could not install moto (${command} ${args.join(' ')} failed). Install it yourself with ` +
          `'pip install "moto[server]>=5,<6"' (on Debian/Ubuntu first 'apt-get install python3-venv'), then run npm start again.`,
      )
    }
  }
  return join(venv, 'bin', 'python')
}

/**
 * `npm start`: starts the sandbox and stops all of it (the service, then moto) on SIGTERM, SIGINT or SIGHUP, or
 * when the process that started it goes away, including while it is still starting.
 */
async function main(): Promise<void> {
  const starting = new AbortController()
  let sandbox: Awaited<ReturnType<typeof startSandbox>> | undefined
  // 0 for a stop that was asked for; 1 after a crash.
  let exitCode = 0
  stopWhenAskedOrOrphaned((reason, error) => {
    console.error(
      `jit-access sandbox: stopping (${reason}${error ? `: ${(error as Error)?.stack ?? String(error)}` : ''})`,
    )
    if (error) exitCode = 1
    // A stop that hangs (a request that never ends, a moto that ignores SIGTERM and SIGKILL) still ends the process.
    setTimeout(() => process.exit(1), STOP_DEADLINE_MS).unref()
    starting.abort()
    if (!sandbox) return // start-up gives up at its next step and stops what it started (below)
    sandbox.app.log.info({ reason }, 'shutting down')
    sandbox.stop().then(
      () => process.exit(exitCode),
      (failure: unknown) => {
        console.error(`jit-access sandbox: stopping failed: ${(failure as Error).message}`)
        process.exit(1)
      },
    )
  })
  try {
    sandbox = await startSandbox({ signal: starting.signal })
  } catch (error) {
    if (starting.signal.aborted) process.exit(exitCode)
    console.error(`npm start failed: ${(error as Error).message}`)
    process.exit(1)
  }
}

const isEntryPoint = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href
if (isEntryPoint) await main()

/**
 * Writes this start's workloads OU id into the sandbox policy's OU rule (moto's ids change at every start), so that
 * the rule keeps naming the demo OU; a policy file the user edited otherwise stays as it is, and one that cannot
 * be read is left for the service to refuse with its own message.
 */
function refreshUnitRule(policyFile: string, workloadsUnitId: string): void {
  let policy: unknown
  try {
    policy = JSON.parse(readFileSync(policyFile, 'utf8'))
  } catch {
    return
  }
  const refreshed = withCurrentUnit(policy, workloadsUnitId)
  if (refreshed) writeFileSync(policyFile, `${JSON.stringify(refreshed, null, 2)}\n`)
}

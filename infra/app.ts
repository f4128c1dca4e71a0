/**
 * The CDK app: `npm run synth` (or `cd infra && npx cdk deploy`). Settings come from CDK context (cdk.json
 * holds example values; override them with -c name=value or in cdk.context.json):
 * instanceArn, identityStoreId, jwtIssuer, jwtAudience, jwtPublicKeyFile | jwtSecretArn, policyFile,
 * and optionally permissionSetArns, accountIds (comma-separated), reservedConcurrency.
 */
import { cpSync, readFileSync, rmSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { App } from 'aws-cdk-lib'
import { loadPolicyFile } from '../src/config.ts'
import { buildAll } from './build.ts'
import { JitAccessStack } from './stack.ts'

const INFRA = dirname(fileURLToPath(import.meta.url))
const ROOT = resolve(INFRA, '..')

const app = new App()
const context = (name: string): string | undefined => app.node.tryGetContext(name)
const required = (name: string): string => {
  const value = context(name)
  if (!value) throw new Error(`Missing CDK context value '${name}' (cdk.json, or -c ${name}=…)`)
  return value
}
const list = (name: string) => context(name)?.split(',').map((item) => item.trim()).filter(Boolean)

// The function's code: the Lambda bundle, the docs page's files and the policy, which is checked here,
// so that a deployment with an invalid policy fails before it starts, not at the function's first start.
const codeDir = join(ROOT, 'dist', 'lambda-asset')
const policyFile = resolve(INFRA, required('policyFile'))
loadPolicyFile(policyFile)
await buildAll(codeDir)
for (const file of ['server.mjs', 'server.mjs.map']) rmSync(join(codeDir, file))
cpSync(policyFile, join(codeDir, 'policy.json'))

const publicKeyFile = context('jwtPublicKeyFile')
new JitAccessStack(app, context('stackName') ?? 'JitAccess', {
  codeDir,
  instanceArn: required('instanceArn'),
  identityStoreId: required('identityStoreId'),
  jwtIssuer: required('jwtIssuer'),
  jwtAudience: required('jwtAudience'),
  jwtPublicKey: publicKeyFile ? readFileSync(resolve(INFRA, publicKeyFile), 'utf8') : undefined,
  jwtSecretArn: context('jwtSecretArn'),
  permissionSetArns: list('permissionSetArns'),
  accountIds: list('accountIds'),
  reservedConcurrency: context('reservedConcurrency') ? Number(context('reservedConcurrency')) : undefined,
})
app.synth()

/**
 * The CDK app: `npm run synth`, or from infra/: `npx cdk synth | diff | deploy`. Settings come from CDK context
 * (infra/cdk.json holds example values; override them there, in cdk.context.json or with -c name=value):
 * see infra/context.ts and the README's "Deploying and running".
 */
import { cpSync, rmSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { App } from 'aws-cdk-lib'
import { loadPolicyFile } from '../src/config.ts'
import { needsOrganization } from '../src/core/policy.ts'
import { buildLambda } from './build.ts'
import { readDeploymentContext, refuseUnscopedGroupGrants } from './context.ts'
import { JitAccessStack, POLICY_FILE_IN_FUNCTION } from './stack.ts'

const INFRA = dirname(fileURLToPath(import.meta.url))
const ASSET_DIR = resolve(INFRA, '..', 'dist', 'lambda-asset')

const app = new App()
const deployment = readDeploymentContext((name) => app.node.tryGetContext(name), INFRA)

// The policy is checked here, so that a deployment with an invalid policy fails before it starts rather than
// at the function's first cold start; then it is shipped inside the function's code.
const policy = loadPolicyFile(deployment.policyFile)
refuseUnscopedGroupGrants(policy, deployment.stack)
rmSync(ASSET_DIR, { recursive: true, force: true })
await buildLambda(ASSET_DIR)
cpSync(deployment.policyFile, join(ASSET_DIR, POLICY_FILE_IN_FUNCTION))

// A policy that names OUs, the root or account tags needs the organization's read actions, and only such a policy gets them.
new JitAccessStack(app, deployment.stackName, {
  ...deployment.stack,
  codeDir: ASSET_DIR,
  readOrganization: policy.rules.some(needsOrganization),
})
app.synth()

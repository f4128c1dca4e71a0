import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import type { Policy } from '../src/core/policy.ts'
import type { JitAccessStackProps } from './stack.ts'

/** The CDK context values the app reads (cdk.json, cdk.context.json or -c name=value); README lists them. */
export interface DeploymentContext {
  /** The stack's settings, except the function's code. */
  stack: Omit<JitAccessStackProps, 'codeDir'>
  stackName: string
  /** The eligibility policy file, absolute; checked and shipped with the function by infra/app.ts. */
  policyFile: string
}

/**
 * Reads the deployment settings from CDK context. Values given with -c are strings, values in cdk.json may be
 * JSON arrays or numbers: both are accepted. Paths are relative to infra/. The stack checks the values.
 */
export function readDeploymentContext(get: (name: string) => unknown, baseDir: string): DeploymentContext {
  const text = (name: string): string | undefined => {
    const value = get(name)
    if (value === undefined || value === null || value === '') return undefined
    if (typeof value !== 'string' && typeof value !== 'number')
      throw new Error(`CDK context '${name}' must be a string`)
    return String(value).trim()
  }
  const required = (name: string): string => {
    const value = text(name)
    if (!value) throw new Error(`Missing CDK context value '${name}' (infra/cdk.json, or -c ${name}=…)`)
    return value
  }
  const list = (name: string): string[] | undefined => {
    const value = get(name)
    if (value === undefined || value === null || value === '') return undefined
    const items = Array.isArray(value) ? value.map(String) : String(value).split(',')
    return items.map((item) => item.trim()).filter(Boolean)
  }
  const requiredList = (name: string): string[] => {
    const value = list(name)
    if (!value?.length) throw new Error(`Missing CDK context value '${name}' (infra/cdk.json, or -c ${name}=…)`)
    return value
  }
  const number = (name: string): number | undefined => {
    const value = text(name)
    if (value === undefined) return undefined
    const parsed = Number(value)
    if (!Number.isFinite(parsed)) throw new Error(`CDK context '${name}' must be a number, not '${value}'`)
    return parsed
  }
  const publicKeyFile = text('jwtPublicKeyFile')

  return {
    stackName: text('stackName') ?? 'JitAccess',
    policyFile: resolve(baseDir, required('policyFile')),
    stack: {
      instanceArn: required('instanceArn'),
      identityStoreId: required('identityStoreId'),
      managementAccountId: text('managementAccountId'),
      jwtIssuer: required('jwtIssuer'),
      jwtAudience: required('jwtAudience'),
      jwtPublicKey: publicKeyFile ? readFileSync(resolve(baseDir, publicKeyFile), 'utf8') : undefined,
      jwtSecretArn: text('jwtSecretArn'),
      jwksUrl: text('jwksUrl'),
      permissionSetArns: requiredList('permissionSetArns'),
      accountIds: list('accountIds'),
      grantableGroupIds: list('grantableGroupIds'),
      reservedConcurrency: number('reservedConcurrency'),
      identityCenterTps: number('identityCenterTps'),
      serviceNow: text('serviceNowUrl')
        ? {
            url: text('serviceNowUrl') as string,
            clientId: text('serviceNowClientId'),
            username: text('serviceNowUsername'),
            secretArn: required('serviceNowSecretArn'),
            verify: text('serviceNowVerify') === 'true',
          }
        : undefined,
      sessionCutoff: list('sessionCutoffTargets')
        ? { targetIds: list('sessionCutoffTargets') as string[], policies: number('sessionCutoffPolicies') }
        : undefined,
    },
  }
}

/**
 * Group grants need the groups named (grantableGroupIds): the role may change no membership otherwise, so a policy
 * that grants groups without them would fail every group grant at run time. Refused at synth instead.
 */
export function refuseUnscopedGroupGrants(
  policy: Pick<Policy, 'rules'>,
  stack: Pick<DeploymentContext['stack'], 'grantableGroupIds'>,
): void {
  if (policy.rules.some((rule) => rule.grantableGroups?.length) && !stack.grantableGroupIds?.length) {
    throw new Error(
      'The policy grants groups (grantableGroups), but the context grantableGroupIds is not set: set it to the ids of those groups ' +
        '(the role may add members to, and remove them from, those groups only)',
    )
  }
}

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { App, Validations } from 'aws-cdk-lib'
import * as iam from 'aws-cdk-lib/aws-iam'
import { AwsSolutionsChecks } from 'cdk-nag'
import t from 'tap'
import { JitAccessStack, type JitAccessStackProps } from '../infra/stack.ts'

/*
 * cdk-nag's AwsSolutions rules over the synthesized stack. cdk-nag 3 is a CDK policy-validation plugin: in an
 * app, `Validations.of(app).addPlugins(new AwsSolutionsChecks(app))` makes synthesis fail on any finding; here
 * the same checks run through validateScope, so that a failure lists the findings. Findings the stack cannot fix
 * are acknowledged in infra/stack.ts, next to what they concern, with the reason.
 */

const codeDir = mkdtempSync(join(tmpdir(), 'jit-nag-asset-'))
t.teardown(() => rmSync(codeDir, { recursive: true, force: true }))
writeFileSync(join(codeDir, 'lambda.mjs'), 'export const handler = () => {}')

const INSTANCE_ID = 'ssoins-1111111111111111'
/** Accounts and the management account named: the narrowest policy the stack can write. */
const named: JitAccessStackProps = {
  env: { account: '333333333333', region: 'us-east-1' },
  codeDir,
  instanceArn: `arn:aws:sso:::instance/${INSTANCE_ID}`,
  identityStoreId: 'd-1111111111',
  managementAccountId: '111111111111',
  jwtIssuer: 'https://example.service-now.com',
  jwtAudience: 'jit-access',
  jwtSecretArn: 'arn:aws:secretsmanager:us-east-1:111111111111:secret:jit-access-jwt-AbCdEf',
  accountIds: ['222222222222'],
  permissionSetArns: [`arn:aws:sso:::permissionSet/${INSTANCE_ID}/ps-2222222222222222`],
  // The service control policies that cut sessions, and the role's permission to rewrite them, are nagged too.
  sessionCutoff: { targetIds: ['r-ab12'], policies: 2 },
  // A policy naming OUs or tags: the role reads the organization, which has no resource ARN known at deploy time.
  readOrganization: true,
}
/** Every optional setting left out: the widest policy the stack can write. */
const open: JitAccessStackProps = {
  ...named,
  env: undefined,
  managementAccountId: undefined,
  accountIds: undefined,
  sessionCutoff: undefined,
  jwtSecretArn: undefined,
  jwksUrl: 'https://idp.example.com/.well-known/jwks.json',
}

/** What every deployment acknowledges; a new acknowledgement must be added here, where review sees it. */
const ALWAYS_ACKNOWLEDGED = [
  'AwsSolutions-APIG4',
  'AwsSolutions-SMG4',
  'AwsSolutions-S1',
  'AwsSolutions-IAM5[Resource::<AuditAnchors1A79D4A3.Arn>/anchors/*]',
  `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:sso:::permissionSet/${INSTANCE_ID}/*]`,
  'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:identitystore:::user/*]',
  'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:identitystore:::group/*]',
  'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:identitystore:::membership/*]',
]
/** The organization's accounts, OUs and root (a policy naming OUs or tags), in the management account's ARNs when it is named. */
const organizationAcknowledged = (managementAccount: string) =>
  ['account/o-*/*', 'ou/o-*/ou-*', 'root/o-*/r-*'].map(
    (kind) => `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:organizations::${managementAccount}:${kind}]`,
  )
/** Only when the deployment leaves the accounts and the management account open. */
const OPEN_ONLY_ACKNOWLEDGED = [
  'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:sso:::account/*]',
  'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:identitystore::*:identitystore/d-1111111111]',
]

function synthesize(props: JitAccessStackProps): { app: App; stack: JitAccessStack } {
  const app = new App()
  const stack = new JitAccessStack(app, 'Nagged', props)
  // What `cdk synth` does before validation: aspects run, lazy values settle.
  app.synth()
  return { app, stack }
}

function findings(app: App): string[] {
  const report = new AwsSolutionsChecks(app, { verbose: true }).validateScope(app)
  return report.violations.flatMap((violation) =>
    violation.violatingResources.map(
      (resource) =>
        `${violation.severity} ${violation.ruleName} at ${resource.constructPath}: ${violation.description}`,
    ),
  )
}

function acknowledgements(stack: JitAccessStack): Map<string, string> {
  const found = new Map<string, string>()
  for (const construct of stack.node.findAll()) {
    for (const entry of construct.node.metadata) {
      if (entry.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue
      for (const [id, reason] of Object.entries(entry.data as Record<string, string>))
        found.set(id.replace(/^annotation::/i, ''), reason)
    }
  }
  return found
}

for (const [name, props, expected] of [
  [
    'accounts and management account named',
    named,
    [...ALWAYS_ACKNOWLEDGED, ...organizationAcknowledged('111111111111')],
  ],
  [
    'accounts and management account left open',
    open,
    [...ALWAYS_ACKNOWLEDGED, ...OPEN_ONLY_ACKNOWLEDGED, ...organizationAcknowledged('*')],
  ],
] as const) {
  t.test(`${name}: cdk-nag AwsSolutions reports no error and no warning`, async (t) => {
    const { app } = synthesize(props)
    t.same(findings(app), [], 'fix the finding, or acknowledge it in infra/stack.ts with a specific reason')
  })

  t.test(`${name}: every acknowledged finding is one the review knows, with a reason`, async (t) => {
    const { stack } = synthesize(props)
    const acknowledged = acknowledgements(stack)
    t.same([...acknowledged.keys()].sort(), [...expected].sort())
    for (const [id, reason] of acknowledged) t.ok(reason.length >= 80, `${id}: the reason says why, not only that`)
  })
}

t.test('the checks are not vacuous: a wildcard nobody explained is a finding', async (t) => {
  const app = new App()
  const stack = new JitAccessStack(app, 'Nagged', named)
  const role = stack.node.findChild('FunctionRole') as iam.Role
  role.addToPolicy(
    new iam.PolicyStatement({
      actions: ['dynamodb:GetItem'],
      resources: ['arn:aws:dynamodb:us-east-1:333333333333:table/*'],
    }),
  )
  app.synth()
  const unexplained =
    /^error AwsSolutions-IAM5\[Resource::arn:aws:dynamodb:us-east-1:333333333333:table\/\*\] at Nagged\/FunctionRole\//
  t.ok(findings(app).some((finding) => unexplained.test(finding)))
})

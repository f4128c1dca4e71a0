import { runSimulation } from '@cloud-copilot/iam-simulate'
import type { PolicyDocument } from '../../src/core/cutoff-policy.ts'

/** A role session an Identity Center user obtained through a permission set's role in an account. */
export interface RoleSession {
  userId: string
  accountId: string
  permissionSet: string
  issuedAt: Date
  /** Identity Center puts newer roles under a region path: `aws-reserved/sso.amazonaws.com/<region>/`. */
  regionPath?: string
}

const FULL_ACCESS: PolicyDocument = {
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }],
}

/**
 * What AWS would decide for a request by this session, judged by an IAM policy simulator that knows nothing of
 * our generator (@cloud-copilot/iam-simulate): the permission set allows everything, the organization's root
 * has FullAWSAccess and the given service control policies attached.
 */
export async function decide(scps: PolicyDocument[], session: RoleSession): Promise<string> {
  const path = `aws-reserved/sso.amazonaws.com/${session.regionPath ? `${session.regionPath}/` : ''}`
  const roleName = `AWSReservedSSO_${session.permissionSet}_0a1b2c3d4e5f6789`
  const result = await runSimulation(
    {
      identityPolicies: [{ name: session.permissionSet, policy: FULL_ACCESS }],
      serviceControlPolicies: [
        {
          orgIdentifier: 'r-root',
          policies: [
            { name: 'FullAWSAccess', policy: FULL_ACCESS },
            ...scps.map((policy, index) => ({ name: `jit-access-session-cutoff-${index + 1}`, policy })),
          ],
        },
      ],
      resourceControlPolicies: [],
      request: {
        action: 's3:ListAllMyBuckets',
        principal: `arn:aws:sts::${session.accountId}:assumed-role/${roleName}/someone`,
        resource: { accountId: session.accountId, resource: '*' },
        contextVariables: {
          'aws:PrincipalArn': `arn:aws:iam::${session.accountId}:role/${path}${roleName}`,
          'aws:PrincipalAccount': session.accountId,
          'identitystore:UserId': session.userId,
          'aws:TokenIssueTime': session.issuedAt.toISOString(),
        },
      },
    } as Parameters<typeof runSimulation>[0],
    {},
  )
  if (result.resultType === 'error')
    throw new Error(`the simulator refused the request: ${JSON.stringify(result.errors)}`)
  return result.overallResult
}

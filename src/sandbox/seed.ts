import { CreateGroupCommand, CreateGroupMembershipCommand, CreateUserCommand } from '@aws-sdk/client-identitystore'
import { CreateAccountAssignmentCommand, CreatePermissionSetCommand } from '@aws-sdk/client-sso-admin'
import type { AwsClients } from '../adapters/aws.ts'
import type { PolicyDocument } from '../core/policy.ts'

export interface DirectorySpec {
  users: string[]
  groups: Record<string, string[]>
  /** Permission set name → session duration (ISO 8601). */
  permissionSets: Record<string, string>
  /** Permanent assignments that exist before jit-access is used. */
  permanentAssignments?: { userName: string; accountId: string; permissionSet: string }[]
}

export interface SeededDirectory {
  userIds: Record<string, string>
  permissionSetArns: Record<string, string>
}

export const DEMO_ACCOUNTS = { production: '111111111111', staging: '222222222222' }

export const DEMO_DIRECTORY: DirectorySpec = {
  users: ['alice', 'bob', 'carol'],
  // prod-breakglass is granted by group grants (SANDBOX_POLICY); carol is a permanent member, which no grant removes.
  groups: { oncall: ['alice', 'bob'], 'prod-breakglass': ['carol'] },
  permissionSets: { AdministratorAccess: 'PT1H', ReadOnlyAccess: 'PT8H' },
  permanentAssignments: [{ userName: 'carol', accountId: DEMO_ACCOUNTS.staging, permissionSet: 'ReadOnlyAccess' }],
}

export const DEMO_POLICY: PolicyDocument = {
  rules: [
    {
      name: 'oncall-incident-access',
      groups: ['oncall'],
      accounts: [DEMO_ACCOUNTS.production, DEMO_ACCOUNTS.staging],
      permissionSets: ['AdministratorAccess', 'ReadOnlyAccess'],
      maxDurationMinutes: 240,
      ticketPattern: '(CHG|INC)[0-9]{7}',
    },
    {
      name: 'carol-read-only',
      users: ['carol'],
      accounts: ['*'],
      permissionSets: ['ReadOnlyAccess'],
      maxDurationMinutes: 60,
    },
  ],
}

/** A rule of group grants: the on-call group may join prod-breakglass for up to two hours, with a ticket. */
export const BREAKGLASS_RULE: PolicyDocument['rules'][number] = {
  name: 'oncall-breakglass',
  groups: ['oncall'],
  grantableGroups: ['prod-breakglass'],
  maxDurationMinutes: 120,
  ticketPattern: '(CHG|INC)[0-9]{7}',
}

/**
 * The sandbox rule that names an OU: bob may take ReadOnlyAccess on any account nested under the demo
 * organization's workloads OU. moto picks new OU ids at every start, so the sandbox writes the current id into
 * this rule of its own policy file each time (see withCurrentUnit); until then it names an OU that does not exist.
 */
export const WORKLOADS_RULE: PolicyDocument['rules'][number] = {
  name: 'bob-workloads-read-only',
  users: ['bob'],
  accounts: ['ou-0000-00000000'],
  permissionSets: ['ReadOnlyAccess'],
  maxDurationMinutes: 60,
}

/**
 * The policy with the sandbox's OU rule naming the workloads OU moto created this time; undefined when it has no
 * such rule naming a single OU (a policy edited otherwise is left as it is).
 */
export function withCurrentUnit(policy: unknown, workloadsUnitId: string): PolicyDocument | undefined {
  // The file is the user's to edit: anything but the shape expected is left for the service to refuse, as it is.
  const rules: unknown = (policy as { rules?: unknown } | null)?.rules
  if (!Array.isArray(rules)) return undefined
  const index = rules.findIndex((rule: unknown) => (rule as { name?: unknown } | null)?.name === WORKLOADS_RULE.name)
  const rule = rules[index] as { accounts?: unknown } | undefined
  const onlyEntry = Array.isArray(rule?.accounts) && rule.accounts.length === 1 ? rule.accounts[0] : undefined
  if (!rule || typeof onlyEntry !== 'string' || !onlyEntry.startsWith('ou-') || onlyEntry === workloadsUnitId)
    return undefined
  const refreshed = [...rules]
  refreshed[index] = { ...rule, accounts: [workloadsUnitId] }
  return { ...(policy as PolicyDocument), rules: refreshed as PolicyDocument['rules'] }
}

/**
 * What `npm start` writes as its policy: the demo policy; a rule of group grants (alice or bob may join
 * prod-breakglass); a rule naming the demo organization's workloads OU (WORKLOADS_RULE); and a rule for the
 * demo organization by tag: carol may take AdministratorAccess for an hour on any account of the organization
 * tagged environment=development (the sandbox prints which).
 */
export const SANDBOX_POLICY: PolicyDocument = {
  rules: [
    ...DEMO_POLICY.rules,
    BREAKGLASS_RULE,
    WORKLOADS_RULE,
    {
      name: 'carol-development-admin',
      users: ['carol'],
      accounts: ['*'],
      accountTags: { environment: 'development' },
      permissionSets: ['AdministratorAccess'],
      maxDurationMinutes: 60,
    },
  ],
}

/** Creates users, groups, permission sets and permanent assignments in an Identity Center (moto's, locally). */
export async function seedDirectory(
  clients: AwsClients,
  instance: { instanceArn: string; identityStoreId: string },
  spec: DirectorySpec,
): Promise<SeededDirectory> {
  const userIds: Record<string, string> = {}
  for (const userName of spec.users) {
    const created = await clients.identityStore.send(
      new CreateUserCommand({
        IdentityStoreId: instance.identityStoreId,
        UserName: userName,
        DisplayName: userName,
        Name: { GivenName: userName, FamilyName: 'Example' },
        Emails: [{ Value: `${userName}@example.com`, Primary: true }],
      }),
    )
    userIds[userName] = created.UserId as string
  }
  for (const [displayName, members] of Object.entries(spec.groups)) {
    const group = await clients.identityStore.send(
      new CreateGroupCommand({ IdentityStoreId: instance.identityStoreId, DisplayName: displayName }),
    )
    for (const member of members) {
      await clients.identityStore.send(
        new CreateGroupMembershipCommand({
          IdentityStoreId: instance.identityStoreId,
          GroupId: group.GroupId,
          MemberId: { UserId: userIds[member] as string },
        }),
      )
    }
  }
  const permissionSetArns: Record<string, string> = {}
  for (const [name, sessionDuration] of Object.entries(spec.permissionSets)) {
    const created = await clients.ssoAdmin.send(
      new CreatePermissionSetCommand({
        InstanceArn: instance.instanceArn,
        Name: name,
        SessionDuration: sessionDuration,
      }),
    )
    permissionSetArns[name] = created.PermissionSet?.PermissionSetArn as string
  }
  for (const assignment of spec.permanentAssignments ?? []) {
    await clients.ssoAdmin.send(
      new CreateAccountAssignmentCommand({
        InstanceArn: instance.instanceArn,
        TargetId: assignment.accountId,
        TargetType: 'AWS_ACCOUNT',
        PermissionSetArn: permissionSetArns[assignment.permissionSet],
        PrincipalType: 'USER',
        PrincipalId: userIds[assignment.userName],
      }),
    )
  }
  return { userIds, permissionSetArns }
}

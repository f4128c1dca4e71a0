import type { FastifyInstance } from 'fastify'
import { bearer } from './tokens.ts'

export interface Universe {
  users: string[]
  accounts: string[]
  permissionSets: string[]
  /** Assignments that existed before jit-access, as `user|account|permissionSet`. */
  permanent: string[]
}

interface GrantView {
  id: string
  status: string
  userName: string
  accountId: string
  permissionSet: string
}

/**
 * Checks the safety invariants against Identity Center's own state (moto's), not against our records:
 * no access without an active grant or a permanent assignment (no orphans), no duplicate assignments, every
 * active grant's access present, no grant left half-way, and every grant's fate in the audit log.
 */
export async function checkInvariants(
  app: FastifyInstance,
  universe: Universe,
  countAssignments: (user: string, account: string, permissionSet: string) => Promise<number>,
): Promise<{ violations: string[]; grants: GrantView[]; assignments: number }> {
  const violations: string[] = []
  const grants = await allGrants(app)
  let assignments = 0
  for (const user of universe.users) {
    for (const account of universe.accounts) {
      for (const permissionSet of universe.permissionSets) {
        const key = `${user}|${account}|${permissionSet}`
        const count = await countAssignments(user, account, permissionSet)
        assignments += count
        const active = grants.filter(
          (g) => g.status === 'active' && `${g.userName}|${g.accountId}|${g.permissionSet}` === key,
        )
        const permanent = universe.permanent.includes(key)
        if (count > 1) violations.push(`duplicate: ${count} assignments for ${key}`)
        if (count > 0 && active.length === 0 && !permanent)
          violations.push(`orphan: ${key} has access but no active grant`)
        if (count === 0 && (active.length > 0 || permanent))
          violations.push(`missing: ${key} lost access it should have`)
      }
    }
  }
  for (const grant of grants) {
    if (grant.status === 'provisioning' || grant.status === 'revoking')
      violations.push(`half-way: grant ${grant.id} is ${grant.status}`)
    const events = (
      await app.inject({ method: 'GET', url: `/audit?grantId=${grant.id}&limit=100`, headers: bearer() })
    ).json().items as { action: string }[]
    const actions = new Set(events.map((e) => e.action))
    const fate = {
      active: 'grant.activated',
      expired: 'grant.expired',
      revoked: 'grant.revoked',
      failed: 'grant.failed',
    }[grant.status]
    if (!actions.has('grant.requested')) violations.push(`unaudited: grant ${grant.id} has no grant.requested`)
    if (fate && !actions.has(fate)) violations.push(`unaudited: grant ${grant.id} is ${grant.status} without ${fate}`)
  }
  return { violations, grants, assignments }
}

async function allGrants(app: FastifyInstance): Promise<GrantView[]> {
  const grants: GrantView[] = []
  let cursor: string | null = null
  do {
    const page: { items: GrantView[]; nextCursor: string | null } = (
      await app.inject({
        method: 'GET',
        url: `/grants?limit=100${cursor ? `&cursor=${cursor}` : ''}`,
        headers: bearer(),
      })
    ).json()
    grants.push(...page.items)
    cursor = page.nextCursor
  } while (cursor)
  return grants
}

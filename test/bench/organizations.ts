/**
 * Organizations calls per grant decision for a rule naming an OU, over the counting proxy: the first grant on an
 * account (cold: its ancestors and status are looked up) and grants on accounts already looked up (warm: answered
 * from the cache for JIT_CACHE_TTL_SECONDS; the goal is 0). Part of `npm run bench`; alone:
 * `node test/bench/organizations.ts`.
 */
import type { MotoServer } from '../../src/sandbox/moto-server.ts'
import { build, grantBody } from '../helpers/app.ts'
import { startStrictMoto } from '../helpers/moto.ts'
import { bearer } from '../helpers/tokens.ts'

const ORGANIZATIONS_READS = [
  'ListParents',
  'ListChildren',
  'ListAccountsForParent',
  'DescribeAccount',
  'ListTagsForResource',
]

export interface OrganizationCalls {
  /** Organizations calls of the first grant on each of two accounts (cold caches), on average. */
  perColdGrant: number
  /** Organizations calls per grant on accounts already looked up (warm caches). */
  perWarmGrant: number
  warmGrants: number
}

export async function measureOrganizationCalls(moto: MotoServer): Promise<OrganizationCalls> {
  const cleanups: (() => unknown)[] = []
  try {
    const service = await build({ teardown: (fn) => void cleanups.unshift(fn) }, moto, {
      proxy: true,
      organization: true,
      policy: (organization) => ({
        rules: [
          {
            name: 'bench-workloads',
            users: ['alice', 'bob', 'carol'],
            accounts: [organization.units.workloads],
            permissionSets: ['AdministratorAccess', 'ReadOnlyAccess'],
            maxDurationMinutes: 240,
          },
        ],
      }),
    })
    const { app, proxy, organization } = service
    const { analyticsProd, paymentsProd } = organization!.accounts
    const reads = () => ORGANIZATIONS_READS.reduce((sum, op) => sum + (proxy?.calls[op] ?? 0), 0)
    const grant = async (userName: string, accountId: string, permissionSet: string) => {
      const response = await app.inject({
        method: 'POST',
        url: '/grants',
        headers: bearer(),
        payload: grantBody({ userName, accountId, permissionSet }),
      })
      if (response.statusCode !== 201) throw new Error(`bench grant answered ${response.statusCode}: ${response.body}`)
    }

    let before = reads()
    await grant('alice', analyticsProd, 'AdministratorAccess')
    await grant('alice', paymentsProd, 'AdministratorAccess')
    const cold = reads() - before
    // Every other user and permission set on the same two accounts: new grants, known accounts.
    const warm: [string, string, string][] = []
    for (const userName of ['alice', 'bob', 'carol']) {
      for (const accountId of [analyticsProd, paymentsProd]) {
        for (const permissionSet of ['AdministratorAccess', 'ReadOnlyAccess']) {
          if (userName === 'alice' && permissionSet === 'AdministratorAccess') continue
          warm.push([userName, accountId, permissionSet])
        }
      }
    }
    before = reads()
    for (const [userName, accountId, permissionSet] of warm) await grant(userName, accountId, permissionSet)
    return { perColdGrant: cold / 2, perWarmGrant: (reads() - before) / warm.length, warmGrants: warm.length }
  } finally {
    for (const fn of cleanups) await fn()
  }
}

export function describeOrganizationCalls(calls: OrganizationCalls): string {
  return `Organizations calls per grant, rule naming an OU: ${calls.perColdGrant} cold (first grant on an account), ${calls.perWarmGrant} warm (${calls.warmGrants} grants on accounts already looked up)`
}

if (import.meta.main) {
  process.env.AWS_ACCESS_KEY_ID ??= 'testing'
  process.env.AWS_SECRET_ACCESS_KEY ??= 'testing'
  const moto = await startStrictMoto()
  try {
    console.log(describeOrganizationCalls(await measureOrganizationCalls(moto)))
  } finally {
    await moto.stop()
  }
}

/**
 * Organizations calls per ended grant with JIT_SESSION_CUTOFF=scp, over the counting proxy: grants ended one at
 * a time by DELETE (each writes its own cut-off), and grants expiring together in one sweep (one write for them
 * all). Part of `npm run bench`; alone: `node test/bench/cutoff.ts [--grants N] [--policies P]`.
 */
import type { MotoServer } from '../../src/sandbox/moto-server.ts'
import { build, grantBody } from '../helpers/app.ts'
import { startStrictMoto } from '../helpers/moto.ts'
import { bearer } from '../helpers/tokens.ts'

const ORGANIZATIONS_OPERATIONS = ['DescribePolicy', 'UpdatePolicy']

export interface CutoffCalls {
  grants: number
  policies: number
  /** Organizations calls per grant ended by DELETE, and per grant ended by one sweep. */
  perDeletedGrant: number
  perSweptGrant: number
}

export async function measureCutoffCalls(moto: MotoServer, grants: number, policies: number): Promise<CutoffCalls> {
  const cleanups: (() => unknown)[] = []
  try {
    const policy = {
      rules: [
        {
          name: 'bench',
          groups: ['oncall'],
          accounts: ['*'],
          permissionSets: ['AdministratorAccess'],
          maxDurationMinutes: 240,
        },
      ],
    }
    const service = await build({ teardown: (fn) => void cleanups.unshift(fn) }, moto, {
      proxy: true,
      sessionCutoff: { policies },
      policy,
    })
    const { app, clock, proxy } = service
    const organizationsCalls = () => ORGANIZATIONS_OPERATIONS.reduce((sum, op) => sum + (proxy?.calls[op] ?? 0), 0)
    // One account a grant, so that every ending removes an assignment and cuts.
    const grant = async (n: number, durationMinutes: number) => {
      const response = await app.inject({
        method: 'POST',
        url: '/grants',
        headers: bearer(),
        payload: grantBody({ accountId: String(500000000000 + n), durationMinutes }),
      })
      if (response.statusCode !== 201) throw new Error(`bench grant answered ${response.statusCode}: ${response.body}`)
      return response.json().id as string
    }

    const deleted: string[] = []
    for (let n = 0; n < grants; n++) deleted.push(await grant(n, 240))
    let before = organizationsCalls()
    for (const id of deleted) {
      const ended = await app.inject({ method: 'DELETE', url: `/grants/${id}`, headers: bearer() })
      if (ended.json().sessionsCutAt === null) throw new Error(`bench ending did not cut: ${ended.body}`)
    }
    const perDeletedGrant = (organizationsCalls() - before) / grants

    for (let n = 0; n < grants; n++) await grant(grants + n, 30)
    clock.advanceMinutes(31)
    before = organizationsCalls()
    const swept = (await app.inject({ method: 'POST', url: '/revocations', headers: bearer() })).json()
    if (swept.revoked !== grants) throw new Error(`bench sweep ended ${swept.revoked} of ${grants}`)
    const perSweptGrant = (organizationsCalls() - before) / grants
    return { grants, policies, perDeletedGrant, perSweptGrant }
  } finally {
    for (const fn of cleanups) await fn()
  }
}

export function describeCutoffCalls(calls: CutoffCalls): string {
  return (
    `Organizations calls per ended grant (${calls.policies} owned policies, ${calls.grants} grants): ` +
    `${calls.perDeletedGrant.toFixed(2)} ended one by one (DELETE), ${calls.perSweptGrant.toFixed(2)} ended together by one sweep`
  )
}

if (import.meta.main) {
  const argument = (name: string, fallback: number) =>
    process.argv.includes(name) ? Number(process.argv[process.argv.indexOf(name) + 1]) || fallback : fallback
  process.env.AWS_ACCESS_KEY_ID ??= 'testing'
  process.env.AWS_SECRET_ACCESS_KEY ??= 'testing'
  const moto = await startStrictMoto()
  try {
    console.log(
      describeCutoffCalls(await measureCutoffCalls(moto, argument('--grants', 12), argument('--policies', 2))),
    )
  } finally {
    await moto.stop()
  }
}

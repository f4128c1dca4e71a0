import { DeleteAccountAssignmentCommand } from '@aws-sdk/client-sso-admin'
import t from 'tap'
import { build, grantBody, PROD, STAGING } from './helpers/app.ts'
import { startMoto } from './helpers/moto.ts'
import { bearer } from './helpers/tokens.ts'

const moto = await startMoto(t)

t.test(
  'an assignment removed outside jit-access is found by the sweep, audited, alerted, and its grants ended',
  async (t) => {
    const { app, clock, clients, instance, seeded, hasAssignment } = await build(t, moto)
    const grant = (
      await app.inject({
        method: 'POST',
        url: '/grants',
        headers: bearer(),
        payload: grantBody({ durationMinutes: 120 }),
      })
    ).json()
    // An administrator removes the access by hand, in the Identity Center console.
    await clients.ssoAdmin.send(
      new DeleteAccountAssignmentCommand({
        InstanceArn: instance.instanceArn,
        TargetId: PROD,
        TargetType: 'AWS_ACCOUNT',
        PermissionSetArn: seeded.permissionSetArns.AdministratorAccess,
        PrincipalType: 'USER',
        PrincipalId: seeded.userIds.alice,
      }),
    )

    const beforeCheck = (await app.inject({ method: 'POST', url: '/revocations', headers: bearer() })).json()
    t.match(beforeCheck, { checked: 0, drifted: 0 }, 'assignments are not checked on every sweep')

    clock.advanceMinutes(6)
    const sweep = (await app.inject({ method: 'POST', url: '/revocations', headers: bearer() })).json()

    t.match(sweep, { checked: 1, drifted: 1, failed: 0 })
    t.notOk(await hasAssignment('alice', PROD, 'AdministratorAccess'), 'the access is not restored')
    const after = (await app.inject({ method: 'GET', url: `/grants/${grant.id}`, headers: bearer() })).json()
    t.match(after, { status: 'revoked', endedBy: 'system:sweep' })
    const story = (await app.inject({ method: 'GET', url: `/audit?grantId=${grant.id}`, headers: bearer() })).json()
    t.same(story.items.map((e: { action: string }) => e.action).slice(0, 3), [
      'grant.revoked',
      'grant.revoke_requested',
      'grant.drift_detected',
    ])
  },
)

t.test('an assignment still in place passes its check, and is checked again later', async (t) => {
  const { app, clock, hasAssignment } = await build(t, moto)
  const grant = (
    await app.inject({
      method: 'POST',
      url: '/grants',
      headers: bearer(),
      payload: grantBody({ durationMinutes: 120 }),
    })
  ).json()

  clock.advanceMinutes(6)
  const first = (await app.inject({ method: 'POST', url: '/revocations', headers: bearer() })).json()
  const right = (await app.inject({ method: 'POST', url: '/revocations', headers: bearer() })).json()
  clock.advanceMinutes(6)
  const later = (await app.inject({ method: 'POST', url: '/revocations', headers: bearer() })).json()

  t.match(first, { checked: 1, drifted: 0 })
  t.match(right, { checked: 0 }, 'not due again straight away')
  t.match(later, { checked: 1, drifted: 0 })
  t.ok(await hasAssignment('alice', PROD, 'AdministratorAccess'))
  t.equal((await app.inject({ method: 'GET', url: `/grants/${grant.id}`, headers: bearer() })).json().status, 'active')
})

t.test('a permanent assignment removed while a grant relied on it is drift too', async (t) => {
  const { app, clock, clients, instance, seeded } = await build(t, moto)
  const grant = (
    await app.inject({
      method: 'POST',
      url: '/grants',
      headers: bearer(),
      payload: grantBody({
        userName: 'carol',
        accountId: STAGING,
        permissionSet: 'ReadOnlyAccess',
        ticketId: 'INC0000001',
      }),
    })
  ).json()
  t.equal(grant.coveredBy, 'pre-existing')
  await clients.ssoAdmin.send(
    new DeleteAccountAssignmentCommand({
      InstanceArn: instance.instanceArn,
      TargetId: STAGING,
      TargetType: 'AWS_ACCOUNT',
      PermissionSetArn: seeded.permissionSetArns.ReadOnlyAccess,
      PrincipalType: 'USER',
      PrincipalId: seeded.userIds.carol,
    }),
  )

  clock.advanceMinutes(6)
  const sweep = (await app.inject({ method: 'POST', url: '/revocations', headers: bearer() })).json()

  t.match(sweep, { drifted: 1 })
  t.equal((await app.inject({ method: 'GET', url: `/grants/${grant.id}`, headers: bearer() })).json().status, 'revoked')
})

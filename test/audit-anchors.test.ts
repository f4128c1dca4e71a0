import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PutItemCommand } from '@aws-sdk/client-dynamodb'
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectVersionsCommand,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3'
import { DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb'
import t from 'tap'
import { auditToItem } from '../src/adapters/dynamodb/items.ts'
import { anchorKey, DEFAULT_ANCHOR_RETENTION_DAYS } from '../src/adapters/s3-anchors.ts'
import { loadConfig } from '../src/config.ts'
import {
  type AuditAnchor,
  type ChainedAuditEvent,
  type ChainHead,
  linkEvent,
  verifyStoredChain,
} from '../src/core/audit-chain.ts'
import { DEMO_POLICY } from '../src/sandbox/seed.ts'
import { ANCHOR_BUCKET, build, grantBody } from './helpers/app.ts'
import { startMoto } from './helpers/moto.ts'
import { bearer } from './helpers/tokens.ts'

const moto = await startMoto(t)
type App = Awaited<ReturnType<typeof build>>['app']
type Clients = Awaited<ReturnType<typeof build>>['clients']

async function eventsOldestFirst(app: App): Promise<ChainedAuditEvent[]> {
  const page = (await app.inject({ method: 'GET', url: '/audit?limit=100', headers: bearer() })).json()
  return [...page.items].reverse()
}

const grant = (app: App, overrides: Record<string, unknown> = {}) =>
  app.inject({ method: 'POST', url: '/grants', headers: bearer(), payload: grantBody(overrides) })
const sweep = (app: App) => app.inject({ method: 'POST', url: '/revocations', headers: bearer() })
const verify = async (app: App, query = '') =>
  (await app.inject({ method: 'GET', url: `/audit/verify${query}`, headers: bearer() })).json()

/** Every stored version in the anchor bucket, oldest key first. */
async function anchorVersions(s3: S3Client) {
  const listed = await s3.send(new ListObjectVersionsCommand({ Bucket: ANCHOR_BUCKET }))
  return (listed.Versions ?? []).map((version) => ({
    key: version.Key as string,
    versionId: version.VersionId as string,
  }))
}

/**
 * What someone holding the service's role can do with the only write it has on the audit table, PutItem: replace
 * the newest events with bare keys, which drop out of every index (so out of the log), and put the head back.
 */
async function cutShort(clients: Clients, events: ChainedAuditEvent[], keep: number) {
  for (const event of events.slice(keep)) {
    await clients.dynamo.send(new PutItemCommand({ TableName: 'jit-audit', Item: { pk: { S: `event#${event.id}` } } }))
  }
  const last = events[keep - 1] as ChainedAuditEvent
  await clients.dynamo.send(
    new PutItemCommand({
      TableName: 'jit-grants',
      Item: { pk: { S: 'audit-chain#head' }, seq: { N: String(last.seq) }, hash: { S: last.hash } },
    }),
  )
}

t.test('a sweep anchors the chain head when it has moved, and writes nothing when it has not', async (t) => {
  const { app, s3, logLines } = await build(t, moto, { anchors: true })
  await grant(app)

  const swept = await sweep(app)
  t.equal(swept.statusCode, 200, swept.body)
  const first = await eventsOldestFirst(app)
  const head = first.at(-1) as ChainedAuditEvent
  t.same(
    (await anchorVersions(s3)).map((v) => v.key),
    [anchorKey(head)],
    'the head after the sweep: event 2',
  )
  const body = JSON.parse(
    await (
      await s3.send(new GetObjectCommand({ Bucket: ANCHOR_BUCKET, Key: anchorKey(head) }))
    ).Body!.transformToString(),
  )
  t.match(body, { seq: 2, hash: head.hash, at: String })
  t.ok(logLines.some((line) => line.includes('audit chain head anchored')))

  await sweep(app)
  t.equal((await anchorVersions(s3)).length, 1, 'a sweep in which nothing happened anchors nothing')

  await grant(app, { userName: 'bob' })
  await sweep(app)
  const newest = (await eventsOldestFirst(app)).at(-1) as ChainedAuditEvent
  t.same(
    (await anchorVersions(s3)).map((v) => v.key),
    [anchorKey(head), anchorKey(newest)],
  )
})

t.test('a freshly started instance does not anchor again a head another one anchored', async (t) => {
  const { instances, s3 } = await build(t, moto, { anchors: true, instances: 2 })
  const [first, second] = instances as [App, App]
  await grant(first)
  await sweep(first)

  await sweep(second)

  t.equal((await anchorVersions(s3)).length, 1, 'one version of one anchor')
})

t.test(
  'moto enforces compliance-mode Object Lock: an anchored version cannot be deleted, even bypassing governance',
  async (t) => {
    const { app, s3, clock } = await build(t, moto, { anchors: true })
    await grant(app)
    await sweep(app)
    const [anchor] = await anchorVersions(s3)
    if (!anchor) throw new Error('no anchor was written')

    const locked = await s3.send(
      new HeadObjectCommand({ Bucket: ANCHOR_BUCKET, Key: anchor.key, VersionId: anchor.versionId }),
    )
    t.equal(locked.ObjectLockMode, 'COMPLIANCE')
    const retainedDays = ((locked.ObjectLockRetainUntilDate?.getTime() ?? 0) - clock.now().getTime()) / 86_400_000
    t.ok(
      Math.abs(retainedDays - DEFAULT_ANCHOR_RETENTION_DAYS) < 2,
      `retained about ${DEFAULT_ANCHOR_RETENTION_DAYS} days (${retainedDays.toFixed(1)})`,
    )
    for (const bypass of [false, true]) {
      await t.rejects(
        s3.send(
          new DeleteObjectCommand({
            Bucket: ANCHOR_BUCKET,
            Key: anchor.key,
            VersionId: anchor.versionId,
            BypassGovernanceRetention: bypass,
          }),
        ),
        { name: 'AccessDenied' },
        bypass ? 'refused with BypassGovernanceRetention' : 'refused',
      )
    }
    t.same(await anchorVersions(s3), [anchor], 'still there')
  },
)

t.test(
  'an untouched log verifies against its newest anchor; later events are vouched for by the chain alone',
  async (t) => {
    const { app, clock } = await build(t, moto, { anchors: true })
    await grant(app)
    const beforeAnchor = clock.now().toISOString()
    clock.advanceMinutes(1)
    await grant(app, { userName: 'bob' })
    await sweep(app)
    await grant(app)
    const anchored = (await eventsOldestFirst(app))[3] as ChainedAuditEvent

    const verified = await verify(app)

    t.match(verified, {
      ok: true,
      events: 6,
      anchored: true,
      anchor: { seq: 4, hash: anchored.hash, name: anchorKey(anchored), at: String },
    })
    t.match(
      await verify(app, `?to=${beforeAnchor}`),
      { ok: true, events: 2, anchored: false },
      'a range that ends before the anchor has none to go by',
    )
  },
)

t.test(
  'a log cut short and its head moved back is reported against the anchor, though what remains is a valid chain',
  async (t) => {
    const { app, clients } = await build(t, moto, { anchors: true })
    for (const userName of ['alice', 'bob', 'alice']) await grant(app, { userName })
    await sweep(app)
    const events = await eventsOldestFirst(app)

    await cutShort(clients, events, 4)
    const verified = await verify(app)

    t.match(verified, {
      ok: false,
      events: 4,
      firstBadEventId: null,
      firstBadSeq: 5,
      reason:
        /^the log ends at event 4 but the anchor anchors\/0000000000000006\/[0-9a-f]{64}\.json \(stored .+\) recorded event 6: events at the end were deleted/,
      anchored: true,
      anchor: { seq: 6, hash: events[5]?.hash },
    })
  },
)

t.test('without anchors, the same cut is invisible: the head pointer is all the chain has to go by', async (t) => {
  const { app, clients } = await build(t, moto)
  for (const userName of ['alice', 'bob', 'alice']) await grant(app, { userName })
  await sweep(app)

  await cutShort(clients, await eventsOldestFirst(app), 4)

  t.same(await verify(app), {
    ok: true,
    events: 4,
    firstSeq: 1,
    head: (await eventsOldestFirst(app))[3]?.hash,
    anchored: false,
  })
})

t.test(
  'a log rewritten and re-linked before the anchor fails at the anchor, even beside a false anchor of the rewrite',
  async (t) => {
    const { app, clients, s3 } = await build(t, moto, { anchors: true })
    for (const userName of ['alice', 'bob', 'alice']) await grant(app, { userName })
    await sweep(app)
    const events = await eventsOldestFirst(app)
    // Someone with the service's role deletes events 5 and 6, writes three of their own in their place, linked
    // as the service would link them, moves the head to the last, and anchors that head too.
    await cutShort(clients, events, 4)
    const doc = DynamoDBDocumentClient.from(clients.dynamo)
    let head: ChainHead = { seq: 4, hash: (events[3] as ChainedAuditEvent).hash }
    const forged: ChainedAuditEvent[] = []
    for (const [i, original] of events.slice(4).concat(events.slice(5)).entries()) {
      const event = linkEvent(
        { ...original, id: `${original.id.slice(0, -2)}f${i}`, actor: 'nobody', detail: 'nothing happened' },
        head,
      )
      await doc.send(new PutCommand({ TableName: 'jit-audit', Item: auditToItem(event) }))
      forged.push(event)
      head = { seq: event.seq, hash: event.hash }
    }
    await doc.send(new PutCommand({ TableName: 'jit-grants', Item: { pk: 'audit-chain#head', ...head } }))
    await s3.send(new PutObjectCommand({ Bucket: ANCHOR_BUCKET, Key: anchorKey(head), Body: '{}' }))

    const verified = await verify(app)

    t.match(verified, {
      ok: false,
      firstBadEventId: forged[1]?.id,
      firstBadSeq: 6,
      reason:
        /^event 6 is not the one the anchor anchors\/0000000000000006\/.+ recorded: the log was rewritten at or before it/,
      anchor: { seq: 6, hash: events[5]?.hash },
    })
  },
)

t.test('a sweep that cannot anchor still finishes its work, and says so', async (t) => {
  const { app, logLines } = await build(t, moto, { anchors: { bucket: 'jit-no-such-bucket' } })
  await grant(app)

  const swept = await sweep(app)

  t.equal(swept.statusCode, 200, swept.body)
  t.ok(
    logLines.some((line) => line.includes('audit chain head could not be anchored') && line.includes('NoSuchBucket')),
    'logged with the cause',
  )
})

t.test('an anchor a sweep writes while verify runs is not taken for a log cut short', async (t) => {
  // The head reads 4; a sweep then anchors 6 (events 5 and 6 were written meanwhile); the head read again is 6.
  const events: ChainedAuditEvent[] = []
  let head: ChainHead = { seq: 0, hash: '0'.repeat(64) }
  for (let i = 1; i <= 6; i++) {
    const event = linkEvent(
      {
        id: `e${i}`,
        at: new Date(0).toISOString(),
        action: 'grant.requested',
        actor: 'a',
        grantId: null,
        userName: 'u',
        accountId: '1',
        permissionSet: 'p',
        ticketId: 't',
        detail: '',
        requestId: null,
        correlationId: null,
      },
      head,
    )
    events.push(event)
    head = { seq: event.seq, hash: event.hash }
  }
  const heads = [events[3], events[5]].map((event) => ({ seq: event!.seq, hash: event!.hash }))
  const anchor: AuditAnchor = { seq: 6, hash: events[5]!.hash, at: new Date(0).toISOString(), name: 'anchors/6' }
  const chain = {
    head: async () => heads.shift() ?? head,
    async *eventsAfter(afterSeq: number) {
      yield* events.filter((event) => event.seq > afterSeq)
    },
  }
  const anchors = {
    async *list(afterSeq: number, throughSeq?: number) {
      if (anchor.seq > afterSeq && anchor.seq <= (throughSeq ?? Infinity)) yield anchor
    },
  }

  const verified = await verifyStoredChain(chain, anchors, { startAfter: { seq: 0, hash: '0'.repeat(64) } })

  t.match(verified, { ok: true, events: 6, anchored: true, anchor: { seq: 6 } })
})

t.test('JIT_AUDIT_ANCHOR_BUCKET is optional, and a name S3 would refuse stops the start', async (t) => {
  const policyDir = mkdtempSync(join(tmpdir(), 'jit-anchors-'))
  t.teardown(() => rmSync(policyDir, { recursive: true, force: true }))
  const policyFile = join(policyDir, 'policy.json')
  writeFileSync(policyFile, JSON.stringify(DEMO_POLICY))
  const env = {
    JIT_POLICY_FILE: policyFile,
    JIT_JWT_SECRET: 'x'.repeat(32),
    JIT_CURSOR_KEY: 'c'.repeat(32),
    JIT_SANDBOX: 'true',
  }

  t.equal(loadConfig(env).auditAnchorBucket, undefined)
  t.equal(
    loadConfig({ ...env, JIT_AUDIT_ANCHOR_BUCKET: 'jit-access-anchors-1' }).auditAnchorBucket,
    'jit-access-anchors-1',
  )
  t.throws(() => loadConfig({ ...env, JIT_AUDIT_ANCHOR_BUCKET: 'Not_A_Bucket' }), {
    name: 'ConfigError',
    message: /JIT_AUDIT_ANCHOR_BUCKET/,
  })
})

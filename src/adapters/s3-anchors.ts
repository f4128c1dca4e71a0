import { PutObjectCommand, paginateListObjectsV2, type S3Client } from '@aws-sdk/client-s3'
import type { AuditAnchor, ChainHead } from '../core/audit-chain.ts'
import type { AuditAnchors, HeadToAnchor } from '../core/ports.ts'
import { callAws } from './aws-errors.ts'

// The S3 client, for src/adapters/aws.ts to load with this module (see lazilyLoaded there).
export { S3Client } from '@aws-sdk/client-s3'

/** How long S3 keeps an anchor beyond anyone's reach unless the stack says otherwise (infra/stack.ts). */
export const DEFAULT_ANCHOR_RETENTION_DAYS = 400

const PREFIX = 'anchors/'
/** Enough for any seq a JavaScript number holds exactly (2^53 has 16 digits). */
const SEQ_DIGITS = 16
const KEY = /^anchors\/(\d{16})\/([0-9a-f]{64})\.json$/

const seqPart = (seq: number) => String(seq).padStart(SEQ_DIGITS, '0')

/**
 * The anchor's whole content is in its key, zero-padded so that keys sort by seq. Read from the listing, not
 * from the object: an object written again under the same key becomes its current version, but cannot change
 * what the key says. The body repeats it, with the service's time, for people who open it.
 */
export const anchorKey = (head: ChainHead) => `${PREFIX}${seqPart(head.seq)}/${head.hash}.json`

/** Sorts after every key of `seq` and before those of seq + 1: '~' comes after any hex digit. */
const afterKeysOf = (seq: number) => `${PREFIX}${seqPart(seq)}/~`

/**
 * Anchors in an S3 bucket with Object Lock (compliance mode, a default retention): each version is kept
 * unchanged until its retention ends, whoever asks, so the service's own role cannot remove what it anchored.
 *
 * Listed with ListObjectsV2 from StartAfter: the keys sort by seq, so the anchors beyond the chain's head,
 * which verify looks for first, take one request, and a verification walks the anchors beside the events
 * without holding them. ListObjectsV2 does not show a key whose current version is a delete marker; the
 * service's role may not delete (infra/stack.ts), so only someone who may can hide an anchor that way, and the
 * locked version stays for ListObjectVersions to show. (ListObjectVersions would see through markers, but
 * moto 5 drops the first version after a KeyMarker, so the sandbox and the tests could not use it.)
 */
export class S3AuditAnchors implements AuditAnchors {
  private readonly s3: S3Client
  private readonly bucket: string

  constructor(s3: S3Client, bucket: string) {
    this.s3 = s3
    this.bucket = bucket
  }

  async write(head: HeadToAnchor): Promise<void> {
    await callAws('S3', 'PutObject', () =>
      this.s3.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: anchorKey(head),
          Body: JSON.stringify({ seq: head.seq, hash: head.hash, at: head.at }),
          ContentType: 'application/json',
        }),
      ),
    )
  }

  async *list(afterSeq: number, throughSeq?: number): AsyncGenerator<AuditAnchor> {
    const pages = paginateListObjectsV2(
      { client: this.s3 },
      { Bucket: this.bucket, Prefix: PREFIX, StartAfter: afterKeysOf(afterSeq) },
    )
    const iterator = pages[Symbol.asyncIterator]()
    for (;;) {
      const page = await callAws('S3', 'ListObjectsV2', () => iterator.next())
      if (page.done) return
      for (const object of page.value.Contents ?? []) {
        // Keys of no anchor's shape are not anchors.
        const match = KEY.exec(object.Key ?? '')
        if (!match) continue
        const seq = Number(match[1])
        if (throughSeq !== undefined && seq > throughSeq) return
        yield {
          seq,
          hash: match[2] as string,
          at: (object.LastModified ?? new Date(0)).toISOString(),
          name: object.Key as string,
        }
      }
    }
  }
}

import {
  CreateBucketCommand,
  HeadBucketCommand,
  PutObjectLockConfigurationCommand,
  type S3Client,
} from '@aws-sdk/client-s3'
import { DEFAULT_ANCHOR_RETENTION_DAYS } from '../adapters/s3-anchors.ts'

/**
 * Creates the anchor bucket as infra/stack.ts does (Object Lock, compliance mode, a default retention) when it
 * is missing: for the sandbox and the tests. Not under src/adapters: the service never creates or configures
 * the bucket, and its role may not.
 */
export async function ensureAnchorBucket(
  s3: S3Client,
  bucket: string,
  retentionDays = DEFAULT_ANCHOR_RETENTION_DAYS,
): Promise<void> {
  try {
    await s3.send(new HeadBucketCommand({ Bucket: bucket }))
    return
  } catch (error) {
    if ((error as Error).name !== 'NotFound' && (error as Error).name !== 'NoSuchBucket') throw error
  }
  // Object Lock can only be enabled as the bucket is created; it turns versioning on for good.
  await s3.send(new CreateBucketCommand({ Bucket: bucket, ObjectLockEnabledForBucket: true }))
  await s3.send(
    new PutObjectLockConfigurationCommand({
      Bucket: bucket,
      ObjectLockConfiguration: {
        ObjectLockEnabled: 'Enabled',
        Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: retentionDays } },
      },
    }),
  )
}

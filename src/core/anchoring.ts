import type { ChainHead } from './audit-chain.ts'
import type { Clock } from './clock.ts'
import type { AuditAnchors, AuditLog } from './ports.ts'

/**
 * Copies the audit chain's head to the anchor store whenever it has moved: the sweep calls it every run, so
 * no more than a run's worth of events is ever unanchored. Remembers what it last anchored, so that a run in
 * which nothing happened writes nothing; after a start it asks the store once instead of anchoring the same
 * head again.
 */
export class HeadAnchoring {
  private readonly auditLog: Pick<AuditLog, 'head'>
  private readonly anchors: AuditAnchors
  private readonly clock: Clock
  private anchored: ChainHead | undefined

  constructor(deps: { auditLog: Pick<AuditLog, 'head'>; anchors: AuditAnchors; clock: Clock }) {
    this.auditLog = deps.auditLog
    this.anchors = deps.anchors
    this.clock = deps.clock
  }

  /**
   * Anchors the current head unless it already is. Answers the head it anchored, or undefined when there was
   * nothing to do. Throws UpstreamUnavailableError when the log or the store does not answer (the next run
   * tries again).
   */
  async anchorHead(): Promise<ChainHead | undefined> {
    const head = await this.auditLog.head()
    if (head.seq === 0 || (this.anchored && sameHead(head, this.anchored))) return undefined
    if (!this.anchored && (await this.isAnchored(head))) {
      this.anchored = head
      return undefined
    }
    await this.anchors.write({ ...head, at: this.clock.now().toISOString() })
    this.anchored = head
    return head
  }

  private async isAnchored(head: ChainHead): Promise<boolean> {
    for await (const anchor of this.anchors.list(head.seq - 1, head.seq)) {
      if (sameHead(anchor, head)) return true
    }
    return false
  }
}

const sameHead = (a: ChainHead, b: ChainHead) => a.seq === b.seq && a.hash === b.hash

/** A small map whose entries expire, so directory changes are picked up without a restart. */
export class TtlCache<V> {
  private readonly entries = new Map<string, { value: V; expires: number }>()

  private readonly ttlMs: number

  constructor(ttlMs: number) {
    this.ttlMs = ttlMs
  }

  get(key: string): V | undefined {
    const entry = this.entries.get(key)
    if (!entry) return undefined
    if (entry.expires <= Date.now()) {
      this.entries.delete(key)
      return undefined
    }
    return entry.value
  }

  set(key: string, value: V): void {
    this.entries.set(key, { value, expires: Date.now() + this.ttlMs })
  }

  clear(): void {
    this.entries.clear()
  }
}

/** CPU time of the benchmark's processes and of the machine, from Linux's /proc (undefined elsewhere). */
import { readdirSync, readFileSync } from 'node:fs'

/** The moto_server started with `-p port` (startMotoServer does not say its process id), for its CPU time. */
export function motoPidOn(port: number): number | undefined {
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
      if (args.some((arg) => /moto/.test(arg)) && args[args.indexOf('-p') + 1] === String(port)) return Number(pid)
    } catch {
      // gone meanwhile
    }
  }
  return undefined
}

/** A process's user + system CPU time so far, in ms (Linux), or undefined. */
export function cpuMsOf(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    // utime and stime, in clock ticks of 1/100 s (USER_HZ on Linux).
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100
  } catch {
    return undefined
  }
}

/** The machine's CPU ticks since boot, all cores: busy and in all (Linux /proc/stat), or undefined. */
export function machineTicks(): { busy: number; total: number } | undefined {
  try {
    const [user, nice, system, idle, iowait, ...rest] = readFileSync('/proc/stat', 'utf8')
      .split('\n')[0]!
      .trim()
      .split(/\s+/)
      .slice(1)
      .map(Number) as number[]
    const busy = (user ?? 0) + (nice ?? 0) + (system ?? 0) + rest.slice(0, 3).reduce((sum, n) => sum + n, 0)
    return { busy, total: busy + (idle ?? 0) + (iowait ?? 0) }
  } catch {
    return undefined
  }
}

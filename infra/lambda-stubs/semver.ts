/**
 * Stands in for semver (28 KiB) in the Lambda bundle (infra/build.ts). Fastify uses it for one check: that a
 * plugin's declared `fastify` range admits the running Fastify. Every plugin the function bundles declares
 * `5.x`, so that is the range understood here; any other range, and the release-candidate path (gt, coerce),
 * fail the plugin's registration rather than pass it unchecked. test/lambda-stubs.test.ts compares the answers
 * with semver's, and test/lambda.test.ts starts the bundle, registering every plugin.
 */
const notBundled = (what: string) =>
  new Error(`semver is not in the Lambda bundle: ${what} (infra/lambda-stubs/semver.ts)`)

/** `major.x` ranges only, as semver answers them for a version without a prerelease part. */
export function satisfies(version: string, range: string): boolean {
  const wanted = /^(\d+)\.x$/.exec(range)?.[1]
  if (wanted === undefined) throw notBundled(`the range '${range}' is not understood`)
  const parts = /^(\d+)\.\d+\.\d+(-[\w.-]+)?(\+[\w.-]+)?$/.exec(version)
  return parts !== null && parts[1] === wanted && parts[2] === undefined
}

export function gt(): boolean {
  throw notBundled('Fastify release candidates are not supported')
}

export function coerce(): never {
  throw notBundled('Fastify release candidates are not supported')
}

export default { satisfies, gt, coerce }

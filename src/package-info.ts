import packageJson from '../package.json' with { type: 'json' }

/** The release and licence the OpenAPI document states: package.json's, so that one bump changes both. */
export const PACKAGE_VERSION: string = packageJson.version
export const PACKAGE_LICENSE: string = packageJson.license

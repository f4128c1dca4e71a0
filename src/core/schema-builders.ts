/**
 * The TypeBox builders the service's schemas use, and only those; imported as `import * as Type from` this
 * module, so that schemas still read `Type.Object(…)`.
 *
 * Why not `import { Type } from 'typebox'`: the package exports `Type` as a namespace object (`export * as Type`,
 * and as its default), and a bundler cannot tell which of a namespace object's members are used, so esbuild
 * keeps every builder TypeBox has, with its script parser and type engine: 77 KiB of the Lambda's minified
 * bundle. Named re-exports let it keep only these: about 8 KiB. Record is left out: its key type engine is
 * about 40 KiB more (see AccountTags, src/core/policy.ts). Add a builder here before using it.
 */
export { Array, Boolean, Integer, Literal, Number, Object, Optional, Ref, String, Union, Unsafe } from 'typebox'
